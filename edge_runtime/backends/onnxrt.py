"""ONNX Runtime (CPU) runner."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from ..errors import EdgeRuntimeError
from .base import Runner


def session(model: Union[str, Path, bytes], threads: Optional[int] = None, profile_prefix: Optional[str] = None) -> Any:
    """An ONNX Runtime CPU session with the project's options (every runner and benchmark uses these).
    ``profile_prefix``: turn on ONNX Runtime's profiler, writing ``<prefix>_<date>.json`` at ``end_profiling()``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EdgeRuntimeError("this needs onnxruntime, which is not installed; run: pip install onnxruntime") from None
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # x86 without VNNI: u8s8 products with 8-bit weights are computed as u8u8 instead of saturating in int16 (ORT
    # #12088). Our own CPU builds have 7-bit weights and do not need it; 8-bit ones (the TensorRT layout, other
    # tools' files) do: benchmarks/int8-cpu-vnni/x64quantprecision.json (no measurable cost for the 7-bit build)
    so.add_session_config_entry("session.x64quantprecision", "1")
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = str(profile_prefix)
    src = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types: all mean "cannot run this file"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "the model" if isinstance(model, bytes) else str(model)
        raise EdgeRuntimeError("ONNX Runtime cannot load %s (%s); re-export it with edge-runtime export" % (where, msg[:200])) from None


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def __init__(self, model: Union[str, Path, bytes], threads: Optional[int] = None,
                 manifest: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(manifest)
        self.model = model
        self.path = None if isinstance(model, bytes) else Path(model)
        self.threads = threads
        self.sess: Any = None

    def _activate(self) -> None:
        self.sess = session(self.model, self.threads)
        inp = self.sess.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = [d if isinstance(d, int) else str(d) for d in inp.shape]
        self.input_dtype = {"tensor(float)": "float32"}.get(str(inp.type), str(inp.type))
        out = self.sess.get_outputs()[0]
        self.output_name = out.name
        self.output_shape = [d if isinstance(d, int) else str(d) for d in (out.shape or [])]

    def _infer(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.sess.run([self.output_name], {self.input_name: x})[0], dtype=np.float32)

    def _deactivate(self) -> None:
        self.sess = None
