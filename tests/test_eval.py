from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime.cli import main


def test_eval_onnx_and_pt_agree(tmp_path: Path, lenet_onnx: Path, lenet_ckpt: Path, fixture_data: Path,
                                capsys: pytest.CaptureFixture) -> None:
    assert main(["eval", str(lenet_onnx), "--dataset", "cifar10", "--data-dir", str(fixture_data), "--out", str(tmp_path),
                 "--latency-iters", "5"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "p50" in out
    rep = json.loads((tmp_path / "lenet5.onnx.eval.json").read_text())
    assert rep["n"] == 120 and rep["top1_first1000"] is None and len(rep["per_class"]) == 10
    conf = np.array(rep["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == 120 and np.isclose(np.trace(conf) / 120 * 100, rep["top1"])
    assert (tmp_path / "lenet5.onnx.confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", str(lenet_ckpt), "--data-dir", str(fixture_data), "--out", str(tmp_path), "--latency-iters", "0",
                 "--limit", "50"]) == 0
    pt = json.loads((tmp_path / "lenet5.pt.eval.json").read_text())
    assert pt["backend"] == "torch" and pt["n"] == 50


def test_png_fallback_encoder() -> None:
    from edge_runtime.evaluate import _png

    png = _png(np.zeros((4, 5, 3), np.uint8))
    assert png.startswith(b"\x89PNG") and png.endswith(b"IEND\xaeB`\x82")


def test_bad_inputs_one_line_exit_2(tmp_path: Path, lenet_onnx: Path, fixture_data: Path, capsys: pytest.CaptureFixture) -> None:
    import onnx
    from onnx import TensorProto, helper

    data = lenet_onnx.read_bytes()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01not onnx at all" * 10)
    # an ONNX whose input is NHWC
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 32, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 3])
    nhwc = tmp_path / "nhwc.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), str(nhwc))
    # no manifest at all
    bare = tmp_path / "bare.onnx"
    m = onnx.load(str(lenet_onnx))
    del m.metadata_props[:]
    onnx.save(m, str(bare))
    # a sidecar whose sha256 does not match
    tampered = tmp_path / "tampered.onnx"
    shutil.copy(lenet_onnx, tampered)
    shutil.copy(mf.sidecar_path(lenet_onnx), mf.sidecar_path(tampered))
    with open(tampered, "ab") as fh:
        fh.write(b"\x00")
    cases = [(trunc, "corrupt, truncated"), (garbage, "corrupt, truncated"), (nhwc, "expected float32 NCHW with 3 channels"),
             (bare, "--mean --std --labels"), (tampered, "does not match its manifest")]
    for path, _ in cases:
        assert main(["eval", str(path), "--data-dir", str(fixture_data), "--latency-iters", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(cases)
    for line, (_, want) in zip(err, cases):
        assert want in line, line
    assert not (tmp_path / "o").exists()
    # with --mean --std --labels the bare model evaluates
    assert main(["eval", str(bare), "--data-dir", str(fixture_data), "--latency-iters", "0", "--mean", "0.49", "0.48", "0.45",
                 "--std", "0.25", "0.24", "0.26", "--labels", "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck"]) == 0


def test_eval_real_bundled(real_data: Path) -> None:
    p = Path("engines/bundled/mobilenetv2_cifar_x0_5.onnx")
    if not p.is_file():
        pytest.skip("bundled artifacts not present")
    from edge_runtime.evaluate import evaluate

    r = evaluate(p, "cifar10", limit=1000, data_dir=real_data, latency_iters=0)
    assert r["top1"] > 85.0
