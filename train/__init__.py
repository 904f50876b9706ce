"""Workstation side of edge-runtime: CIFAR data, the model zoo, the trainer, export.

Needs torch and torchvision (``pip install 'edge-runtime[train]'``). Nothing here runs on the robot.
"""
