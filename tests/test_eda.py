"""`edge-runtime eda` and train.eda.run_eda on tiny fixture datasets (a few seconds each)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import sklearn.decomposition  # noqa: F401  loaded before the thread limit below, so it applies to their pools
import sklearn.manifold  # noqa: F401
from threadpoolctl import threadpool_limits

from edge_runtime.cli import main
from edge_runtime.errors import EdgeRuntimeError
from train.data import load, write_fixture
from train.eda import FILES, _random_indices, run_eda

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_TRAIN, N_TEST, TSNE = 200, 100, 60


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The arrays here are tiny: BLAS/OpenMP threads only cost time, a lot of it on a shared 2-core machine.
    with threadpool_limits(limits=1):
        yield


def _check_outputs(out: Path, summary: dict, num_classes: int) -> None:
    for key, name in FILES.items():
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name
        if name.endswith(".png"):
            head = path.read_bytes()[:24]
            assert head[:8] == PNG_MAGIC, name
            width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            assert 200 <= width <= 2000 and 200 <= height <= 3000, (name, width, height)
    assert not list(out.glob(".*.tmp")), "atomic writes left temporary files"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["files"] == FILES  # names relative to the folder; the returned dict has full paths
    assert summary["files"]["samples"] == str(out / "samples.png")
    assert summary["images"] == {"train": N_TRAIN, "test": N_TEST, "total": N_TRAIN + N_TEST}
    assert summary["image_size"] == [32, 32, 3]
    assert summary["num_classes"] == num_classes
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        s = summary[split]
        assert len(s["class_counts"]) == num_classes
        assert sum(s["class_counts"].values()) == n
        ch = s["channels"]
        assert all(0.0 <= v <= 1.0 for v in ch["mean"] + ch["std"])
        assert np.allclose(np.array(ch["mean"]) * 255, ch["mean_255"], atol=1e-3)
        p = s["pixels"]
        assert 0 <= p["value_min"] <= p["value_median"] <= p["value_max"] <= 255
        assert p["image_brightness_min"] <= p["image_brightness_median"] <= p["image_brightness_max"]
        assert 0.0 <= p["near_white_fraction"] <= 1.0 and 0.0 <= p["near_black_fraction"] <= 1.0
    marks = summary["pca"]["components_for"]
    assert 1 <= marks["90"] <= marks["95"] <= marks["99"] <= summary["pca"]["components_fitted"]
    assert summary["tsne"]["samples"] == TSNE and summary["tsne"]["perplexity"] == pytest.approx((TSNE - 1) / 3, abs=1e-3)
    md = (out / "summary.md").read_text()
    assert md.startswith("# Exploratory data analysis") and "| train | 0-255 |" in md


def test_cli_cifar10(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_fixture(tmp_path / "data", "cifar10", N_TRAIN, N_TEST)
    out = tmp_path / "eda"
    rc = main(["eda", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--out", str(out),
               "--tsne-samples", str(TSNE), "--pca-samples", "150", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert str(out / "summary.md") in captured.out and "| train | %d |" % N_TRAIN in captured.out
    summary = json.loads((out / "summary.json").read_text())
    summary["files"] = {k: str(out / v) for k, v in summary["files"].items()}
    _check_outputs(out, summary, 10)
    assert summary["pca"]["samples"] == 150 and "superclass_counts" not in summary["train"]
    assert summary["train"]["channels"]["mean"] == pytest.approx(list(load("cifar10", tmp_path / "data").mean), abs=1e-5)


def test_run_eda_cifar100(tmp_path: Path) -> None:
    write_fixture(tmp_path / "data", "cifar100", N_TRAIN, N_TEST)
    data = load("cifar100", tmp_path / "data")
    out = tmp_path / "eda"
    summary = run_eda(data, out, tsne_samples=TSNE, pca_samples=1000, seed=1, progress=False)
    _check_outputs(out, summary, 100)
    assert summary["pca"]["samples"] == N_TRAIN  # capped at the split size
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        sup = summary[split]["superclass_counts"]
        assert len(sup) == 20 and sum(sup.values()) == n
    assert sum(len(v) for v in summary["superclass_members"].values()) == 100
    assert "| aquatic_mammals |" in (out / "summary.md").read_text()


def test_missing_data_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(["eda", "--dataset", "cifar10", "--data-dir", str(empty), "--out", str(tmp_path / "eda"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("edge-runtime eda: error:") and err.count("\n") == 1 and "cifar-10-batches-py" in err
    assert not (tmp_path / "eda").exists()


def test_bad_sample_sizes_are_user_errors(tmp_path: Path) -> None:
    write_fixture(tmp_path / "data", "cifar10", 20, 10)
    data = load("cifar10", tmp_path / "data")
    with pytest.raises(EdgeRuntimeError, match="tsne-samples"):
        run_eda(data, tmp_path / "eda", tsne_samples=2, progress=False)
    with pytest.raises(EdgeRuntimeError, match="pca-samples"):
        run_eda(data, tmp_path / "eda", pca_samples=1, progress=False)


def test_random_subsets_are_seeded_and_not_the_first_n() -> None:
    a = _random_indices(1000, 100, seed=0, stream=2)
    assert np.array_equal(a, _random_indices(1000, 100, seed=0, stream=2))
    assert len(np.unique(a)) == 100 and not np.array_equal(a, np.arange(100))
    assert not np.array_equal(a, _random_indices(1000, 100, seed=1, stream=2))
    assert np.array_equal(_random_indices(50, 100, seed=0, stream=2), np.arange(50))
