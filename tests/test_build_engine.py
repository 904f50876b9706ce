from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime.cli import main
from edge_runtime.engine import build as B
from edge_runtime.engine import trt as T
from edge_runtime.errors import EdgeRuntimeError

from .trt_double import fake_tensorrt


def _build(ver: str, precision: str, src: str = "fp32", **kw: Any) -> list:
    trt = fake_tensorrt(ver, dynamic=kw.pop("dynamic", False))
    out = T.build_serialized(trt, b"onnx", T.BuildOptions(precision=precision, onnx_precision=src, **kw), iter([]), 1)
    assert out.plan == b"PLAN-" + ver.encode()
    return trt.record


def test_dispatch_trt85() -> None:
    rec = _build("8.5.2", "fp16", workspace_mb=256, timing_cache=b"")
    assert "create_network(1)" in rec  # 1 << EXPLICIT_BATCH
    assert "set_flag(FP16)" in rec and "set_memory_pool_limit(WORKSPACE, 268435456)" in rec
    assert "create_timing_cache(0 bytes)" in rec and "set_timing_cache" in rec
    assert "set_flag(INT8)" in _build("8.5.2", "int8", "int8")  # Q/DQ network needs the INT8 flag before 11
    with pytest.raises(EdgeRuntimeError, match="needs TensorRT 8.6"):
        _build("8.5.2", "fp32", version_compatible=True)
    rec = _build("8.5.2", "int8", "fp32", calibrator="entropy")
    assert "set_flag(INT8)" in rec and "config.int8_calibrator = EntropyCalibrator" in rec


def test_dispatch_trt10() -> None:
    rec = _build("10.3.0", "fp16", dla_core=1, version_compatible=True, dynamic=True, max_batch=4)
    assert "create_network(0)" in rec and "set_flag(FP16)" in rec and "set_flag(VERSION_COMPATIBLE)" in rec
    assert "config.default_device_type = DLA" in rec and "config.DLA_core = 1" in rec and "set_flag(GPU_FALLBACK)" in rec
    assert "add_optimization_profile('input', (1, 3, 32, 32), (1, 3, 32, 32), (4, 3, 32, 32))" in rec
    rec = _build("10.13.0", "int8", "int8")
    assert "set_flag(INT8)" in rec
    with pytest.raises(EdgeRuntimeError, match="2 DLA core"):
        _build("10.3.0", "fp32", dla_core=5)


def test_dispatch_trt11() -> None:
    trt = fake_tensorrt("11.4.1")
    out = T.build_serialized(trt, b"onnx", T.BuildOptions(precision="fp16", onnx_precision="fp16"))
    assert "create_network(STRONGLY_TYPED)" in out.calls and "create_network(1)" in trt.record  # 11: the only flag
    assert not hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")  # removed in 11 (the double follows)
    rec = trt.record
    assert not any(r.startswith("set_flag") for r in rec)
    rec = _build("11.4.1", "int8", "int8")
    assert not any("INT8" in r for r in rec)
    with pytest.raises(EdgeRuntimeError, match="no FP16 builder flag.*--target fp16"):
        _build("11.4.1", "fp16", "fp32")
    with pytest.raises(EdgeRuntimeError, match="no INT8 calibrator"):
        _build("11.4.1", "int8", "fp32", calibrator="entropy")
    with pytest.raises(EdgeRuntimeError, match="Q/DQ ONNX"):
        _build("10.3.0", "int8", "fp32")


def test_doubles_raise_on_calls_their_version_lacks() -> None:
    t85, t10, t11 = fake_tensorrt("8.5.2"), fake_tensorrt("10.3.0"), fake_tensorrt("11.4.1")
    assert not hasattr(t85.BuilderFlag, "VERSION_COMPATIBLE") and hasattr(t10.BuilderFlag, "VERSION_COMPATIBLE")
    assert hasattr(t85.Builder, "build_engine") and not hasattr(t10.Builder, "build_engine")  # removed in 10.0
    assert not hasattr(t11.Builder, "platform_has_fast_fp16") and not hasattr(t11, "IInt8EntropyCalibrator2")
    with pytest.raises(AttributeError):
        t11.Builder(None).create_builder_config().int8_calibrator = object()
    with pytest.raises(AttributeError):
        t11.Builder(None).create_builder_config().set_calibration_profile(None)
    with pytest.raises(AttributeError):
        t10.Builder(None).create_builder_config().max_workspace_size = 1 << 20


@pytest.mark.parametrize("ver", ["8.5.2", "8.6.2", "10.3.0"])
def test_calibration_at_the_calibration_batch(ver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dynamic batch + entropy calibrator: a calibration profile at the calibrator's batch (TensorRT calibrates at a
    profile's opt shape, which is 1 in the main profile), and every full batch reaches the device."""
    from edge_runtime.engine import cuda as C

    from .trt_double import FakeCudart

    rt = FakeCudart(11 if ver.startswith("8.5") else 12)
    monkeypatch.setattr(C, "_factory", lambda: C.Cuda(rt=rt, major=rt.major))
    trt = fake_tensorrt(ver, dynamic=True, cuda=rt)
    batches = iter([np.zeros((32, 3, 32, 32), np.float32)] * 3 + [np.zeros((5, 3, 32, 32), np.float32)])
    out = T.build_serialized(trt, b"onnx", T.BuildOptions(precision="int8", onnx_precision="fp32", calibrator="entropy"),
                             batches, calib_batch_size=32)
    rec = trt.record
    assert "set_calibration_profile('input', (32, 3, 32, 32), (32, 3, 32, 32), (32, 3, 32, 32))" in rec
    assert "add_optimization_profile('input', (1, 3, 32, 32), (1, 3, 32, 32), (8, 3, 32, 32))" in rec
    assert sum(r.startswith("calibrator batch at") for r in rec) == 3 and "set_calibration_profile(batch 32)" in out.calls
    assert rt.moved == [("h2d", 32 * 3 * 32 * 32 * 4, False)] * 3 and rt.live()["device"] == 0  # buffer freed


@pytest.mark.parametrize("ver", ["8.5.2", "8.6.2", "10.3.0", "11.4.1"])
def test_batch_profile_per_version(ver: str) -> None:
    src = "fp16" if ver.startswith("11") else "fp32"
    trt = fake_tensorrt(ver, dynamic=True)
    out = T.build_serialized(trt, b"onnx", T.BuildOptions(precision="fp16", onnx_precision=src, opt_batch=4, max_batch=4))
    assert "add_optimization_profile('input', (1, 3, 32, 32), (4, 3, 32, 32), (4, 3, 32, 32))" in trt.record
    assert out.profile == {"min": 1, "opt": 4, "max": 4} and out.input_shape == [-1, 3, 32, 32]
    with pytest.raises(EdgeRuntimeError, match="expected 1 <= opt <= max"):
        T.build_serialized(fake_tensorrt(ver, dynamic=True), b"x", T.BuildOptions(precision="fp16", onnx_precision=src,
                                                                                  opt_batch=9, max_batch=8))


def test_parse_error_is_one_line() -> None:
    trt = fake_tensorrt("10.3.0", parse_ok=False)
    with pytest.raises(EdgeRuntimeError, match="cannot parse the ONNX model: Unsupported ONNX op"):
        T.build_serialized(trt, b"x", T.BuildOptions())


def test_build_engine_names_and_manifest(tmp_path: Path, lenet_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trt = fake_tensorrt("10.3.0", dynamic=True)
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(T, "device_identity", lambda: ("Orin (nvgpu)", "8.7"))
    res = B.build_engine(lenet_onnx, "fp16", out_dir=tmp_path, timing_cache=tmp_path / "t.cache", workspace_mb=64)
    path = res.paths[0]
    assert path.name == "lenet5.fp16.b1-1-8.trt10.3.0.orin-nvgpu-sm87.engine" and path.read_bytes() == b"PLAN-10.3.0"
    m = mf.for_artifact(path)
    e = m["engine"]
    assert m["kind"] == "engine" and m["precision"] == "fp16" and e["tensorrt"] == "10.3.0" and e["gpu"] == "Orin (nvgpu)"
    assert e["compute_capability"] == "8.7" and e["input_shape"] == [-1, 3, 32, 32] and "set_flag(FP16)" in e["build_calls"]
    assert e["batch_profile"] == {"min": 1, "opt": 1, "max": 8} and e["int8"] is None
    assert m["source_sha256"] == mf.for_artifact(lenet_onnx)["sha256"]
    assert m["dataset"] == mf.for_artifact(lenet_onnx)["dataset"]
    assert (tmp_path / "t.cache").read_bytes() == b"timing-cache"
    with pytest.raises(EdgeRuntimeError, match="already exists"):
        B.build_engine(lenet_onnx, "fp16", out_dir=tmp_path)
    b8 = B.build_engine(lenet_onnx, "fp16", out_dir=tmp_path, batch=8).paths[0]  # build-engine --batch 8
    assert b8.name == "lenet5.fp16.b1-8-8.trt10.3.0.orin-nvgpu-sm87.engine"
    assert mf.for_artifact(b8)["engine"]["batch_profile"] == {"min": 1, "opt": 8, "max": 8}
    assert "--batch 8" in mf.for_artifact(b8)["engine"]["rebuild_command"]
    assert "add_optimization_profile('input', (1, 3, 32, 32), (8, 3, 32, 32), (8, 3, 32, 32))" in trt.record
    # the runner refuses an engine from another TensorRT/GPU, naming the rebuild command
    with pytest.raises(EdgeRuntimeError, match=r"built with TensorRT 10.3.0 on GPU Orin \(nvgpu\).*this is TensorRT 10.13.0 "
                                               r"on GPU NVIDIA H100.*rebuild with: edge-runtime build-engine"):
        T.check_engine_matches(m, "10.13.0", "NVIDIA H100", "9.0", path)
    T.check_engine_matches(m, "10.3.0", "Orin (nvgpu)", "8.7", path)


def test_without_tensorrt_one_line_and_cpu_backend(tmp_path: Path, lenet_onnx: Path, fixture_data: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    assert main(["build-engine", str(lenet_onnx), "--precision", "fp16", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TensorRT is not installed" in err[0] and "python3-libnvinfer" in err[0] and "--backend onnxruntime" in err[0]
    assert not list(tmp_path.iterdir())
    from edge_runtime import calib

    cset = calib.make("cifar10", per_class=2, data_dir=fixture_data, out_dir=tmp_path / "c")
    assert main(["build-engine", str(lenet_onnx), "--precision", "int8", "--backend", "onnxruntime", "--calib", str(cset),
                 "--data-dir", str(fixture_data), "--out", str(tmp_path / "cpu")]) == 0
    made = sorted(p.name for p in (tmp_path / "cpu").iterdir())
    assert made == ["lenet5.int8-cpu.onnx", "lenet5.int8-cpu.onnx.json", "lenet5.onnx", "lenet5.onnx.json"]
    assert mf.for_artifact(tmp_path / "cpu" / "lenet5.int8-cpu.onnx")["accuracy"]["n"] == 120


BUNDLED = Path(__file__).resolve().parents[1] / "engines" / "bundled"
CPU_INT8 = BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.onnx"
TRT_INT8 = BUNDLED / "mobilenetv2_cifar_x0_5.int8-tensorrt.onnx"
FP32 = BUNDLED / "mobilenetv2_cifar_x0_5.onnx"


def _no_tensorrt() -> Any:
    raise AssertionError("TensorRT must not be imported before the ONNX is checked")


def test_int8_layout_checked_before_tensorrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    if not CPU_INT8.is_file():
        pytest.skip("the bundled INT8 models are not in this checkout")
    assert B.onnx_int8_layout(CPU_INT8, mf.for_artifact(CPU_INT8)) == "cpu"
    assert B.onnx_int8_layout(TRT_INT8, mf.for_artifact(TRT_INT8)) == "tensorrt"
    assert B.onnx_int8_layout(FP32, mf.for_artifact(FP32)) is None
    monkeypatch.setattr(T, "import_tensorrt", _no_tensorrt)
    want = (r"int8-cpu.onnx is the ONNX Runtime CPU INT8 layout \(uint8 activations, int32 bias\); TensorRT needs signed "
            r"symmetric Q/DQ: build-engine \S+\.int8-tensorrt\.onnx \(it exists beside it\), or make one with: "
            r"edge-runtime quantize \S+/mobilenetv2_cifar_x0_5\.onnx --target tensorrt")
    with pytest.raises(EdgeRuntimeError, match=want):
        B.build_engine(CPU_INT8, "int8", out_dir=tmp_path)
    with pytest.raises(EdgeRuntimeError, match="not a Q/DQ INT8 ONNX.*--target tensorrt, or pass --calibrator entropy"):
        B.build_engine(FP32, "int8", out_dir=tmp_path)
    from edge_runtime.backends import load

    with pytest.raises(EdgeRuntimeError, match=want):  # run x.int8-cpu.onnx --backend tensorrt
        load(CPU_INT8, backend="tensorrt", engines_dir=tmp_path)
    rc = main(["build-engine", str(CPU_INT8), "--precision", "int8", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--target tensorrt" in err[0]
    assert not list(tmp_path.iterdir())


def test_int8_engines_from_qdq_and_calibrator_never_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not TRT_INT8.is_file():
        pytest.skip("the bundled INT8 models are not in this checkout")
    from edge_runtime.engine import cuda as C

    from .trt_double import FakeCudart

    rt = FakeCudart(12)
    trt = fake_tensorrt("10.3.0", dynamic=False, cuda=rt)  # as the bundled ONNX: fixed batch 1
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(C, "_factory", lambda: C.Cuda(rt=rt, major=12))
    q = B.build_engine(TRT_INT8, "int8", out_dir=tmp_path).paths[0]
    c = B.build_engine(FP32, "int8", calibrator="entropy", out_dir=tmp_path).paths[0]
    # the bundled ONNX has a fixed batch of 1: no profile in the name, calibration batch 1
    assert q.name == "mobilenetv2_cifar_x0_5.int8-qdq.trt10.3.0.orin-nvgpu-sm87.engine"
    assert c.name == "mobilenetv2_cifar_x0_5.int8-calib.trt10.3.0.orin-nvgpu-sm87.engine"
    mq, mc = mf.for_artifact(q)["engine"], mf.for_artifact(c)["engine"]
    assert mq["int8"]["method"] == "qdq" and mc["int8"]["method"] == "calib"
    cal = mc["calibration"]
    assert cal["images"] == 1000 and cal["batch"] == 1
    assert Path(cal["cache"]).parent == tmp_path / "calib-cache"  # beside the engines, not under the cwd
    assert Path(cal["cache"]).read_bytes() == b"calib-cache"
    assert sum(r.startswith("calibrator batch at") for r in trt.record) == 1000
    assert not any(r.startswith("set_calibration_profile") for r in trt.record)  # fixed batch: nothing to choose
    with pytest.raises(EdgeRuntimeError, match="--batch 8: this ONNX has a fixed batch of 1"):
        B.build_engine(FP32, "fp16", out_dir=tmp_path, batch=8)
