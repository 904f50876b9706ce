"""edge-runtime: CIFAR image classifiers from training to a Jetson that acts on them.

``import edge_runtime`` needs only numpy and PyYAML: TensorRT, ONNX Runtime, OpenCV and torch
are imported by the modules that use them, when they are used.
"""
from __future__ import annotations

from .errors import EdgeRuntimeError

__version__ = "0.1.0"
__all__ = ["EdgeRuntimeError", "__version__"]
