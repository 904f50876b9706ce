"""The TensorRT build API, with explicit version dispatch for TensorRT 8.5, 8.6, 10.x and 11.

Written to NVIDIA's documented API and migration guides; the objects it calls are typed with the Protocols of
:mod:`.trt_api`, which mypy checks against ``tensorrt-stubs`` (10.x). What differs by version:

| call                                   | 8.5 | 8.6 | 10.x | 11 |
|----------------------------------------|-----|-----|------|----|
| create_network(1 << EXPLICIT_BATCH)    | yes | yes | no (always explicit; flag ignored) | flag gone |
| create_network(1 << STRONGLY_TYPED)    | -   | -   | no (weakly typed, flags below) | yes (strong typing always) |
| BuilderFlag.FP16 for --precision fp16  | yes | yes | yes  | gone: build the FP16 ONNX |
| BuilderFlag.INT8 for a Q/DQ ONNX       | yes | yes | yes  | gone (strongly typed Q/DQ) |
| IInt8EntropyCalibrator2 + int8_calibrator, set_calibration_profile | yes | yes | yes (deprecated 10.1) | gone |
| Builder.platform_has_fast_fp16         | yes | yes | yes (deprecated 10.5) | gone |
| set_memory_pool_limit(WORKSPACE, ...)  | yes | yes | yes  | yes |
| BuilderFlag.VERSION_COMPATIBLE         | no  | yes | yes  | yes |
| build_serialized_network               | yes | yes | yes  | yes |
| name-based tensors, execute_async_v3   | yes | yes | yes  | yes |

The runner is :class:`edge_runtime.backends.tensorrt.TensorRTRunner`. Nothing here has run on real TensorRT on
these machines (no GPU); the tests drive it through per-version doubles (``tests/trt_double.py``), and the tests
marked ``tensorrt`` build a real engine wherever TensorRT is importable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import EdgeRuntimeError
from ..fsio import PathLike, write_bytes_atomic
from .trt_api import BuilderP, CalibConfigP, ConfigP, NetworkP, ParserP, ProfileP

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
    opt_batch: int = 1                      # ... and its opt (TensorRT tunes kernels for this batch)
    calib_batch: int = 32                   # calibrator batch: a dynamic-batch ONNX gets a calibration profile at it
    calib_cache_path: Optional[Path] = None


@dataclass
class BuildOutput:
    plan: bytes
    calls: List[str] = field(default_factory=list)
    timing_cache: Optional[bytes] = None
    input_shape: List[int] = field(default_factory=list)
    seconds: float = 0.0
    profile: Optional[Dict[str, Any]] = None  # {"min": n, "opt": n, "max": n} of a dynamic batch axis


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
    """An IInt8EntropyCalibrator2 fed from preprocessed calibration batches, with a cache file (TensorRT <= 10).

    ``get_batch`` copies each full batch into one device buffer (allocated once) and hands TensorRT its address for
    the single image input; a short last batch ends calibration. ``release()`` frees the buffer after the build."""
    from . import cuda as cuda_mod

    cu = cuda_mod.get()

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.buf: Any = None
            self.batches_fed = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: List[str]) -> Optional[List[int]]:
            if len(names) != 1:
                raise EdgeRuntimeError("the INT8 calibrator feeds one image input; the network asks for %d (%s)"
                                       % (len(names), ", ".join(names)))
            b = next(batches, None)
            if b is None or b.shape[0] != batch_size:
                return None
            b = np.ascontiguousarray(b, dtype=np.float32)
            if self.buf is None:
                self.buf = cu.malloc(b.nbytes)
            cu.htod(self.buf, b)
            self.batches_fed += 1
            return [cu.ptr(self.buf)]

        def read_calibration_cache(self) -> Optional[bytes]:
            if cache_path is not None and cache_path.is_file():
                return cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_path is not None:
                write_bytes_atomic(cache_path, bytes(cache))

        def release(self) -> None:
            if self.buf is not None:
                cu.free(self.buf)
                self.buf = None

    return EntropyCalibrator()


def _create_network(trt: Any, ver: Tuple[int, int], builder: BuilderP, calls: List[str]) -> NetworkP:
    if ver >= (11, 0):  # strong typing is the only mode; the flag is kept where the bindings still have it
        st = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        flags = 1 << int(st) if st is not None else 0
        calls.append("create_network(STRONGLY_TYPED)" if st is not None else "create_network(0) [strongly typed]")
    elif ver >= (10, 0):
        flags = 0
        calls.append("create_network(0)")
    else:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        calls.append("create_network(EXPLICIT_BATCH)")
    return builder.create_network(flags)  # type: ignore[no-any-return]


def build_serialized(trt: Any, onnx_bytes: bytes, opts: BuildOptions, calib_batches: Optional[Iterator[np.ndarray]] = None,
                     calib_batch_size: Optional[int] = None) -> BuildOutput:
    """Parse the ONNX, configure the builder for this TensorRT version, build; returns the plan and the calls made."""
    ver = version_of(trt)
    check_supported(ver)
    if calib_batch_size is not None:
        opts.calib_batch = int(calib_batch_size)
    calls: List[str] = []
    t0 = time.perf_counter()
    log = _Logger(trt).logger
    builder: BuilderP = trt.Builder(log)
    network = _create_network(trt, ver, builder, calls)
    parser: ParserP = trt.OnnxParser(network, log)
    if not parser.parse(onnx_bytes):
        errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EdgeRuntimeError("TensorRT %d.%d cannot parse the ONNX model: %s" % (ver[0], ver[1], "; ".join(errs)[:300] or "unknown error"))
    calls.append("OnnxParser.parse")
    config: ConfigP = builder.create_builder_config()
    if opts.workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mb) << 20)
        calls.append("set_memory_pool_limit(WORKSPACE, %d MiB)" % opts.workspace_mb)
    _precision(trt, ver, builder, config, opts, calls)
    if opts.dla_core is not None:
        n = int(builder.num_DLA_cores)
        if not 0 <= opts.dla_core < n:
            raise EdgeRuntimeError("--dla-core %d: this device has %d DLA core(s)%s" % (
                opts.dla_core, n, "" if n else " (DLA exists on Jetson Xavier/Orin AGX and NX only); drop --dla-core"))
        config.default_device_type = trt.DeviceType.DLA  # type: ignore[attr-defined]
        config.DLA_core = int(opts.dla_core)  # type: ignore[attr-defined]
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
    shape, profile = _profile(builder, network, config, opts, calls)
    calibrator = None
    if opts.calibrator == "entropy":
        if calib_batches is None:
            raise EdgeRuntimeError("--calibrator entropy needs a calibration set (--calib)")
        calibrator = make_entropy_calibrator(trt, calib_batches, opts.calib_batch, opts.calib_cache_path)
        cconfig: CalibConfigP = config  # type: ignore[assignment]  # TensorRT <= 10 (checked in _precision)
        cconfig.int8_calibrator = calibrator
        calls.append("int8_calibrator = IInt8EntropyCalibrator2 (batch %d)" % opts.calib_batch)
        if shape and shape[0] == -1:  # TensorRT calibrates at a profile's opt shape: give it the calibration batch
            inp = network.get_input(0)
            cp: ProfileP = builder.create_optimization_profile()
            cb = (opts.calib_batch,) + tuple(shape[1:])
            cp.set_shape(inp.name, cb, cb, cb)
            cconfig.set_calibration_profile(cp)
            calls.append("set_calibration_profile(batch %d)" % opts.calib_batch)
    try:
        plan = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.release()
    calls.append("build_serialized_network")
    if plan is None:
        raise EdgeRuntimeError("TensorRT %d.%d failed to build the engine: %s" % (
            ver[0], ver[1], "; ".join(getattr(log, "errors", []))[:300] or "see the TensorRT log"))
    tc: Optional[bytes] = None
    if opts.timing_cache is not None:
        tc = bytes(config.get_timing_cache().serialize())
    return BuildOutput(bytes(plan), calls, tc, shape, time.perf_counter() - t0, profile)


def _precision(trt: Any, ver: Tuple[int, int], builder: BuilderP, config: ConfigP, opts: BuildOptions, calls: List[str]) -> None:
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
        if not getattr(builder, "platform_has_fast_fp16", True):  # deprecated in 10.5
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


def _profile(builder: BuilderP, network: NetworkP, config: ConfigP, opts: BuildOptions,
             calls: List[str]) -> Tuple[List[int], Optional[Dict[str, int]]]:
    """A dynamic batch axis gets one optimization profile: min 1, opt ``opt_batch``, max ``max_batch``."""
    inp = network.get_input(0)
    dims = [int(d) for d in inp.shape]
    if not dims or dims[0] != -1:
        return dims, None
    lo, opt, hi = 1, int(opts.opt_batch), int(opts.max_batch)
    if not lo <= opt <= hi:
        raise EdgeRuntimeError("batch profile min %d, opt %d, max %d: expected 1 <= opt <= max (--batch N sets opt = max = N)"
                               % (lo, opt, hi))
    prof: ProfileP = builder.create_optimization_profile()
    rest = tuple(dims[1:])
    prof.set_shape(inp.name, (lo,) + rest, (opt,) + rest, (hi,) + rest)
    config.add_optimization_profile(prof)
    calls.append("optimization profile batch %d/%d/%d (min/opt/max)" % (lo, opt, hi))
    return [-1] + list(rest), {"min": lo, "opt": opt, "max": hi}


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
