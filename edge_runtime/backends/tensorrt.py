"""TensorRT backend: the engine runner, the engine cache for ``run --backend tensorrt`` on an ONNX, and the
H2D/compute/D2H split timing of ``bench engine --split [--cuda-graph]``.

The runner uses the name-based tensor API (TensorRT >= 8.5: ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``). Every I/O tensor of the engine gets a device buffer bound by its name; the image input and
the logits output (the manifest's ``engine.output``, else the one rank-2 float output) are staged through
page-locked host buffers on the runner's own stream. ``deactivate`` frees every buffer, the stream, the context,
the engine and the runtime. Nothing here has run on real TensorRT on the machines it was written on: the tests
drive it through the per-version TensorRT doubles and a numpy-backed fake CUDA (the ``engine.cuda`` seam).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import manifest as mf
from ..errors import EdgeRuntimeError
from ..fsio import PathLike
from .base import Runner

log = logging.getLogger(__name__)

#: TensorRT DataType names -> numpy (the same in 8.5 .. 11 for the types an image classifier uses)
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
       "BOOL": np.bool_, "UINT8": np.uint8}


def _np_dtype(dt: Any) -> Any:
    name = getattr(dt, "name", str(dt)).split(".")[-1].upper()
    if name not in _NP:
        raise EdgeRuntimeError("TensorRT tensor type %s is not supported by the edge-runtime runner" % name)
    return _NP[name]


class TensorRTRunner(Runner):
    """Deserialize an engine and run it. Built only with its manifest (:func:`edge_runtime.backends.load`), which
    says on which TensorRT and GPU the engine was built; activation refuses another."""

    name = "tensorrt"

    def __init__(self, path: PathLike, manifest: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(manifest)
        self.path = Path(path)
        self.bufs: Dict[str, Any] = {}
        self.host: Dict[str, np.ndarray] = {}
        self.capacity = 0
        self.cu: Any = None
        self.stream: Any = None
        self.runtime: Any = None
        self.engine: Any = None
        self.context: Any = None
        self.inputs: List[str] = []
        self.outputs: List[str] = []
        self.dtypes: Dict[str, Any] = {}

    # --------------------------------------------------------------------------------------------- lifecycle
    def _activate(self) -> None:
        from ..engine import cuda as cuda_mod
        from ..engine import trt as trtmod
        from ..engine.trt import _Logger

        if self.manifest is None:
            raise EdgeRuntimeError("%s: a TensorRT engine needs its manifest (load it with edge_runtime.backends.load)"
                                   % self.path)
        trt = trtmod.import_tensorrt()
        self.cu = cuda_mod.get()
        gpu, cc = self.cu.device_info()
        trtmod.check_engine_matches(self.manifest, str(trt.__version__), gpu, cc, self.path)
        self.trt = trt
        self.logger = _Logger(trt).logger
        try:
            self._open(trt)
        except BaseException:
            self._deactivate()
            raise

    def _open(self, trt: Any) -> None:
        from ..engine.trt_api import ContextP, EngineP, RuntimeP

        runtime: RuntimeP = trt.Runtime(self.logger)
        self.runtime = runtime
        if (self.manifest or {}).get("engine", {}).get("version_compatible"):
            runtime.engine_host_code_allowed = True
        engine: Optional[EngineP] = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise EdgeRuntimeError("TensorRT %s cannot load %s (%s); rebuild it with edge-runtime build-engine" % (
                trt.__version__, self.path, "; ".join(self.logger.errors)[:200] or "corrupt or incompatible engine"))
        self.engine = engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.dtypes = {n: _np_dtype(engine.get_tensor_dtype(n)) for n in names}
        if len(self.inputs) != 1:
            raise EdgeRuntimeError("%s has %d inputs (%s); the runner feeds one image input (N, 3, H, W): export a model "
                                   "with one input" % (self.path, len(self.inputs), ", ".join(self.inputs)))
        self.logits = self._logits_name(engine)
        dims = [int(d) for d in engine.get_tensor_shape(self.inputs[0])]
        self.input_shape = ["batch" if dims and dims[0] == -1 else dims[0]] + dims[1:] if dims else []
        self.input_dtype = np.dtype(self.dtypes[self.inputs[0]]).name
        odims = [int(d) for d in engine.get_tensor_shape(self.logits)]
        self.output_shape = [("batch" if d == -1 else d) for d in odims]
        context: Optional[ContextP] = engine.create_execution_context()
        if context is None:
            raise EdgeRuntimeError("TensorRT could not create an execution context for %s (out of GPU memory?)" % self.path)
        self.context = context
        self.stream = self.cu.stream()

    def _logits_name(self, engine: Any) -> str:
        want = ((self.manifest or {}).get("engine") or {}).get("output")
        if want in self.outputs:
            return str(want)
        cands = [n for n in self.outputs if len(engine.get_tensor_shape(n)) == 2 and self.dtypes[n] == np.float32]
        if len(cands) != 1:
            raise EdgeRuntimeError("%s has outputs %s; expected one float (N, classes) logits output (or the manifest's "
                                   "engine.output naming it)" % (self.path, ", ".join(self.outputs) or "none"))
        return cands[0]

    def _free_buffers(self) -> None:
        for b in self.bufs.values():
            self.cu.free(b)
        for h in self.host.values():
            self.cu.host_free(h)
        self.bufs, self.host, self.capacity = {}, {}, 0

    def _deactivate(self) -> None:
        if self.cu is not None:
            self._free_buffers()
            if self.stream is not None:
                self.cu.stream_destroy(self.stream)
        self.stream = None
        # TensorRT objects are released in reverse order of creation: context, engine, runtime
        self.context = None
        self.engine = None
        self.runtime = None

    # -------------------------------------------------------------------------------------------------- infer
    def _bind(self, batch: int) -> None:
        """(Re)allocate every I/O tensor's device buffer for ``batch`` images, and the pinned host buffers of the
        input and the logits; bind every tensor by name."""
        self._free_buffers()
        for n in self.inputs + self.outputs:
            shape = tuple(int(d) for d in self.context.get_tensor_shape(n))
            nbytes = int(np.prod(shape)) * np.dtype(self.dtypes[n]).itemsize
            self.bufs[n] = self.cu.malloc(max(1, nbytes))
            if n in (self.inputs[0], self.logits):
                self.host[n] = self.cu.host_empty(shape, self.dtypes[n])
        self.capacity = batch
        for n, b in self.bufs.items():
            if not self.context.set_tensor_address(n, self.cu.ptr(b)):
                raise EdgeRuntimeError("TensorRT refused the address of tensor %r of %s" % (n, self.path))

    def _prepare(self, x: np.ndarray) -> None:
        name_in = self.inputs[0]
        if self.input_shape[0] == "batch":
            if not self.context.set_input_shape(name_in, tuple(x.shape)):
                raise EdgeRuntimeError("%s: batch %d is outside the engine's optimization profile; rebuild with "
                                       "edge-runtime build-engine --batch N" % (self.path, x.shape[0]))
        if x.shape[0] != self.capacity or not self.bufs:
            self._bind(int(x.shape[0]))

    def _infer(self, x: np.ndarray) -> np.ndarray:
        self._prepare(x)
        name_in = self.inputs[0]
        h_in, h_out = self.host[name_in], self.host[self.logits]
        np.copyto(h_in, x, casting="same_kind")
        self.cu.htod(self.bufs[name_in], h_in, self.stream)
        if not self.context.execute_async_v3(self.cu.stream_handle(self.stream)):
            raise EdgeRuntimeError("TensorRT execution failed for %s" % self.path)
        self.cu.dtoh(h_out, self.bufs[self.logits], self.stream)
        self.cu.sync(self.stream)
        return np.array(h_out, dtype=np.float32)

    def time_split(self, x: np.ndarray, iters: int, cuda_graph: bool) -> Dict[str, Any]:
        """Host-to-device, compute and device-to-host ms per call from CUDA events around each (page-locked host
        buffers, the runner's stream), compute optionally replayed as a CUDA graph; medians over ``iters``."""
        self.infer(x)  # binds buffers for this batch
        cu, stream = self.cu, self.stream
        name_in = self.inputs[0]
        h_in, h_out = self.host[name_in], self.host[self.logits]
        np.copyto(h_in, x, casting="same_kind")
        ev: List[Any] = []
        graph = exe = None
        h = cu.stream_handle(stream)
        try:
            for _ in range(4):
                ev.append(cu.event())
            if cuda_graph:
                graph, exe = cu.capture_graph(stream, lambda: self.context.execute_async_v3(h))
            parts: Dict[str, List[float]] = {"h2d_ms": [], "compute_ms": [], "d2h_ms": []}
            for _ in range(int(iters)):
                cu.record(ev[0], stream)
                cu.htod(self.bufs[name_in], h_in, stream)
                cu.record(ev[1], stream)
                if exe is not None:
                    cu.graph_launch(exe, stream)
                elif not self.context.execute_async_v3(h):
                    raise EdgeRuntimeError("TensorRT execution failed for %s" % self.path)
                cu.record(ev[2], stream)
                cu.dtoh(h_out, self.bufs[self.logits], stream)
                cu.record(ev[3], stream)
                cu.sync(stream)
                for k, (a, b) in zip(parts, ((0, 1), (1, 2), (2, 3))):
                    parts[k].append(cu.elapsed_ms(ev[a], ev[b]))
        finally:
            if exe is not None:
                cu.graph_destroy(graph, exe)
            for e in ev:
                cu.event_destroy(e)
        res: Dict[str, Any] = {k: float(np.median(v)) for k, v in parts.items()}
        res.update(cuda_graph=cuda_graph, iters=int(iters), host_memory="page-locked", cuda=cu.kind,
                   cuda_major=cu.major, method="CUDA events around each copy and the execution, medians")
        return res


# ------------------------------------------------------------------------------------------------ engine cache
def engine_for_onnx(onnx_path: PathLike, manifest: Dict[str, Any], engines_dir: PathLike = "engines",
                    precision: Optional[str] = None, command: str = "") -> Tuple[Path, Dict[str, Any]]:
    """The TensorRT engine for an ONNX model: the cached one in ``engines_dir`` while its manifest still matches
    the ONNX's sha256, this TensorRT version and this GPU; otherwise built now (as jetson-inference does on the
    first run) with :func:`edge_runtime.engine.build.build_engine`. ``precision`` defaults to the ONNX's own, and
    to fp16 for an FP32 ONNX. The ONNX is checked (INT8 layout) before TensorRT is imported; without TensorRT:
    one line saying what to install."""
    from ..engine import trt as trtmod
    from ..engine.build import batch_profile, build_engine, check_source, engine_name, first_dim, int8_method
    from ..fsio import sha256_file

    prec = precision or {"fp32": "fp16"}.get(str(manifest.get("precision")), str(manifest.get("precision")))
    check_source(Path(onnx_path), manifest, prec, None)
    trt = trtmod.import_tensorrt()
    gpu, cc = trtmod.device_identity()
    ver = str(trt.__version__)
    profile = batch_profile(first_dim(Path(onnx_path), manifest), None, 8)
    path = Path(engines_dir) / engine_name(manifest["model"]["name"], prec, ver, gpu, cc, int8_method(prec, None), profile)
    sha = sha256_file(onnx_path)
    if path.is_file() and mf.sidecar_path(path).is_file():
        try:
            em: Optional[Dict[str, Any]] = mf.for_artifact(path)
        except EdgeRuntimeError as exc:
            log.warning("cached engine %s is unusable (%s); rebuilding it", path, exc)
            em = None
        eng = (em or {}).get("engine") or {}
        if em is not None and em.get("source_sha256") == sha and str(eng.get("tensorrt")) == ver and \
                str(eng.get("gpu")) == gpu and str(eng.get("compute_capability")) == cc:
            log.info("using the cached engine %s", path)
            return path, em
        if em is not None:
            log.info("cached engine %s does not match %s (ONNX sha256, TensorRT %s or GPU %s); rebuilding it",
                     path, onnx_path, ver, gpu)
    log.info("building a TensorRT %s engine from %s (first run; cached in %s)", prec, onnx_path, engines_dir)
    res = build_engine(onnx_path, prec, out_dir=engines_dir, force=True, command=command)
    return res.paths[0], res.manifests[0]
