from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import calib
from edge_runtime import manifest as mf
from edge_runtime.cli import main
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.quantize import graph_report, quantize


@pytest.fixture(scope="module")
def calib_set(tmp_path_factory: pytest.TempPathFactory, fixture_data: Path) -> Path:
    return calib.make("cifar10", per_class=4, seed=0, data_dir=fixture_data, out_dir=tmp_path_factory.mktemp("calib"))


@pytest.fixture(scope="module")
def trt_q(tmp_path_factory: pytest.TempPathFactory, lenet_onnx: Path, calib_set: Path, fixture_data: Path):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("q") / "lenet5.int8-tensorrt.onnx"
    return quantize(lenet_onnx, "tensorrt", "minmax", calib_set, data_dir=fixture_data, out=out)


def test_tensorrt_target_graph_properties(trt_q) -> None:  # type: ignore[no-untyped-def]
    import onnx

    model = onnx.load(str(trt_q.path))
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    rows = graph_report(model)["qdq"]
    assert all(r["zp_dtype"] == "int8" and r["zp_all_zero"] for r in rows), "symmetric signed int8 everywhere"
    weights = [r for r in rows if r["op"] == "QuantizeLinear" and r["weight"]]
    acts = [r for r in rows if not r["weight"] and r["scale_shape"] == []]
    assert weights and all(r["axis"] == 0 and len(r["scale_shape"]) == 1 and r["scale_shape"][0] > 1 for r in weights)
    assert acts
    per_tensor_or_weight = [r for r in rows if r["scale_shape"] != []]
    assert all(r["axis"] == 0 for r in per_tensor_or_weight)  # every non-scalar scale belongs to a per-channel weight
    out = model.graph.output[0].name
    producer = next(n for n in model.graph.node if out in n.output)
    assert producer.op_type not in ("QuantizeLinear", "DequantizeLinear")  # the output stays float
    assert model.graph.output[0].type.tensor_type.elem_type == 1
    m = mf.for_artifact(trt_q.path)
    assert m["precision"] == "int8" and m["quantization"]["target"] == "tensorrt"
    assert m["quantization"]["calibration"]["sha256"] == calib.load(Path(m["quantization"]["calibration"]["path"])).meta["sha256"]
    a = m["accuracy"]
    assert a["n"] == 120 and np.isclose(a["drop_vs_fp32"], a["fp32_onnx"]["top1"] - a["top1"])


def test_cpu_and_fp16_targets(tmp_path: Path, lenet_onnx: Path, calib_set: Path, fixture_data: Path) -> None:
    import onnx

    cpu = quantize(lenet_onnx, "cpu", None, calib_set, limit=50, data_dir=fixture_data, out=tmp_path / "c.onnx")
    rows = graph_report(onnx.load(str(cpu.path)))["qdq"]
    assert {r["zp_dtype"] for r in rows if not r["weight"] and r["scale_shape"] == []} >= {"uint8"}
    assert cpu.manifest["quantization"]["method"] == "minmax" and cpu.manifest["accuracy"]["n"] == 50
    h = quantize(lenet_onnx, "fp16", None, None, limit=50, data_dir=fixture_data, out=tmp_path / "h.onnx")
    model = onnx.load(str(h.path))
    assert model.graph.input[0].type.tensor_type.elem_type == 1 and model.graph.output[0].type.tensor_type.elem_type == 1
    assert any(i.data_type == 10 for i in model.graph.initializer)  # FLOAT16 weights
    assert h.manifest["precision"] == "fp16" and abs(h.manifest["accuracy"]["drop_vs_fp32"]) <= 2.0


def test_quantize_bad_inputs(tmp_path: Path, lenet_onnx: Path, trt_q, fixture_data: Path,  # type: ignore[no-untyped-def]
                             capsys: pytest.CaptureFixture) -> None:
    bare = tmp_path / "bare.onnx"
    shutil.copy(lenet_onnx, bare)
    import onnx

    m = onnx.load(str(bare))
    del m.metadata_props[:]
    onnx.save(m, str(bare))
    with pytest.raises(EdgeRuntimeError, match="no manifest"):
        quantize(bare, "cpu")
    with pytest.raises(EdgeRuntimeError, match="already int8"):
        quantize(trt_q.path, "cpu", out=tmp_path / "x.onnx")
    from train.data import write_fixture

    write_fixture(tmp_path / "d100", "cifar100", n_train=200, n_test=10)
    other = calib.make("cifar100", per_class=1, data_dir=tmp_path / "d100", out_dir=tmp_path / "c100")
    assert main(["quantize", str(lenet_onnx), "--target", "cpu", "--calib", str(other), "--out", str(tmp_path / "y.onnx")]) == 2
    assert main(["quantize", str(lenet_onnx), "--target", "tensorrt", "--out", str(trt_q.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "cifar100 with 100 classes" in err[0] and "already exists" in err[1]
    assert not (tmp_path / "y.onnx").exists()
