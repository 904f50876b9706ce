"""CUDA device buffers, page-locked host buffers, streams, events and graphs through cuda-python or pycuda (lazy).

The calls that differ by CUDA major are dispatched on the major of the cuda-python bindings (their signatures
follow the CUDA they were generated for):

| call                        | cuda-python 11.x (JetPack 5, CUDA 11.4)     | cuda-python 12+ / 13               | pycuda             |
|-----------------------------|---------------------------------------------|------------------------------------|--------------------|
| instantiate a captured graph| ``cudaGraphInstantiateWithFlags(graph, 0)``  | ``cudaGraphInstantiate(graph, 0)`` | refused (one line) |
|                             | (``cudaGraphInstantiate`` there takes a log buffer and its size) |  |                    |
| page-locked host memory     | ``cudaMallocHost`` / ``cudaFreeHost``         | same                               | ``pagelocked_empty`` |
| async copies                | ``cudaMemcpyAsync(dst, src, n, kind, stream)`` | same                              | ``memcpy_*_async``  |

Tests drive all of it through :data:`_factory` (the seam) with a numpy-backed fake cudart; nothing here has run on
a real GPU on the machines this was written on.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from ..errors import EdgeRuntimeError

_HOW = ("install cuda-python (pip install cuda-python, matching the CUDA of your JetPack/driver) or pycuda "
        "(JetPack: sudo apt install python3-pycuda)")


def _bindings_major(rt: Any) -> int:
    """The CUDA major the cuda-python bindings were generated for (their package version's major)."""
    for modname in ("cuda.bindings", "cuda"):
        try:
            mod = __import__(modname, fromlist=["__version__"])
        except ImportError:
            continue
        v = getattr(mod, "__version__", None)
        if v:
            try:
                return int(str(v).split(".")[0])
            except ValueError:
                pass
    err, ver = rt.cudaRuntimeGetVersion()  # e.g. 11040 -> 11
    return int(ver) // 1000 if int(err) == 0 else 12


class Cuda:
    """The handful of CUDA calls the engine runner, the INT8 calibrator and the split timing need.

    ``rt``/``drv``/``major`` inject a cudart-like or pycuda-driver-like module (tests); by default cuda-python is
    imported, else pycuda."""

    def __init__(self, rt: Any = None, drv: Any = None, major: Optional[int] = None) -> None:
        self.kind = ""
        self._rt: Any = rt
        self._drv: Any = drv
        self.major = 0
        self._pinned: List[Any] = []
        if rt is not None:
            self.kind, self.major = "cuda-python", int(major) if major is not None else _bindings_major(rt)
            return
        if drv is not None:
            self.kind, self.major = "pycuda", int(major or 0)
            return
        try:
            try:
                from cuda.bindings import runtime as crt  # cuda-python >= 12.6
            except ImportError:
                from cuda import cudart as crt  # type: ignore[no-redef]  # older cuda-python (11.x, 12.0-12.5)
            self._rt, self.kind = crt, "cuda-python"
            self.major = int(major) if major is not None else _bindings_major(crt)
            return
        except ImportError:
            pass
        try:
            import pycuda.autoinit  # type: ignore[import-not-found]  # noqa: F401  (creates the context)
            import pycuda.driver as pdrv  # type: ignore[import-not-found]

            self._drv, self.kind = pdrv, "pycuda"
            self.major = int(pdrv.get_version()[0])
        except ImportError:
            raise EdgeRuntimeError("TensorRT needs CUDA device buffers but neither cuda-python nor pycuda is importable; "
                                   + _HOW) from None

    # ------------------------------------------------------------------------------------------------ helpers
    def _check(self, res: Any, what: str) -> Any:
        err = res[0] if isinstance(res, tuple) else res
        if int(err) != 0:
            raise EdgeRuntimeError("CUDA %s failed (%s); check the GPU and driver (nvidia-smi / tegrastats)" % (what, err))
        return res[1] if isinstance(res, tuple) and len(res) == 2 else (res[1:] if isinstance(res, tuple) else None)

    def device_info(self) -> Tuple[str, str]:
        """(GPU name, compute capability 'major.minor') of device 0."""
        if self._rt is not None:
            prop = self._check(self._rt.cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
            name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
            return name.rstrip("\x00"), "%d.%d" % (prop.major, prop.minor)
        dev = self._drv.Device(0)
        major, minor = dev.compute_capability()
        return str(dev.name()), "%d.%d" % (major, minor)

    # ------------------------------------------------------------------------------------------------ memory
    def malloc(self, nbytes: int) -> Any:
        if self._rt is not None:
            return self._check(self._rt.cudaMalloc(int(nbytes)), "cudaMalloc")
        return self._drv.mem_alloc(int(nbytes))

    def ptr(self, buf: Any) -> int:
        return int(buf)

    def free(self, buf: Any) -> None:
        if self._rt is not None:
            self._check(self._rt.cudaFree(buf), "cudaFree")
        else:
            buf.free()

    def host_empty(self, shape: Tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """A page-locked (pinned) host array: async copies from it really are async and run at full bandwidth."""
        dt = np.dtype(dtype)
        n = int(np.prod(shape)) * dt.itemsize
        if self._rt is not None:
            addr = int(self._check(self._rt.cudaMallocHost(max(1, n)), "cudaMallocHost"))
            raw = (ctypes.c_byte * max(1, n)).from_address(addr)
            arr = np.frombuffer(raw, dtype=dt, count=int(np.prod(shape))).reshape(shape)
            self._pinned.append(addr)
            return arr
        return self._drv.pagelocked_empty(shape, dt)  # type: ignore[no-any-return]

    def host_free(self, arr: np.ndarray) -> None:
        if self._rt is not None:
            addr = int(arr.ctypes.data)
            if addr in self._pinned:
                self._pinned.remove(addr)
                self._check(self._rt.cudaFreeHost(addr), "cudaFreeHost")
        else:
            base = getattr(arr, "base", None)
            if base is not None and hasattr(base, "free"):
                base.free()

    # ------------------------------------------------------------------------------------------------ streams
    def stream(self) -> Any:
        if self._rt is not None:
            return self._check(self._rt.cudaStreamCreate(), "cudaStreamCreate")
        return self._drv.Stream()

    def stream_destroy(self, stream: Any) -> None:
        if self._rt is not None:
            self._check(self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")
        # pycuda's Stream is released with the Python object

    def stream_handle(self, stream: Any) -> int:
        return int(stream) if self._rt is not None else int(stream.handle)

    def htod(self, buf: Any, host: np.ndarray, stream: Optional[Any] = None) -> None:
        host = np.ascontiguousarray(host)
        if self._rt is not None:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            if stream is None:
                self._check(self._rt.cudaMemcpy(buf, host.ctypes.data, host.nbytes, kind), "cudaMemcpy")
            else:
                self._check(self._rt.cudaMemcpyAsync(buf, host.ctypes.data, host.nbytes, kind, stream), "cudaMemcpyAsync")
        elif stream is None:
            self._drv.memcpy_htod(buf, host)
        else:
            self._drv.memcpy_htod_async(buf, host, stream)

    def dtoh(self, host: np.ndarray, buf: Any, stream: Optional[Any] = None) -> None:
        if self._rt is not None:
            kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
            if stream is None:
                self._check(self._rt.cudaMemcpy(host.ctypes.data, buf, host.nbytes, kind), "cudaMemcpy")
            else:
                self._check(self._rt.cudaMemcpyAsync(host.ctypes.data, buf, host.nbytes, kind, stream), "cudaMemcpyAsync")
        elif stream is None:
            self._drv.memcpy_dtoh(host, buf)
        else:
            self._drv.memcpy_dtoh_async(host, buf, stream)

    def sync(self, stream: Any) -> None:
        if self._rt is not None:
            self._check(self._rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        else:
            stream.synchronize()

    # ------------------------------------------------------------------------------------------- events, graphs
    def _need_rt(self, what: str) -> Any:
        if self._rt is None:
            raise EdgeRuntimeError("%s needs cuda-python (pip install cuda-python for CUDA %s); pycuda is not supported "
                                   "for it" % (what, self.major or "of this JetPack"))
        return self._rt

    def event(self) -> Any:
        return self._check(self._need_rt("CUDA event timing").cudaEventCreate(), "cudaEventCreate")

    def record(self, ev: Any, stream: Any) -> None:
        self._check(self._rt.cudaEventRecord(ev, stream), "cudaEventRecord")

    def elapsed_ms(self, a: Any, b: Any) -> float:
        return float(self._check(self._rt.cudaEventElapsedTime(a, b), "cudaEventElapsedTime"))

    def event_destroy(self, ev: Any) -> None:
        self._check(self._rt.cudaEventDestroy(ev), "cudaEventDestroy")

    def capture_graph(self, stream: Any, work: Callable[[], Any]) -> Tuple[Any, Any]:
        """(graph, executable graph) of what ``work`` enqueues on ``stream``; the instantiate call by CUDA major."""
        rt = self._need_rt("a CUDA graph")
        self._check(rt.cudaStreamBeginCapture(stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal),
                    "cudaStreamBeginCapture")
        work()
        graph = self._check(rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        if self.major >= 12:
            exe = self._check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        else:  # CUDA 11: cudaGraphInstantiate(graph, logBuffer, size); the flags variant exists since 11.4
            exe = self._check(rt.cudaGraphInstantiateWithFlags(graph, 0), "cudaGraphInstantiateWithFlags")
        return graph, exe

    def graph_launch(self, exe: Any, stream: Any) -> None:
        self._check(self._rt.cudaGraphLaunch(exe, stream), "cudaGraphLaunch")

    def graph_destroy(self, graph: Any, exe: Any) -> None:
        self._check(self._rt.cudaGraphExecDestroy(exe), "cudaGraphExecDestroy")
        self._check(self._rt.cudaGraphDestroy(graph), "cudaGraphDestroy")


_factory: Callable[[], Cuda] = Cuda


def get() -> Cuda:
    """A :class:`Cuda` helper (tests replace ``_factory`` with one built on a fake cudart)."""
    return _factory()
