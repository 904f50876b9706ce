"""The bundled models: each one's accuracy on the real CIFAR-10 test set equals its manifest's claim."""
from pathlib import Path

import pytest

from edge_runtime import manifest as mf

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "engines" / "bundled").glob("*.onnx"))


def test_every_bundled_model_has_a_matching_manifest():
    assert BUNDLED, "engines/bundled/ holds the default model of make demo and edge-runtime run"
    for p in BUNDLED:
        m = mf.for_artifact(p)  # hash-checked
        assert m["kind"] == "onnx" and m["dataset"]["name"] == "cifar10" and m["accuracy"]["top1"] > 80
        assert p.stat().st_size < 10 * 2**20


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("path", BUNDLED, ids=[p.name for p in BUNDLED])
def test_bundled_accuracy_matches_manifest(path, real_data):
    pytest.importorskip("onnxruntime")
    from edge_runtime.evaluate import evaluate

    claim = mf.for_artifact(path)["accuracy"]["top1"]
    res = evaluate(path, "cifar10", data_dir=real_data, latency_iters=0)
    assert res["n"] == 10000
    assert abs(res["top1"] - claim) <= 0.1, (path.name, res["top1"], claim)


def test_run_defaults_to_the_bundled_build_for_its_backend():
    from edge_runtime.cli.run import default_model

    cpu = default_model(None)
    assert cpu == default_model("auto") == default_model("onnxruntime")
    assert cpu.name == "mobilenetv2_cifar_x0_5.int8-cpu.onnx" and cpu.is_file()
    m = mf.for_artifact(cpu)
    assert m["precision"] == "int8" and m["accuracy"]["drop_vs_fp32"] <= 0.5  # INT8 within half a point of FP32
    trt = default_model("tensorrt")
    assert trt.name == "mobilenetv2_cifar_x0_5.onnx" and mf.for_artifact(trt)["precision"] == "fp32"
    pt = default_model("torch")
    assert pt.suffix == ".pt" and pt.is_file()
