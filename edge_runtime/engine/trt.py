"""The TensorRT Python API, with explicit version dispatch for TensorRT 8.5, 8.6, 10.x and 11.

Written to NVIDIA's documented API and type-checked against ``tensorrt-stubs``; what differs by version:

| call                                   | 8.5 | 8.6 | 10.x | 11 |
|----------------------------------------|-----|-----|------|----|
| create_network(1 << EXPLICIT_BATCH)    | yes | yes | no (always explicit) | no |
| create_network(1 << STRONGLY_TYPED)    | -   | -   | no (weakly typed, flags below) | yes |
| BuilderFlag.FP16 for --precision fp16  | yes | yes | yes  | gone: build the FP16 ONNX |
| BuilderFlag.INT8 for a Q/DQ ONNX       | yes | yes | yes  | not needed (strongly typed) |
| IInt8EntropyCalibrator2 (implicit int8)| yes | yes | yes (deprecated 10.1) | gone |
| set_memory_pool_limit(WORKSPACE, ...)  | yes | yes | yes  | yes |
| BuilderFlag.VERSION_COMPATIBLE         | no  | yes | yes  | yes |
| build_serialized_network               | yes | yes | yes  | yes |
| name-based tensors, execute_async_v3   | yes | yes | yes  | yes |

Nothing here has run on real TensorRT on these machines (no GPU); the contract tests marked ``gpu``
build a real engine and compare it with ONNX Runtime wherever TensorRT is importable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import EdgeRuntimeError
from ..fsio import PathLike, write_bytes_atomic
from ..backends.base import Runner

if TYPE_CHECKING:  # the stubs describe TensorRT 10.x; version differences are dispatched below
    import tensorrt as trt_t

HOW_TO_GET = ("on a Jetson install JetPack's python3-libnvinfer (sudo apt install python3-libnvinfer python3-libnvinfer-dev); "
              "on an x86 GPU machine pip install tensorrt (NVIDIA's wheels); or make CPU artifacts with --backend onnxruntime")


def import_tensorrt() -> Any:
    """The tensorrt module, or a one-line error saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise EdgeRuntimeError("TensorRT is not installed here (import tensorrt failed: %s); %s" % (exc, HOW_TO_GET)) from None
    if not hasattr(tensorrt, "Builder"):  # e.g. only tensorrt-stubs present: an empty namespace package
        raise EdgeRuntimeError("TensorRT is not installed here (only its type stubs are; import tensorrt has no Builder); %s"
                               % HOW_TO_GET)
    return tensorrt


def version_of(trt: Any) -> Tuple[int, int]:
    parts = str(getattr(trt, "__version__", "0.0")).split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise EdgeRuntimeError("cannot read the TensorRT version %r" % getattr(trt, "__version__", None)) from None


def check_supported(ver: Tuple[int, int]) -> None:
    if ver < (8, 5):
        raise EdgeRuntimeError("TensorRT %d.%d is too old; edge-runtime needs 8.5 or newer (JetPack 5.1+)" % ver)


@dataclass
class BuildOptions:
    precision: str = "fp32"                 # fp32 | fp16 | int8
    onnx_precision: str = "fp32"            # precision recorded in the ONNX manifest (fp32, fp16 or int8 = Q/DQ)
    calibrator: Optional[str] = None        # "entropy": implicit INT8 from an FP32 ONNX (TensorRT <= 10)
    workspace_mb: Optional[int] = None
    timing_cache: Optional[bytes] = None    # serialized cache to start from (b"" = new)
    dla_core: Optional[int] = None
    version_compatible: bool = False
    max_batch: int = 8                      # for a dynamic batch axis: the optimization profile's max
    calib_cache_path: Optional[Path] = None


@dataclass
class BuildOutput:
    plan: bytes
    calls: List[str] = field(default_factory=list)
    timing_cache: Optional[bytes] = None
    input_shape: List[int] = field(default_factory=list)
    seconds: float = 0.0


class _Logger:
    """A TensorRT logger that keeps the errors so a failed build can say why in one line."""

    def __init__(self, trt: Any) -> None:
        base = trt.ILogger

        class L(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                base.__init__(self)
                self.errors: List[str] = []

            def log(self, severity: Any, msg: str) -> None:
                if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                    self.errors.append(str(msg))

        self.logger = L()


def make_entropy_calibrator(trt: Any, batches: Iterator[np.ndarray], batch_size: int, cache_path: Optional[Path]) -> Any:
    """An IInt8EntropyCalibrator2 fed from preprocessed calibration batches, with a cache file (TensorRT <= 10)."""
    from . import cuda as cuda_mod

    cu = cuda_mod.get()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.buf: Any = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            b = next(batches, None)
            if b is None or b.shape[0] != batch_size:
                return None
            if self.buf is None:
                self.buf = cu.malloc(b.nbytes)
            cu.htod(self.buf, b)
            return [cu.ptr(self.buf)]

        def read_calibration_cache(self) -> Optional[bytes]:
            if cache_path is not None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                write_bytes_atomic(cache_path, bytes(cache))

    return EntropyCalibrator()


def build_serialized(trt: Any, onnx_bytes: bytes, opts: BuildOptions, calib_batches: Optional[Iterator[np.ndarray]] = None,
                     calib_batch_size: int = 32) -> BuildOutput:
    """Parse the ONNX, configure the builder for this TensorRT version, build; returns the plan and the calls made."""
    ver = version_of(trt)
    check_supported(ver)
    calls: List[str] = []
    t0 = time.perf_counter()
    log = _Logger(trt).logger
    builder = trt.Builder(log)
    if ver >= (11, 0):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        calls.append("create_network(STRONGLY_TYPED)")
    elif ver >= (10, 0):
        flags = 0
        calls.append("create_network(0)")
    else:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        calls.append("create_network(EXPLICIT_BATCH)")
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log)
    if not parser.parse(onnx_bytes):
        errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EdgeRuntimeError("TensorRT %d.%d cannot parse the ONNX model: %s" % (ver[0], ver[1], "; ".join(errs)[:300] or "unknown error"))
    calls.append("OnnxParser.parse")
    config = builder.create_builder_config()
    if opts.workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mb) << 20)
        calls.append("set_memory_pool_limit(WORKSPACE, %d MiB)" % opts.workspace_mb)
    _precision(trt, ver, builder, config, opts, calls)
    if opts.calibrator == "entropy":
        if calib_batches is None:
            raise EdgeRuntimeError("--calibrator entropy needs a calibration set (--calib)")
        config.int8_calibrator = make_entropy_calibrator(trt, calib_batches, calib_batch_size, opts.calib_cache_path)
        calls.append("int8_calibrator = IInt8EntropyCalibrator2")
    if opts.dla_core is not None:
        n = int(builder.num_DLA_cores)
        if not 0 <= opts.dla_core < n:
            raise EdgeRuntimeError("--dla-core %d: this device has %d DLA core(s)%s" % (
                opts.dla_core, n, "" if n else " (DLA exists on Jetson Xavier/Orin AGX and NX only); drop --dla-core"))
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        calls.append("DLA core %d + GPU_FALLBACK" % opts.dla_core)
    if opts.version_compatible:
        if ver < (8, 6):
            raise EdgeRuntimeError("--version-compatible needs TensorRT 8.6 or newer; this is %d.%d" % ver)
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        calls.append("set_flag(VERSION_COMPATIBLE)")
    if opts.timing_cache is not None:
        cache = config.create_timing_cache(opts.timing_cache)
        config.set_timing_cache(cache, False)
        calls.append("set_timing_cache(%s)" % ("reused" if opts.timing_cache else "new"))
    shape = _profile(trt, builder, network, config, opts, calls)
    plan = builder.build_serialized_network(network, config)
    calls.append("build_serialized_network")
    if plan is None:
        raise EdgeRuntimeError("TensorRT %d.%d failed to build the engine: %s" % (
            ver[0], ver[1], "; ".join(getattr(log, "errors", []))[:300] or "see the TensorRT log"))
    tc: Optional[bytes] = None
    if opts.timing_cache is not None:
        tc = bytes(config.get_timing_cache().serialize())
    return BuildOutput(bytes(plan), calls, tc, shape, time.perf_counter() - t0)


def _precision(trt: Any, ver: Tuple[int, int], builder: Any, config: Any, opts: BuildOptions, calls: List[str]) -> None:
    p, src = opts.precision, opts.onnx_precision
    if p == "fp32":
        if src != "fp32":
            raise EdgeRuntimeError("--precision fp32 needs the FP32 ONNX; this one is %s" % src)
        return
    if p == "fp16":
        if ver >= (11, 0):
            if src != "fp16":
                raise EdgeRuntimeError("TensorRT %d.%d has no FP16 builder flag: build from the FP16 ONNX (make it with: "
                                       "edge-runtime quantize MODEL.onnx --target fp16)" % ver)
            calls.append("strongly typed FP16 ONNX")
            return
        if src not in ("fp32", "fp16"):
            raise EdgeRuntimeError("--precision fp16 needs the FP32 or FP16 ONNX; this one is %s" % src)
        if not builder.platform_has_fast_fp16:
            calls.append("warning: no fast FP16 on this GPU")
        config.set_flag(trt.BuilderFlag.FP16)
        calls.append("set_flag(FP16)")
        return
    if p != "int8":
        raise EdgeRuntimeError("--precision %r: expected fp32, fp16 or int8" % p)
    if opts.calibrator == "entropy":
        if ver >= (11, 0) or not hasattr(trt, "IInt8EntropyCalibrator2"):
            raise EdgeRuntimeError("TensorRT %d.%d has no INT8 calibrator (implicit quantization was removed); build from "
                                   "the Q/DQ ONNX: edge-runtime quantize MODEL.onnx --target tensorrt" % ver)
        if src != "fp32":
            raise EdgeRuntimeError("--calibrator entropy calibrates the FP32 ONNX; this one is %s" % src)
        config.set_flag(trt.BuilderFlag.INT8)
        calls.append("set_flag(INT8) [implicit, calibrator]")
        return
    if src != "int8":
        raise EdgeRuntimeError("--precision int8 builds from the Q/DQ ONNX (make it with: edge-runtime quantize MODEL.onnx "
                               "--target tensorrt), or pass --calibrator entropy with the FP32 ONNX on TensorRT <= 10")
    if ver < (11, 0):
        config.set_flag(trt.BuilderFlag.INT8)
        calls.append("set_flag(INT8) [explicit Q/DQ]")
    else:
        calls.append("strongly typed Q/DQ ONNX")


def _profile(trt: Any, builder: Any, network: Any, config: Any, opts: BuildOptions, calls: List[str]) -> List[int]:
    inp = network.get_input(0)
    dims = [int(d) for d in inp.shape]
    if dims and dims[0] == -1:
        prof = builder.create_optimization_profile()
        rest = tuple(dims[1:])
        prof.set_shape(inp.name, (1,) + rest, (1,) + rest, (int(opts.max_batch),) + rest)
        config.add_optimization_profile(prof)
        calls.append("optimization profile batch 1..%d" % opts.max_batch)
        return [-1] + list(rest)
    return dims


def device_identity() -> Tuple[str, str]:
    from . import cuda as cuda_mod

    return cuda_mod.get().device_info()


def check_engine_matches(manifest: Dict[str, Any], trt_version: str, gpu: str, compute: str, path: PathLike) -> None:
    """An engine runs only on the TensorRT and GPU it was built with (unless built version-compatible)."""
    eng = manifest.get("engine") or {}
    built_v, built_gpu = str(eng.get("tensorrt", "?")), str(eng.get("gpu", "?"))
    same_v = built_v == trt_version or (eng.get("version_compatible") and built_v.split(".")[0] == trt_version.split(".")[0])
    same_gpu = built_gpu == gpu and str(eng.get("compute_capability")) == compute
    if not (same_v and same_gpu):
        raise EdgeRuntimeError("%s was built with TensorRT %s on GPU %s (sm %s); this is TensorRT %s on GPU %s (sm %s); "
                               "rebuild with: %s" % (path, built_v, built_gpu, eng.get("compute_capability"), trt_version,
                                                     gpu, compute, eng.get("rebuild_command", "edge-runtime build-engine MODEL.onnx")))


class TensorRTRunner(Runner):
    """Deserialize an engine and run it with the name-based tensor API (TensorRT >= 8.5)."""

    name = "tensorrt"

    def __init__(self, path: PathLike, manifest: Optional[Dict[str, Any]] = None, threads: Optional[int] = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.manifest = manifest
        self.bufs: Dict[str, Any] = {}

    def _activate(self) -> None:
        trt = import_tensorrt()
        from . import cuda as cuda_mod

        self.cu = cuda_mod.get()
        gpu, cc = self.cu.device_info()
        if self.manifest is not None:
            check_engine_matches(self.manifest, str(trt.__version__), gpu, cc, self.path)
        self.trt = trt
        self.logger = _Logger(trt).logger
        self.runtime = trt.Runtime(self.logger)
        if self.manifest is not None and (self.manifest.get("engine") or {}).get("version_compatible"):
            self.runtime.engine_host_code_allowed = True
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise EdgeRuntimeError("TensorRT %s cannot load %s (%s); rebuild it with edge-runtime build-engine" % (
                trt.__version__, self.path, "; ".join(self.logger.errors)[:200] or "corrupt or incompatible engine"))
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        dims = [int(d) for d in self.engine.get_tensor_shape(self.inputs[0])]
        self.input_shape = ["batch" if dims[0] == -1 else dims[0]] + dims[1:]
        self.stream = self.cu.stream()
        self.capacity = 0

    def _infer(self, x: np.ndarray) -> np.ndarray:
        name_in, name_out = self.inputs[0], self.outputs[0]
        if self.input_shape[0] == "batch":
            self.context.set_input_shape(name_in, tuple(x.shape))
        out_shape = tuple(int(d) for d in self.context.get_tensor_shape(name_out))
        out = np.empty(out_shape, np.float32)
        if x.nbytes > self.capacity or not self.bufs:
            for b in self.bufs.values():
                self.cu.free(b)
            per_out = out.nbytes // max(1, x.shape[0])
            self.bufs = {name_in: self.cu.malloc(x.nbytes), name_out: self.cu.malloc(max(out.nbytes, per_out * x.shape[0]))}
            self.capacity = x.nbytes
        for n, b in self.bufs.items():
            self.context.set_tensor_address(n, self.cu.ptr(b))
        self.cu.htod(self.bufs[name_in], x, self.stream)
        if not self.context.execute_async_v3(self.cu.stream_handle(self.stream)):
            raise EdgeRuntimeError("TensorRT execution failed for %s" % self.path)
        self.cu.dtoh(out, self.bufs[name_out], self.stream)
        self.cu.sync(self.stream)
        return out

    def _deactivate(self) -> None:
        for b in self.bufs.values():
            self.cu.free(b)
        self.bufs = {}


def _typed_example() -> "trt_t.ICudaEngine":  # pragma: no cover - only for mypy against the stubs
    """Pins the stub-typed signatures used above (mypy checks these calls against tensorrt-stubs)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    parser.parse(b"")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.INT8)
    config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = 0
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    plan = builder.build_serialized_network(network, config)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    ctx = engine.create_execution_context()
    name = engine.get_tensor_name(0)
    _ = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
    ctx.set_input_shape(name, (1, 3, 32, 32))
    ctx.set_tensor_address(name, 0)
    ctx.execute_async_v3(0)
    bytes(config.get_timing_cache().serialize())
    return engine
