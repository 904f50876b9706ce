"""A recording test double of the tensorrt module's API surface, per version (tests only; never shipped).

``fake_tensorrt("8.5.2")`` returns a module-like object whose Builder/config/parser record every call in
``module.record``. The surface follows NVIDIA's documentation for each version: 8.5 has no
VERSION_COMPATIBLE flag; 10.x still has FP16/INT8 flags and the entropy calibrator; 11 drops the FP16 and
INT8 builder flags and the INT8 calibrators.
"""
from __future__ import annotations

import enum
import types
from typing import Any, List


def fake_tensorrt(version: str, parse_ok: bool = True, dynamic: bool = False) -> Any:
    major, minor = (int(x) for x in version.split(".")[:2])
    record: List[str] = []
    flags = ["GPU_FALLBACK"]
    if major < 11:
        flags += ["FP16", "INT8"]
    if (major, minor) >= (8, 6):
        flags += ["VERSION_COMPATIBLE"]
    BuilderFlag = enum.IntEnum("BuilderFlag", flags, start=0)  # type: ignore[misc]
    net_flags = ["EXPLICIT_BATCH"] + (["STRONGLY_TYPED"] if (major, minor) >= (9, 0) else [])
    NetFlag = enum.IntEnum("NetworkDefinitionCreationFlag", net_flags, start=0)  # type: ignore[misc]
    MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE"], start=0)
    DeviceType = enum.IntEnum("DeviceType", ["GPU", "DLA"], start=0)

    class ILogger:
        ERROR, INTERNAL_ERROR, WARNING = 1, 0, 2

        def __init__(self) -> None:
            pass

    class Input:
        name = "input"
        shape = (-1, 3, 32, 32) if dynamic else (1, 3, 32, 32)

    class Network:
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

    class Config:
        def __setattr__(self, k: str, v: Any) -> None:
            record.append("config.%s = %s" % (k, getattr(v, "name", type(v).__name__ if k == "int8_calibrator" else v)))
            object.__setattr__(self, k, v)

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

    class Profile:
        def set_shape(self, name: str, mn: Any, opt: Any, mx: Any) -> None:
            self.shapes = (name, mn, opt, mx)

    class Builder:
        platform_has_fast_fp16 = True
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
            return b"PLAN-" + version.encode()

    mod = types.SimpleNamespace(__version__=version, record=record, Builder=Builder, OnnxParser=Parser, ILogger=ILogger,
                                BuilderFlag=BuilderFlag, NetworkDefinitionCreationFlag=NetFlag, MemoryPoolType=MemoryPoolType,
                                DeviceType=DeviceType)
    if major < 11:
        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                pass

        mod.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return mod
