"""CUDA device buffers and device facts through cuda-python or pycuda, whichever is importable (lazy)."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np

from ..errors import EdgeRuntimeError

_HOW = ("install cuda-python (pip install cuda-python, matching the CUDA of your JetPack/driver) or pycuda "
        "(JetPack: sudo apt install python3-pycuda)")


class Cuda:
    """The handful of CUDA calls the engine runner and the INT8 calibrator need."""

    def __init__(self) -> None:
        self.kind = ""
        self._rt: Any = None
        self._drv: Any = None
        try:
            try:
                from cuda.bindings import runtime as rt  # cuda-python >= 12.6
            except ImportError:
                from cuda import cudart as rt  # type: ignore[no-redef]  # older cuda-python
            self._rt, self.kind = rt, "cuda-python"
            return
        except ImportError:
            pass
        try:
            import pycuda.autoinit  # type: ignore[import-not-found]  # noqa: F401  (creates the context)
            import pycuda.driver as drv  # type: ignore[import-not-found]

            self._drv, self.kind = drv, "pycuda"
        except ImportError:
            raise EdgeRuntimeError("TensorRT needs CUDA device buffers but neither cuda-python nor pycuda is importable; "
                                   + _HOW) from None

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

    def stream(self) -> Any:
        if self._rt is not None:
            return self._check(self._rt.cudaStreamCreate(), "cudaStreamCreate")
        return self._drv.Stream()

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


_factory: Callable[[], Cuda] = Cuda


def get() -> Cuda:
    """A :class:`Cuda` helper (tests replace ``_factory`` with a double)."""
    return _factory()
