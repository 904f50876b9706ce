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


def _saturation_fixture(path: Path, like: Path) -> np.ndarray:
    """A one-Conv classifier (3x32x32 -> 10 logits) whose decision hangs on large int8 products summed in pairs, and
    test inputs for it; returns the inputs (preprocessing: pixel / 255, so they are fed as they are).

    Class 0 weighs every pixel by 1, class 1 every other pixel by 1 plus a bias: in float, class 0 wins on images
    brighter than half. On x86 CPUs without VNNI, ONNX Runtime's u8s8 kernels add adjacent uint8 x int8 products in
    int16 (vpmaddubsw): with 8-bit weights (127) two bright pixels (> 129) overflow it and saturate, so class 0's
    logit is cut and most bright images become class 1; 7-bit weights (64) cannot overflow it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge_runtime import onnxutil

    w = np.full((10, 3, 32, 32), 0.01, np.float32)
    b = np.full(10, -1000.0, np.float32)
    w[0], b[0] = 1.0, 0.0
    w[1], b[1] = 0.0, 768.0
    w[1, :, :, 0::2] = 1.0
    g = helper.make_graph([helper.make_node("Conv", ["input", "w", "b"], ["c"]), helper.make_node("Flatten", ["c"], ["logits"])],
                          "saturation", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    man = mf.for_artifact(like)
    man["preprocess"].update(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], scale=1 / 255)
    man["model"] = dict(man["model"], name="saturation")
    onnxutil.save(model, path, man)
    rng = np.random.default_rng(0)
    return (rng.uniform(0.25, 1.0, (200, 1, 1, 1)) * rng.uniform(0.9, 1.0, (200, 3, 32, 32))).astype(np.float32)


def _top1(path: Path, x: np.ndarray, runner: bool) -> np.ndarray:
    """Top-1 answers at batch 1 at ORT_ENABLE_ALL (fused int8 kernels): through the runner's session, or a bare
    onnxruntime session as any other program would open the file (no session.x64quantprecision)."""
    import onnxruntime as ort

    from edge_runtime.backends.onnxrt import session

    if runner:
        s = session(str(path))
    else:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))]).argmax(1)


def test_cpu_target_holds_fp32_decisions_where_int8_pairs_saturate(tmp_path: Path, lenet_onnx: Path,
                                                                    calib_set: Path) -> None:
    """The CPU build gives FP32's answers on any x86 CPU, VNNI or not, in any ONNX Runtime session (the bundled
    8-bit build lost 3 points of top-1 on an AVX2 CPU, benchmarks/doctor-cpu/). With 8-bit weights this fixture keeps
    38 % of FP32's answers on an AVX2 CPU without VNNI (benchmarks/int8-cpu-vnni/README.md); on a VNNI CPU it passes
    either way."""
    src = tmp_path / "saturation.onnx"
    x = _saturation_fixture(src, lenet_onnx)
    q = quantize(src, "cpu", None, calib_set, out=tmp_path / "saturation.int8-cpu.onnx", evaluate=False, progress=False)
    assert q.manifest["quantization"]["weights"]["reduce_range"] is True
    assert q.manifest["quantization"]["weights"]["range"] == [-64, 64]
    ref = _top1(src, x, runner=False)
    assert 0.2 < np.mean(ref == 0) < 0.8, "the fixture must have both answers in float"
    for runner in (False, True):
        got = _top1(q.path, x, runner)
        assert np.mean(got == ref) * 100 >= 99.0, "INT8 CPU build (runner %s): %.1f %% of FP32's top-1 answers" % (
            runner, np.mean(got == ref) * 100)


def test_runner_keeps_8bit_weight_files_from_saturating(tmp_path: Path, lenet_onnx: Path, calib_set: Path) -> None:
    """The TensorRT layout keeps full 8-bit weights (right for TensorRT); ONNX Runtime runs it as a CPU reference.
    The runner's session (session.x64quantprecision) gives FP32's answers with it on the same fixture; a bare
    session on an AVX2 CPU without VNNI does not (checked by hand: benchmarks/int8-cpu-vnni/README.md)."""
    src = tmp_path / "saturation.onnx"
    x = _saturation_fixture(src, lenet_onnx)
    q = quantize(src, "tensorrt", "minmax", calib_set, out=tmp_path / "saturation.int8-tensorrt.onnx", evaluate=False,
                 progress=False)
    assert q.manifest["quantization"]["weights"]["reduce_range"] is False
    ref = _top1(src, x, runner=False)
    got = _top1(q.path, x, runner=True)
    assert np.mean(got == ref) * 100 >= 99.0, "TensorRT layout via the runner: %.1f %% of FP32's top-1 answers" % (
        np.mean(got == ref) * 100)


def test_tensorrt_target_keeps_8bit_weights(trt_q) -> None:  # type: ignore[no-untyped-def]
    """TensorRT accumulates int8 products in int32: its layout keeps the full 8-bit weight range."""
    w = trt_q.manifest["quantization"]["weights"]
    assert w["reduce_range"] is False and w["range"] == [-127, 127]


def test_build_engine_finds_bundled_calibration_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   lenet_onnx: Path) -> None:
    """build-engine --calibrator entropy without --calib reads the committed calib/ set (edge_runtime.resources), as
    quantize does, from a working directory that has no calib/ (with the TensorRT double: no TensorRT here)."""
    from edge_runtime import resources
    from edge_runtime.engine import build as B
    from edge_runtime.engine import cuda as C
    from edge_runtime.engine import trt as T

    from .trt_double import FakeCudart, fake_tensorrt

    bundled = resources.folder("calib")
    if bundled is None or not list(bundled.glob("cifar10-train-*.npz")):
        pytest.skip("this checkout has no committed calib/ set")
    rt = FakeCudart(12)
    trt = fake_tensorrt("10.3.0", dynamic=True, cuda=rt)
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(C, "_factory", lambda: C.Cuda(rt=rt, major=12))
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["build-engine", str(lenet_onnx), "--precision", "int8", "--calibrator", "entropy", "--out", "eng"]) == 0
    (engine,) = sorted((work / "eng").glob("*.engine"))
    cal = mf.for_artifact(engine)["engine"]["calibration"]
    assert Path(cal["path"]).resolve() == sorted(bundled.glob("cifar10-train-*.npz"))[-1].resolve()
    assert not (work / "calib").exists()
    # the --backend onnxruntime path (quantize --target cpu) from the same directory, without test data
    assert main(["build-engine", str(lenet_onnx), "--precision", "int8", "--backend", "onnxruntime", "--out", "cpu"]) == 0
    m = mf.for_artifact(work / "cpu" / "lenet5.int8-cpu.onnx")
    assert Path(m["quantization"]["calibration"]["path"]).resolve().parent == bundled.resolve()
