"""The one loader (edge_runtime.backends.load) and the model/manifest agreement checked when any runner activates."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Sequence

import numpy as np
import pytest

from edge_runtime import backends
from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError

from .conftest import CLASSES10, run_cli

DEMO = Path(__file__).resolve().parents[1] / "deploy" / "demo" / "cifar10-demo.mp4"


def tiny_onnx(path: Path, in_shape: Sequence[Any], classes: int, man: Any = None, labels: Any = None) -> Path:
    """An ONNX classifier made with onnx.helper: (N,3,H,W) -> global average pool -> linear -> ``classes`` logits, or
    a flat input (N, K) -> linear. Written with a manifest (``man`` with its class names replaced by ``labels``)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, list(in_shape))
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [in_shape[0], classes])
    if len(in_shape) == 4:
        k = int(in_shape[1])
        nodes = [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
                 helper.make_node("MatMul", ["f", "w"], ["logits"])]
    else:
        k = int(in_shape[1])
        nodes = [helper.make_node("MatMul", ["input", "w"], ["logits"])]
    w = numpy_helper.from_array(rng.standard_normal((k, classes)).astype(np.float32), "w")
    graph = helper.make_graph(nodes, "tiny", [inp], [out], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    if man is not None:
        m = dict(man)
        m.pop("sha256", None)
        if labels is not None:
            m["dataset"] = mf.make_dataset("cifar10", labels)
        mf.write(path, m)
    return path


@pytest.fixture(scope="module")
def man10(lenet_onnx: Path) -> Any:
    return mf.for_artifact(lenet_onnx)


# ---------------------------------------------------------------------------------------------------- registry
def test_registry_names_equal_keys_and_unknown_lists_the_known(tmp_path: Path, lenet_onnx: Path, lenet_ckpt: Path) -> None:
    assert list(backends.BACKENDS) == ["onnxruntime", "torch", "tensorrt"]
    r_onnx, r_pt = backends.load(lenet_onnx), backends.load(lenet_ckpt)
    assert (r_onnx.name, r_pt.name) == ("onnxruntime", "torch")  # runner name == backend key
    assert r_onnx.manifest == mf.for_artifact(lenet_onnx) and r_pt.manifest["model"]["name"] == "lenet5"
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"x")
    with pytest.raises(EdgeRuntimeError, match=r"unknown artifact type '.tflite'; expected one of .onnx \(onnxruntime\), "
                                               r".pt/.pth \(torch\), .engine/.plan \(tensorrt\)"):
        backends.load(bad)
    with pytest.raises(EdgeRuntimeError, match="--backend 'tflite': expected auto or one of onnxruntime, torch, tensorrt"):
        backends.load(lenet_onnx, backend="tflite")
    with pytest.raises(EdgeRuntimeError, match="is a torch artifact and cannot run on --backend onnxruntime"):
        backends.load(lenet_ckpt, backend="onnxruntime")
    with pytest.raises(EdgeRuntimeError, match="--threads -1"):
        backends.load(lenet_onnx, threads=-1)
    with pytest.raises(EdgeRuntimeError, match="--precision int8 applies when an .onnx is built into a TensorRT engine"):
        backends.load(lenet_onnx, precision="int8")  # an option the ONNX Runtime path cannot honour is refused


def test_onnx_without_manifest(tmp_path: Path, lenet_onnx: Path) -> None:
    p = tmp_path / "bare.onnx"
    p.write_bytes(lenet_onnx.read_bytes())  # the embedded manifest still travels inside the file
    assert backends.load(p).manifest is not None
    bare = tiny_onnx(tmp_path / "tiny.onnx", ["N", 3, 32, 32], 10)
    assert backends.load(bare, require_manifest=False).manifest is None  # bench allows it
    with pytest.raises(EdgeRuntimeError, match="has no manifest.*pass --mean --std --labels"):
        backends.load(bare)
    r = backends.load(bare, mean=[0.5] * 3, std=[0.25] * 3, labels=CLASSES10)
    with r:
        assert r.infer(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 10)


# --------------------------------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("shape,classes,what", [
    (["N", 28], 10, r"the model's input is Nx28; its manifest expects float32 \(N, 3, 32, 32\)"),
    (["N", 3, 64, 64], 10, r"the model's input is Nx3x64x64; its manifest expects float32 \(N, 3, 32, 32\)"),
    (["N", 3, 32, 32], 5, r"the model outputs 5 scores per image; its manifest \(or --labels\) names 10 classes"),
    (["N", 3, 32, 32], 100, r"the model outputs 100 scores per image; its manifest \(or --labels\) names 10 classes"),
])
def test_onnx_disagreeing_with_its_manifest_is_refused_at_activation(tmp_path: Path, man10: Any, shape: List[Any],
                                                                      classes: int, what: str) -> None:
    p = tiny_onnx(tmp_path / "m.onnx", shape, classes, man10)
    r = backends.load(p)
    with pytest.raises(EdgeRuntimeError, match=what):
        r.activate()
    assert not r.active
    ok = tiny_onnx(tmp_path / "ok.onnx", ["N", 3, 32, 32], 10, man10)
    with backends.load(ok) as r2:
        assert r2.active


def test_labels_count_checked_against_the_model(tmp_path: Path) -> None:
    p = tiny_onnx(tmp_path / "five.onnx", ["N", 3, 32, 32], 5)
    with pytest.raises(EdgeRuntimeError, match="outputs 5 scores per image.*names 10 classes"):
        backends.load(p, mean=[0.5] * 3, std=[0.25] * 3, labels=CLASSES10).activate()


def test_checkpoint_whose_manifest_disagrees_with_its_weights(tmp_path: Path, lenet_ckpt: Path) -> None:
    torch = pytest.importorskip("torch")  # noqa: F841
    from train import checkpoint

    ck = checkpoint.load(lenet_ckpt)
    man = dict(ck["manifest"])
    man["dataset"] = mf.make_dataset("cifar100", ["c%02d" % i for i in range(100)])
    bad = tmp_path / "bad.pt"
    checkpoint.save(bad, {"model": ck["model"], "manifest": man, "config": ck.get("config", {})})
    r = backends.load(bad)
    with pytest.raises(EdgeRuntimeError, match=r"weights do not fit the manifest's model \(lenet5 with 100 classes\).*"
                                               r"is 10x84, the model needs 100x84"):
        r.activate()


def test_cli_run_refuses_a_disagreeing_model_at_start(tmp_path: Path, man10: Any, capsys: pytest.CaptureFixture) -> None:
    if not DEMO.is_file():
        pytest.skip("the demo clip is not in this checkout")
    p = tiny_onnx(tmp_path / "m100.onnx", ["N", 3, 32, 32], 100, man10)
    rc, out, err = run_cli(["run", DEMO, "--model", p, "--max-frames", "5", "--quiet"], capsys)
    lines = [x for x in err.strip().splitlines() if x]
    assert rc == 2 and len(lines) == 1 and "outputs 100 scores per image" in lines[0] and "Traceback" not in err, err


def test_eval_and_bench_use_the_one_loader(tmp_path: Path, man10: Any, lenet_ckpt: Path) -> None:
    from edge_runtime.bench import open_runner
    from edge_runtime.evaluate import load_artifact

    p = tiny_onnx(tmp_path / "m5.onnx", ["N", 3, 32, 32], 5, man10)
    with pytest.raises(EdgeRuntimeError, match="outputs 5 scores"):
        open_runner(p)
    r, m = load_artifact(lenet_ckpt)
    assert r.name == "torch" and m is r.manifest


def test_onnx_session_profile_prefix_writes_the_profile_with_the_same_options(tmp_path: Path) -> None:
    """``session(profile_prefix=...)`` (benchmarks/regions.py ort-profile): the project's session, plus ONNX
    Runtime's profiler; without it no profile file appears."""
    import json

    from edge_runtime.backends.onnxrt import session

    model = tiny_onnx(tmp_path / "m.onnx", ["batch", 3, 32, 32], 10)
    plain = session(model, 1)
    plain.run(None, {plain.get_inputs()[0].name: np.zeros((2, 3, 32, 32), np.float32)})
    assert not list(tmp_path.glob("*prof*.json"))
    sess = session(model, 1, profile_prefix=str(tmp_path / "prof"))
    out = sess.run(None, {sess.get_inputs()[0].name: np.zeros((2, 3, 32, 32), np.float32)})[0]
    assert out.shape == (2, 10)
    path = Path(sess.end_profiling())
    assert path.parent == tmp_path and path.name.startswith("prof")
    ops = {e["args"]["op_name"] for e in json.loads(path.read_text()) if e.get("cat") == "Node" and "op_name" in e.get("args", {})}
    assert ops, "the profile names the model's operators"
