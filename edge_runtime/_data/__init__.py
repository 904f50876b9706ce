"""Package data of an installed edge-runtime: setup.py copies the bundled model, configs, demo clip and calibration
set here when it builds a wheel (see :mod:`edge_runtime.resources`). Empty in a source checkout."""
