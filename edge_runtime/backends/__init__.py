"""Runners: one interface for every backend (``activate / infer / deactivate``, a context manager).

Each backend module owns its heavy import (onnxruntime, torch, tensorrt), so importing this package
needs only numpy. :func:`runner_for` picks the backend from the artifact's suffix.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import EdgeRuntimeError
from .base import Runner

__all__ = ["Runner", "runner_for"]


def runner_for(path: Any, **kwargs: Any) -> Runner:
    """``.onnx`` -> ONNX Runtime, ``.pt`` -> PyTorch, ``.engine``/``.plan`` -> TensorRT."""
    suffix = Path(path).suffix
    if suffix == ".onnx":
        from .onnxrt import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, **kwargs)
    if suffix in (".pt", ".pth"):
        from .torch_runner import TorchRunner

        return TorchRunner(path, **kwargs)
    if suffix in (".engine", ".plan"):
        from ..engine.trt import TensorRTRunner

        return TensorRTRunner(path, **kwargs)
    raise EdgeRuntimeError("%s: unknown artifact type %r; expected .onnx, .pt or .engine" % (path, suffix))
