from __future__ import annotations

import subprocess
import sys
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
    rec = _build("11.0.0", "fp16", "fp16")
    assert "create_network(%d)" % (1 << 1) in rec  # STRONGLY_TYPED
    assert not any(r.startswith("set_flag") for r in rec)
    rec = _build("11.0.0", "int8", "int8")
    assert not any("INT8" in r for r in rec)
    with pytest.raises(EdgeRuntimeError, match="no FP16 builder flag.*--target fp16"):
        _build("11.0.0", "fp16", "fp32")
    with pytest.raises(EdgeRuntimeError, match="no INT8 calibrator"):
        _build("11.0.0", "int8", "fp32", calibrator="entropy")
    with pytest.raises(EdgeRuntimeError, match="Q/DQ ONNX"):
        _build("10.3.0", "int8", "fp32")


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
    assert path.name == "lenet5.fp16.trt10.3.0.orin-nvgpu-sm87.engine" and path.read_bytes() == b"PLAN-10.3.0"
    m = mf.for_artifact(path)
    e = m["engine"]
    assert m["kind"] == "engine" and m["precision"] == "fp16" and e["tensorrt"] == "10.3.0" and e["gpu"] == "Orin (nvgpu)"
    assert e["compute_capability"] == "8.7" and e["input_shape"] == [-1, 3, 32, 32] and "set_flag(FP16)" in e["build_calls"]
    assert m["source_sha256"] == mf.for_artifact(lenet_onnx)["sha256"]
    assert m["dataset"] == mf.for_artifact(lenet_onnx)["dataset"]
    assert (tmp_path / "t.cache").read_bytes() == b"timing-cache"
    with pytest.raises(EdgeRuntimeError, match="already exists"):
        B.build_engine(lenet_onnx, "fp16", out_dir=tmp_path)
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


def test_mypy_trt_module_against_stubs() -> None:
    pytest.importorskip("mypy")
    r = subprocess.run([sys.executable, "-m", "mypy", "edge_runtime/engine/trt.py", "edge_runtime/engine/cuda.py"],
                       capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]))
    assert r.returncode == 0, r.stdout + r.stderr


def _real_trt() -> Any:
    try:
        return T.import_tensorrt()
    except EdgeRuntimeError:
        pytest.skip("TensorRT is not importable here")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_contract_real_engine_matches_onnxruntime(tmp_path: Path, lenet_onnx: Path, precision: str) -> None:
    _real_trt()
    from edge_runtime.evaluate import load_artifact

    res = B.build_engine(lenet_onnx, precision, out_dir=tmp_path)
    x = np.random.default_rng(0).standard_normal((16, 3, 32, 32)).astype(np.float32)
    with load_artifact(res.paths[0])[0] as eng, load_artifact(lenet_onnx)[0] as ref:
        a, b = eng.infer(x), ref.infer(x)
    assert (a.argmax(1) == b.argmax(1)).mean() >= (1.0 if precision == "fp32" else 0.9)
    assert np.abs(a - b).max() <= (1e-3 if precision == "fp32" else 5e-2)
