"""The part of TensorRT's Python API edge-runtime calls, as Protocols that mirror ``tensorrt-stubs``.

The functions that run (``engine/trt.py``, ``backends/tensorrt.py``) are annotated with these types, so mypy
checks every call they make; :func:`_stubs_conform` (checked by mypy, never called) assigns the stubs' own
objects to them, so a Protocol that drifts from the stubs fails the type check (``tests/test_tensorrt_runner.py``
runs mypy). The stubs describe TensorRT 10.x; what older and newer versions lack is dispatched in ``trt.py`` and
enforced by the version doubles in ``tests/trt_double.py``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:
    import tensorrt as trt_t


class TensorP(Protocol):
    name: str
    shape: Any  # Dims: behaves like a tuple of ints


class NetworkP(Protocol):
    @property
    def num_inputs(self) -> int: ...
    def get_input(self, index: int) -> Any: ...


class ProfileP(Protocol):
    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None: ...


class TimingCacheP(Protocol):
    def serialize(self) -> Any: ...


class ConfigP(Protocol):
    def set_flag(self, flag: Any) -> None: ...
    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None: ...
    def add_optimization_profile(self, profile: Any) -> int: ...
    def create_timing_cache(self, serialized_timing_cache: Any) -> Any: ...
    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool: ...
    def get_timing_cache(self) -> Any: ...


class CalibConfigP(ConfigP, Protocol):
    """TensorRT 8.5-10.x only (removed in 11)."""
    int8_calibrator: Any
    def set_calibration_profile(self, profile: Any) -> bool: ...


class ParserP(Protocol):
    @property
    def num_errors(self) -> int: ...
    def parse(self, model: Any, path: str = ...) -> bool: ...
    def get_error(self, index: int) -> Any: ...


class BuilderP(Protocol):
    @property
    def num_DLA_cores(self) -> int: ...
    def create_network(self, flags: int = ...) -> Any: ...
    def create_builder_config(self) -> Any: ...
    def create_optimization_profile(self) -> Any: ...
    def build_serialized_network(self, network: Any, config: Any) -> Any: ...


class ContextP(Protocol):
    def set_input_shape(self, name: str, shape: Any) -> bool: ...
    def get_tensor_shape(self, name: str) -> Any: ...
    def set_tensor_address(self, name: str, memory: int) -> bool: ...
    def execute_async_v3(self, stream_handle: int) -> bool: ...


class EngineP(Protocol):
    @property
    def num_io_tensors(self) -> int: ...
    def get_tensor_name(self, index: int) -> str: ...
    def get_tensor_mode(self, name: str) -> Any: ...
    def get_tensor_shape(self, name: str) -> Any: ...
    def get_tensor_dtype(self, name: str) -> Any: ...
    def create_execution_context(self) -> Any: ...


class RuntimeP(Protocol):
    engine_host_code_allowed: bool
    def deserialize_cuda_engine(self, serialized_engine: Any) -> Any: ...


def _stubs_conform(logger: "trt_t.ILogger", plan: bytes) -> None:  # pragma: no cover - for mypy only
    """Never called: mypy checks that the stubs' objects satisfy the Protocols above."""
    import tensorrt as trt

    builder: BuilderP = trt.Builder(logger)
    network: NetworkP = trt.Builder(logger).create_network(0)
    tensor: TensorP = network.get_input(0)
    config: CalibConfigP = trt.Builder(logger).create_builder_config()
    profile: ProfileP = trt.Builder(logger).create_optimization_profile()
    parser: ParserP = trt.OnnxParser(trt.Builder(logger).create_network(0), logger)
    cache: TimingCacheP = config.get_timing_cache()
    runtime: RuntimeP = trt.Runtime(logger)
    engine: EngineP = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context: ContextP = trt.Runtime(logger).deserialize_cuda_engine(plan).create_execution_context()
    del builder, tensor, profile, parser, cache, runtime, engine, context
