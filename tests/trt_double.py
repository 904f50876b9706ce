"""Recording test doubles of TensorRT's Python API per version, and a numpy-backed fake CUDA runtime (tests only).

``fake_tensorrt("8.5.2")`` returns a module-like object whose builder/config/parser record every call in
``module.record``, and whose Runtime/engine/execution context really run a tiny linear "network" on the bytes
found at the addresses bound by name. The surface follows NVIDIA's API docs and migration guides per version;
a call the version does not have raises AttributeError, as the real bindings do:

- 8.5: no BuilderFlag.VERSION_COMPATIBLE; still has the pre-10 APIs (``build_engine``, ``max_workspace_size``,
  ``num_bindings``, ``execute_async_v2``) which 10.0 removed.
- 8.6: + VERSION_COMPATIBLE.
- 10.x: EXPLICIT_BATCH still in the enum (ignored); the APIs above gone; FP16/INT8 flags, the entropy calibrator,
  ``int8_calibrator`` and ``set_calibration_profile`` still there (deprecated 10.1).
- 11.x: EXPLICIT_BATCH gone; BuilderFlag FP16/INT8 gone; IInt8EntropyCalibrator2, ``int8_calibrator``,
  ``set_calibration_profile`` and ``platform_has_fast_fp16`` gone (strongly typed networks only).

``FakeCudart(major)`` stands in for cuda-python's ``cudart``: device memory is numpy buffers addressed by their
real addresses, so copies move real bytes (``moved`` records them, with whether the host side was page-locked);
``cudaGraphInstantiate`` takes CUDA 11's (graph, log buffer, size) or CUDA 12's (graph, flags) arguments.
"""
from __future__ import annotations

import ctypes
import enum
import types
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

W_SEED = 7


def reference_logits(x: np.ndarray, classes: int = 10) -> np.ndarray:
    """What the fake engine computes: a fixed linear map of the flattened image (to check bytes end to end)."""
    w = np.random.default_rng(W_SEED).standard_normal((int(np.prod(x.shape[1:])), classes)).astype(np.float32)
    return (x.reshape(x.shape[0], -1) @ w).astype(np.float32)


# --------------------------------------------------------------------------------------------------- fake CUDA
class FakeCudart:
    """The cudart calls edge-runtime makes, on host memory. Errors are returned as in cuda-python: (err, value)."""

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStreamCaptureMode(enum.IntEnum):
        cudaStreamCaptureModeGlobal = 0

    def __init__(self, major: int = 12, gpu: str = "Orin (nvgpu)", cc: Tuple[int, int] = (8, 7)) -> None:
        self.major = major
        self.gpu, self.cc = gpu, cc
        self.device: Dict[int, np.ndarray] = {}
        self.pinned: Dict[int, np.ndarray] = {}
        self.streams: Dict[int, List[Any]] = {}
        self.events: Dict[int, float] = {}
        self.graphs: Dict[int, List[Any]] = {}
        self.execs: Dict[int, List[Any]] = {}
        self.moved: List[Tuple[str, int, bool]] = []  # (kind, nbytes, host side page-locked)
        self.calls: List[str] = []
        self.capturing: Optional[int] = None
        self._clock = 0.0
        self._next = 1
        if major < 12:  # CUDA 11.x: (graph, pLogBuffer, bufferSize); the flags variant exists since 11.4
            self.cudaGraphInstantiate = self._instantiate11
        else:
            self.cudaGraphInstantiate = self._instantiate12

    def _id(self) -> int:
        self._next += 1
        return self._next

    def cudaRuntimeGetVersion(self) -> Tuple[int, int]:
        return 0, self.major * 1000 + 40

    def cudaGetDeviceProperties(self, dev: int) -> Tuple[int, Any]:
        return 0, types.SimpleNamespace(name=self.gpu.encode(), major=self.cc[0], minor=self.cc[1])

    def cudaMalloc(self, n: int) -> Tuple[int, int]:
        a = np.zeros(int(n), np.uint8)
        self.device[a.ctypes.data] = a
        return 0, a.ctypes.data

    def cudaFree(self, p: int) -> Tuple[int]:
        if int(p) not in self.device:
            return (1,)
        del self.device[int(p)]
        return (0,)

    def cudaMallocHost(self, n: int) -> Tuple[int, int]:
        a = np.zeros(int(n), np.uint8)
        self.pinned[a.ctypes.data] = a
        return 0, a.ctypes.data

    def cudaFreeHost(self, p: int) -> Tuple[int]:
        if int(p) not in self.pinned:
            return (1,)
        del self.pinned[int(p)]
        return (0,)

    def _is_pinned(self, addr: int, n: int) -> bool:
        return any(b <= addr and addr + n <= b + a.nbytes for b, a in self.pinned.items())

    def _dev(self, addr: int, n: int) -> np.ndarray:
        for b, a in self.device.items():
            if b <= addr and addr + n <= b + a.nbytes:
                return a[addr - b: addr - b + n]
        raise AssertionError("address %#x (+%d) is not device memory" % (addr, n))

    def _copy(self, dst: int, src: int, n: int, kind: Any) -> int:
        if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice:
            self._dev(int(dst), n)[:] = np.frombuffer(ctypes.string_at(int(src), n), np.uint8)
            self.moved.append(("h2d", n, self._is_pinned(int(src), n)))
        else:
            ctypes.memmove(int(dst), self._dev(int(src), n).ctypes.data, n)
            self.moved.append(("d2h", n, self._is_pinned(int(dst), n)))
        return 0

    def cudaMemcpy(self, dst: int, src: int, n: int, kind: Any) -> Tuple[int]:
        return (self._copy(dst, src, n, kind),)

    def cudaMemcpyAsync(self, dst: int, src: int, n: int, kind: Any, stream: int) -> Tuple[int]:
        assert int(stream) in self.streams, "unknown stream"
        return (self._copy(dst, src, n, kind),)

    def cudaStreamCreate(self) -> Tuple[int, int]:
        s = self._id()
        self.streams[s] = []
        return 0, s

    def cudaStreamDestroy(self, s: int) -> Tuple[int]:
        return (0,) if self.streams.pop(int(s), None) is not None else (1,)

    def cudaStreamSynchronize(self, s: int) -> Tuple[int]:
        return (0,) if int(s) in self.streams else (1,)

    def cudaEventCreate(self) -> Tuple[int, int]:
        e = self._id()
        self.events[e] = 0.0
        return 0, e

    def cudaEventRecord(self, e: int, s: int) -> Tuple[int]:
        self._clock += 0.25
        self.events[int(e)] = self._clock
        return (0,)

    def cudaEventElapsedTime(self, a: int, b: int) -> Tuple[int, float]:
        return 0, self.events[int(b)] - self.events[int(a)]

    def cudaEventDestroy(self, e: int) -> Tuple[int]:
        return (0,) if self.events.pop(int(e), None) is not None else (1,)

    def cudaStreamBeginCapture(self, s: int, mode: Any) -> Tuple[int]:
        self.capturing = int(s)
        self.graphs[int(s)] = []
        return (0,)

    def cudaStreamEndCapture(self, s: int) -> Tuple[int, int]:
        ops = self.graphs.pop(int(s))
        self.capturing = None
        g = self._id()
        self.graphs[g] = ops
        return 0, g

    def _instantiate12(self, graph: int, flags: int) -> Tuple[int, int]:
        self.calls.append("cudaGraphInstantiate(graph, flags)")
        x = self._id()
        self.execs[x] = self.graphs[int(graph)]
        return 0, x

    def _instantiate11(self, graph: int, log_buffer: Any, size: int) -> Tuple[int, int, int]:
        raise AssertionError("CUDA 11's cudaGraphInstantiate takes a log buffer: edge-runtime must not call it")

    def cudaGraphInstantiateWithFlags(self, graph: int, flags: int) -> Tuple[int, int]:
        self.calls.append("cudaGraphInstantiateWithFlags(graph, flags)")
        x = self._id()
        self.execs[x] = self.graphs[int(graph)]
        return 0, x

    def cudaGraphLaunch(self, x: int, s: int) -> Tuple[int]:
        for op in self.execs[int(x)]:
            op()
        self.calls.append("cudaGraphLaunch")
        return (0,)

    def cudaGraphExecDestroy(self, x: int) -> Tuple[int]:
        return (0,) if self.execs.pop(int(x), None) is not None else (1,)

    def cudaGraphDestroy(self, g: int) -> Tuple[int]:
        return (0,) if self.graphs.pop(int(g), None) is not None else (1,)

    def live(self) -> Dict[str, int]:
        """What is still allocated (all zero after a runner is deactivated)."""
        return {"device": len(self.device), "pinned": len(self.pinned), "streams": len(self.streams),
                "events": len(self.events), "graphs": len(self.graphs), "execs": len(self.execs)}


# -------------------------------------------------------------------------------------------------- TensorRT
def fake_tensorrt(version: str, parse_ok: bool = True, dynamic: bool = False, cuda: Optional[FakeCudart] = None,
                  extra_outputs: Tuple[str, ...] = (), inputs: Tuple[str, ...] = ("input",), classes: int = 10) -> Any:
    major, minor = (int(x) for x in version.split(".")[:2])
    v = (major, minor)
    record: List[str] = []
    flags = ["GPU_FALLBACK"]
    if major < 11:
        flags += ["FP16", "INT8"]
    if v >= (8, 6):
        flags += ["VERSION_COMPATIBLE"]
    BuilderFlag = enum.IntEnum("BuilderFlag", flags, start=0)  # type: ignore[misc]
    net_flags = (["EXPLICIT_BATCH"] if major < 11 else []) + (["STRONGLY_TYPED"] if v >= (9, 0) else [])
    NetFlag = enum.IntEnum("NetworkDefinitionCreationFlag", net_flags, start=0)  # type: ignore[misc]
    MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE"], start=0)
    DeviceType = enum.IntEnum("DeviceType", ["GPU", "DLA"], start=0)
    TensorIOMode = enum.IntEnum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"], start=0)
    DataType = enum.IntEnum("DataType", ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8"], start=0)

    class ILogger:
        ERROR, INTERNAL_ERROR, WARNING = 1, 0, 2

        def __init__(self) -> None:
            pass

    class Input:
        name = inputs[0]
        shape = (-1, 3, 32, 32) if dynamic else (1, 3, 32, 32)

    class Network:
        num_inputs = len(inputs)

        def get_input(self, i: int) -> Input:
            return Input()

    class Parser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network: Network, logger: Any) -> None:
            record.append("OnnxParser")

        def parse(self, data: bytes) -> bool:
            record.append("parse(%d bytes)" % len(data))
            return parse_ok

        def get_error(self, i: int) -> str:
            return "Unsupported ONNX op: FancyOp"

    class Cache:
        def serialize(self) -> bytes:
            return b"timing-cache"

    config_attrs = {"default_device_type", "DLA_core"} | ({"int8_calibrator"} if major < 11 else set()) | \
        ({"max_workspace_size"} if major < 10 else set())

    class Config:
        def __setattr__(self, k: str, val: Any) -> None:
            if k not in config_attrs:
                raise AttributeError("'tensorrt.IBuilderConfig' object has no attribute %r (TensorRT %s)" % (k, version))
            record.append("config.%s = %s" % (k, getattr(val, "name", type(val).__name__ if k == "int8_calibrator" else val)))
            object.__setattr__(self, k, val)

        def set_flag(self, f: Any) -> None:
            record.append("set_flag(%s)" % f.name)

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            record.append("set_memory_pool_limit(%s, %d)" % (pool.name, size))

        def create_timing_cache(self, data: bytes) -> Cache:
            record.append("create_timing_cache(%d bytes)" % len(data))
            return Cache()

        def set_timing_cache(self, cache: Cache, ignore_mismatch: bool) -> bool:
            record.append("set_timing_cache")
            return True

        def get_timing_cache(self) -> Cache:
            return Cache()

        def add_optimization_profile(self, p: Any) -> int:
            record.append("add_optimization_profile%s" % (p.shapes,))
            return 0

    if major < 11:
        def set_calibration_profile(self: Any, p: Any) -> bool:
            record.append("set_calibration_profile%s" % (p.shapes,))
            return True

        Config.set_calibration_profile = set_calibration_profile  # type: ignore[attr-defined]

    class Profile:
        def set_shape(self, name: str, mn: Any, opt: Any, mx: Any) -> None:
            self.shapes = (name, tuple(mn), tuple(opt), tuple(mx))

    class Builder:
        num_DLA_cores = 2

        def __init__(self, logger: Any) -> None:
            record.append("Builder")

        def create_network(self, flags: int = 0) -> Network:
            record.append("create_network(%d)" % flags)
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            record.append("build_serialized_network")
            cal = config.__dict__.get("int8_calibrator")
            if cal is not None:  # as TensorRT does: pull batches until the calibrator says it is done
                assert cal.get_batch_size() >= 1
                while True:
                    ptrs = cal.get_batch([inputs[0]])
                    if ptrs is None:
                        break
                    record.append("calibrator batch at %#x" % ptrs[0])
                cal.write_calibration_cache(b"calib-cache")
            return b"PLAN-" + version.encode()

    if major < 11:
        Builder.platform_has_fast_fp16 = True  # type: ignore[attr-defined]
    if major < 10:
        def build_engine(self: Any, network: Any, config: Any) -> Any:  # removed in 10.0
            raise AssertionError("build_engine is deprecated; edge-runtime must use build_serialized_network")

        Builder.build_engine = build_engine  # type: ignore[attr-defined]

    outputs = ("logits",) + tuple(extra_outputs)
    io = list(inputs) + list(outputs)

    class Context:
        def __init__(self) -> None:
            self.addr: Dict[str, int] = {}
            self.in_shape: Dict[str, Tuple[int, ...]] = {}
            record.append("create_execution_context")

        def set_input_shape(self, name: str, shape: Any) -> bool:
            assert name in inputs, "set_input_shape on %r, not an input" % name
            shape = tuple(int(d) for d in shape)
            if dynamic and not 1 <= shape[0] <= 8:
                return False
            self.in_shape[name] = shape
            return True

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            n = self.in_shape.get(inputs[0], (-1,))[0] if dynamic else 1
            if name in inputs:
                return (n, 3, 32, 32)
            return (n, classes) if name == "logits" else (n, 16)

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            assert name in io, "no tensor %r" % name
            self.addr[name] = int(ptr)
            return True

        def execute_async_v3(self, stream: int) -> bool:
            assert cuda is not None
            if cuda.capturing is not None:
                cuda.graphs[cuda.capturing].append(lambda: self._run())
                return True
            return self._run()

        def _run(self) -> bool:
            assert cuda is not None
            if set(self.addr) != set(io):
                record.append("execute failed: unbound %s" % sorted(set(io) - set(self.addr)))
                return False
            shp = self.get_tensor_shape(inputs[0])
            if shp[0] < 1:
                return False
            n_in = int(np.prod(shp)) * 4
            x = cuda._dev(self.addr[inputs[0]], n_in).view(np.float32).reshape(shp)
            y = reference_logits(x, classes)
            cuda._dev(self.addr["logits"], y.nbytes)[:] = y.view(np.uint8).ravel()
            for o in extra_outputs:
                f = np.full((shp[0], 16), 3.0, np.float32)
                cuda._dev(self.addr[o], f.nbytes)[:] = f.view(np.uint8).ravel()
            record.append("execute_async_v3(batch %d)" % shp[0])
            return True

    if major < 10:
        def execute_async_v2(self: Any, bindings: Any, stream: int) -> bool:  # removed in 10.0
            raise AssertionError("execute_async_v2 uses binding indices; edge-runtime must use execute_async_v3")

        Context.execute_async_v2 = execute_async_v2  # type: ignore[attr-defined]

    class Engine:
        num_io_tensors = len(io)

        def get_tensor_name(self, i: int) -> str:
            return io[i]

        def get_tensor_mode(self, name: str) -> Any:
            return TensorIOMode.INPUT if name in inputs else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name: str) -> Tuple[int, ...]:
            b = -1 if dynamic else 1
            if name in inputs:
                return (b, 3, 32, 32)
            return (b, classes) if name == "logits" else (b, 16)

        def get_tensor_dtype(self, name: str) -> Any:
            return DataType.FLOAT

        def create_execution_context(self) -> Context:
            return Context()

    if major < 10:
        Engine.num_bindings = len(io)  # type: ignore[attr-defined]

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan: bytes) -> Optional[Engine]:
            record.append("deserialize_cuda_engine(%d bytes)" % len(plan))
            return Engine() if bytes(plan) == b"PLAN-" + version.encode() else None

    mod = types.SimpleNamespace(__version__=version, record=record, Builder=Builder, OnnxParser=Parser, ILogger=ILogger,
                                BuilderFlag=BuilderFlag, NetworkDefinitionCreationFlag=NetFlag, MemoryPoolType=MemoryPoolType,
                                DeviceType=DeviceType, TensorIOMode=TensorIOMode, DataType=DataType, Runtime=Runtime)
    if major < 11:
        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                pass

        mod.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return mod


VERSIONS = ("8.5.2", "8.6.2", "10.3.0", "11.4.1")


class FakePycudaDriver:
    """pycuda.driver's calls edge-runtime makes, on a :class:`FakeCudart`'s memory (so the TensorRT double reads the
    same bytes): mem_alloc, memcpy_*[_async], pagelocked_empty, Stream, Device."""

    def __init__(self, cudart: FakeCudart) -> None:
        self.rt = cudart
        fake = self

        class DeviceAllocation:
            def __init__(self, n: int) -> None:
                self.ptr = cudart.cudaMalloc(n)[1]

            def __int__(self) -> int:
                return int(self.ptr)

            def free(self) -> None:
                assert cudart.cudaFree(self.ptr) == (0,)

        class HostAllocation:
            def __init__(self, shape: Tuple[int, ...], dtype: Any) -> None:
                n = int(np.prod(shape)) * np.dtype(dtype).itemsize
                self.ptr = cudart.cudaMallocHost(max(1, n))[1]
                self.__array_interface__ = {"shape": tuple(shape), "typestr": np.dtype(dtype).str,
                                            "data": (self.ptr, False), "version": 3}

            def free(self) -> None:
                assert cudart.cudaFreeHost(self.ptr) == (0,)

        class Stream:
            def __init__(self) -> None:
                self.handle = cudart.cudaStreamCreate()[1]

            def synchronize(self) -> None:
                pass

        class Device:
            def __init__(self, i: int) -> None:
                pass

            def name(self) -> str:
                return cudart.gpu

            def compute_capability(self) -> Tuple[int, int]:
                return cudart.cc

        self.DeviceAllocation, self.Stream, self.Device = DeviceAllocation, Stream, Device
        self._host = HostAllocation
        del fake

    def mem_alloc(self, n: int) -> Any:
        return self.DeviceAllocation(n)

    def pagelocked_empty(self, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.asarray(self._host(shape, dtype))

    def memcpy_htod_async(self, buf: Any, host: np.ndarray, stream: Any) -> None:
        self.rt._copy(int(buf), host.ctypes.data, host.nbytes, FakeCudart.cudaMemcpyKind.cudaMemcpyHostToDevice)

    def memcpy_dtoh_async(self, host: np.ndarray, buf: Any, stream: Any) -> None:
        self.rt._copy(host.ctypes.data, int(buf), host.nbytes, FakeCudart.cudaMemcpyKind.cudaMemcpyDeviceToHost)

    memcpy_htod = lambda self, buf, host: self.memcpy_htod_async(buf, host, None)  # noqa: E731
    memcpy_dtoh = lambda self, host, buf: self.memcpy_dtoh_async(host, buf, None)  # noqa: E731

    def get_version(self) -> Tuple[int, int, int]:
        return (self.rt.major, 4, 0)
