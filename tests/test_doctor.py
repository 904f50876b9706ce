"""edge-runtime doctor: here (no TensorRT) the CPU rows run, the TensorRT rows say "not available here", exit 2;
with the TensorRT doubles and the fake CUDA the device path runs end to end (build, compare, bench)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from edge_runtime import doctor
from edge_runtime.engine import cuda as C
from edge_runtime.engine import trt as T

from .conftest import run_cli
from .trt_double import FakeCudart, fake_tensorrt


def test_doctor_without_tensorrt(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # as a user would: from an empty folder outside the repo
    monkeypatch.delenv("EDGE_RUNTIME_DATA", raising=False)
    rc, out, err = run_cli(["doctor", "--out", "rep", "--bench-seconds", "0.2", "--images", "200", "--no-tests"], capsys)
    assert rc == 2, err
    last = out.strip().splitlines()[-1]
    assert "TensorRT is not available here" in last and "python3-libnvinfer" in last and "pip install tensorrt" in last
    rep = json.loads((tmp_path / "rep" / "doctor.json").read_text())
    md = (tmp_path / "rep" / "doctor.md").read_text()
    assert rep["exit_code"] == 2 and rep["tensorrt"] == "absent" and not rep["engines"]
    rows = {r["check"]: r for r in rep["rows"]}
    trt_rows = [r for r in rep["rows"] if "TensorRT" in r["check"] or "pytest" in r["check"]]
    assert len(trt_rows) == 3 and all(r["status"] == doctor.NA for r in trt_rows)
    cpu = [r for r in rep["rows"] if r["check"].startswith("ONNX Runtime INT8 (CPU build) vs")]
    assert len(cpu) == 1 and cpu[0]["n"] == 200 and 0.9 <= cpu[0]["top1_agreement"] <= 1.0 and cpu[0]["max_abs_logit_diff"] > 0
    assert rows["CIFAR-10 test images"]["status"] == doctor.NA
    assert "| TensorRT FP16 engine: build, compare with ONNX Runtime, benchmark | not available here |" in md
    assert "| JetPack | not available here |" in md and "code" in rep["evidence"]
    assert not [f for f in os.listdir(tmp_path / "rep") if f.startswith(".")]  # atomic writes left no temp files


def test_doctor_bad_flags_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, out, err = run_cli(["doctor", "--out", str(tmp_path), "--images", "0"], capsys)
    assert rc == 2 and err.strip().count("\n") == 0 and "argument --images: expected an integer >= 1, got 0" in err
    f = tmp_path / "file"
    f.write_text("x")
    rc, out, err = run_cli(["doctor", "--out", str(f)], capsys)
    assert rc == 2 and "exists and is not a folder" in err and f.read_text() == "x"


def test_doctor_device_path_through_the_doubles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds the bundled FP16 and INT8 engines with a TensorRT 10.3 double, loads them with the fake CUDA, compares
    with ONNX Runtime and benchmarks: the double's engine is a random linear map, so its rows FAIL and doctor exits 1
    (a disagreeing engine is caught)."""
    rt = FakeCudart(12)
    trt = fake_tensorrt("10.3.0", cuda=rt)
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(C, "_factory", lambda: C.Cuda(rt=rt, major=12))
    rep = doctor.run(tmp_path / "rep", tests=False, bench_s=0.1, images=50)
    assert rep["exit_code"] == 1 and rep["tensorrt"] == "10.3.0"
    names = sorted(Path(e).name for e in rep["engines"])
    assert names == ["mobilenetv2_cifar_x0_5.fp16.trt10.3.0.orin-nvgpu-sm87.engine",
                     "mobilenetv2_cifar_x0_5.int8-qdq.trt10.3.0.orin-nvgpu-sm87.engine"]
    rows = {r["check"]: r for r in rep["rows"]}
    assert rows["TensorRT FP16 engine built"]["status"] == "ok"
    cmp = rows["TensorRT INT8 (Q/DQ) vs ONNX Runtime FP32 on the calibration set (calib/cifar10-train-1000.npz, 50 train images)"]
    assert cmp["status"] == "FAIL" and cmp["n"] == 50 and cmp["top1_agreement"] < 0.9
    assert rows["TensorRT FP16 latency, batch 1"]["latency"]["n"] >= 1
    assert rt.live()["device"] == 0 and rt.live()["pinned"] == 0  # every runner released its buffers


def test_published_accuracy_is_checked_on_test_images_0_999() -> None:
    """The manifest's top1_first1000 must hold here (within MAX_DROP_VS_MANIFEST points), else the row FAILs."""
    import numpy as np

    from edge_runtime import resources

    path = resources.path("bundled", "mobilenetv2_cifar_x0_5.onnx")
    want = doctor.mf.for_artifact(path)["accuracy"]["top1_first1000"]
    labels = np.arange(1000) % 10
    logits = np.eye(10, dtype=np.float32)[labels]
    wrong = int(round(1000 * (100 - want + 2 * doctor.MAX_DROP_VS_MANIFEST) / 100))  # 2 points below the manifest
    bad = logits.copy()
    bad[:wrong] = np.roll(bad[:wrong], 1, axis=1)
    ok = doctor._vs_manifest("FP32", path, logits, "CIFAR-10 test images 0-999", labels)
    fail = doctor._vs_manifest("FP32", path, bad, "CIFAR-10 test images 0-999", labels)
    assert ok is not None and ok["status"] == "ok" and ok["top1"] == 100.0
    assert fail is not None and fail["status"] == "FAIL" and fail["top1"] < want - doctor.MAX_DROP_VS_MANIFEST
    assert doctor._vs_manifest("FP32", path, logits, "calibration set", labels) is None  # only on test images 0-999
