from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime import onnxutil
from edge_runtime.cli import main
from edge_runtime.fsio import sha256_file


def test_export_writes_checked_onnx_with_manifests(lenet_onnx: Path, lenet_ckpt: Path) -> None:
    import onnx

    model = onnx.load(str(lenet_onnx))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version >= 17
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    name, dims = onnxutil.check_image_input(model, "x")
    assert dims[1:] == [3, 32, 32] and isinstance(dims[0], str)  # dynamic batch
    side = mf.for_artifact(lenet_onnx)  # sha256 of the final file matches
    assert side["kind"] == "onnx" and side["precision"] == "fp32" and side["opset"] >= 17
    assert side["source_sha256"] == sha256_file(lenet_ckpt)
    par = side["parity"]
    assert par["top1_agreement"] == 100.0 and par["max_abs_diff"] <= 1e-4 and par["passed"]
    emb = onnxutil.embedded_manifest(model)
    assert emb is not None and "sha256" not in emb
    assert emb["dataset"] == side["dataset"] and emb["preprocess"] == side["preprocess"]


def test_static_batch_and_refuse_overwrite(tmp_path: Path, lenet_ckpt: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", str(lenet_ckpt), "--out", str(out), "--parity-images", "8"]) == 0
    assert "top-1 agreement 100.00 %" in capsys.readouterr().out
    import onnx

    assert onnxutil.input_shape(onnx.load(str(out)))[1] == [1, 3, 32, 32]
    before = out.read_bytes()
    assert main(["export", str(lenet_ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before
    assert main(["export", str(lenet_ckpt), "--out", str(out), "--force", "--parity-images", "4"]) == 0


def test_bad_inputs_one_line(tmp_path: Path, lenet_ckpt: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "x.onnx")]) == 2
    assert main(["export", str(lenet_ckpt), "--out", str(tmp_path / "x.onnx"), "--opset", "13"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "opset" in err[1]
    assert not (tmp_path / "x.onnx").exists()


def test_export_real_checkpoint_parity(tmp_path: Path, real_data: Path) -> None:
    ck = Path("engines/checkpoints/mobilenetv2_cifar_x0_5.pt")
    if not ck.is_file():
        pytest.skip("trained checkpoint not present")
    from train.export import export_onnx

    res = export_onnx(ck, tmp_path / "m.onnx", data_dir=real_data, parity_images=200)
    assert res.manifest["parity"]["top1_agreement"] == 100.0
    assert res.manifest["parity"]["max_abs_diff"] <= 1e-4
    assert json.loads(res.sidecar.read_text())["sha256"] == sha256_file(res.path)
    assert np.isclose(res.manifest["accuracy"]["top1"], 88.48, atol=0.01)
