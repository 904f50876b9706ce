from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import calib
from edge_runtime import manifest as mf
from edge_runtime.cli import main
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file


def _man(name: str, k: int, classes=None):  # type: ignore[no-untyped-def]
    return mf.new("onnx", {"name": "m"}, mf.make_dataset(name, classes or ["c%d" % i for i in range(k)]),
                  mf.make_preprocess((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))


def test_make_cifar10_balanced_seeded_train_only(tmp_path: Path, fixture_data: Path) -> None:
    out = calib.make("cifar10", per_class=5, seed=3, data_dir=fixture_data, out_dir=tmp_path / "a")
    assert out.name == "cifar10-train-50.npz"
    cs = calib.load(out)
    assert len(cs) == 50 and cs.images.dtype == np.uint8 and cs.images.shape[1:] == (32, 32, 3)
    assert np.bincount(cs.labels, minlength=10).tolist() == [5] * 10
    meta = json.loads(mf.sidecar_path(out).read_text())
    assert meta["split"] == "train" and meta["seed"] == 3 and meta["sha256"] == sha256_file(out)
    from edge_runtime.cifar import load_split

    train = load_split("cifar10", "train", fixture_data)
    idx = np.array(meta["source_indices"])
    assert np.array_equal(train.images[idx], cs.images) and np.array_equal(train.labels[idx], cs.labels)
    again = calib.make("cifar10", per_class=5, seed=3, data_dir=fixture_data, out_dir=tmp_path / "b")
    assert again.read_bytes() == out.read_bytes()  # reproducible bytes
    other = calib.make("cifar10", per_class=5, seed=4, data_dir=fixture_data, out_dir=tmp_path / "c")
    assert json.loads(mf.sidecar_path(other).read_text())["source_indices"] != meta["source_indices"]


def test_cifar100_fixture_and_mismatch_errors(tmp_path: Path) -> None:
    from train.data import write_fixture

    write_fixture(tmp_path / "d", "cifar100", n_train=300, n_test=20)
    out = calib.make("cifar100", per_class=2, seed=0, data_dir=tmp_path / "d", out_dir=tmp_path / "c")
    cs = calib.load(out, _man("cifar100", 100, ["fine_%02d" % i for i in range(100)]))
    assert len(cs) == 200 and len(set(cs.labels.tolist())) == 100
    with pytest.raises(EdgeRuntimeError, match="cifar100 with 100 classes, but the model is cifar10 with 10"):
        calib.load(out, _man("cifar10", 10))
    with pytest.raises(EdgeRuntimeError, match="other class names"):
        calib.load(out, _man("cifar100", 100))
    assert calib.resolve(tmp_path / "c", _man("cifar100", 100)) == out
    with pytest.raises(EdgeRuntimeError, match="calib make --dataset cifar10"):
        calib.resolve(tmp_path / "c", _man("cifar10", 10))


def test_empty_tampered_and_cli(tmp_path: Path, fixture_data: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cifar10-train-0.npz"
    out.write_bytes(calib._npz_bytes({"images": np.zeros((0, 32, 32, 3), np.uint8), "labels": np.zeros(0, np.int64)}))
    (tmp_path / "cifar10-train-0.npz.json").write_text(json.dumps({"format": calib.FORMAT, "sha256": sha256_file(out)}))
    with pytest.raises(EdgeRuntimeError, match="is empty"):
        calib.load(out)
    assert main(["calib", "make", "--dataset", "cifar10", "--per-class", "3", "--data-dir", str(fixture_data),
                 "--out", str(tmp_path / "cli")]) == 0
    made = tmp_path / "cli" / "cifar10-train-30.npz"
    before = made.read_bytes()
    assert main(["calib", "make", "--dataset", "cifar10", "--per-class", "3", "--data-dir", str(fixture_data),
                 "--out", str(tmp_path / "cli"), "--seed", "9"]) == 2
    assert made.read_bytes() == before
    made.write_bytes(before[:-10])
    assert main(["calib", "show", str(made)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "already exists" in err[0] and "does not match" in err[1]


def test_batches_use_manifest_preprocessing(tmp_path: Path, fixture_data: Path) -> None:
    out = calib.make("cifar10", per_class=2, seed=0, data_dir=fixture_data, out_dir=tmp_path)
    cs = calib.load(out)
    pp = mf.make_preprocess((0.4, 0.5, 0.6), (0.2, 0.3, 0.4))
    b = list(cs.batches(pp, batch_size=8))
    assert [x.shape[0] for x in b] == [8, 8, 4] and b[0].shape[1:] == (3, 32, 32)
    ref = (cs.images[:8].astype(np.float32) / 255 - np.array([0.4, 0.5, 0.6], np.float32)) / np.array([0.2, 0.3, 0.4], np.float32)
    assert np.abs(b[0] - ref.transpose(0, 3, 1, 2)).max() < 1e-5


def test_committed_cifar10_set_is_valid() -> None:
    p = Path("calib/cifar10-train-1000.npz")
    if not p.is_file():
        pytest.skip("committed calibration set not present")
    cs = calib.load(p)
    assert len(cs) == 1000 and cs.meta["split"] == "train" and np.bincount(cs.labels).tolist() == [100] * 10
