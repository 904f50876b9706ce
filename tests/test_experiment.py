"""Experiment grids: a tiny grid trains, reports, resumes and skips; bad grids fail in one line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from edge_runtime.cli import main  # noqa: E402
from edge_runtime.errors import EdgeRuntimeError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

TINY = """\
name: tiny
defaults: {model: lenet5, batch_size: 64, eval_every: 1}
runs:
  - {label: lenet-sgd, optimizer: sgd, lr: 0.05, paper_top1: 63.0}
  - {label: lenet-adam, optimizer: adam, lr: 0.001, paper_top1: null}
"""


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    from train.data import write_fixture

    root = tmp_path / "data"
    write_fixture(root, "cifar10", n_train=192, n_test=128, seed=0)
    return root


def _cli(args, capsys):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_tiny_grid_writes_reports_and_skips_finished_runs(tmp_path, data_dir, capsys):
    grid = tmp_path / "tiny.yaml"
    grid.write_text(TINY)
    out = tmp_path / "out"
    args = ["experiment", grid, "--out", out, "--epochs", 1, "--subset", 128, "--data-dir", data_dir,
            "--device", "cpu", "--quiet"]
    rc, stdout, _ = _cli(args, capsys)
    assert rc == 0
    for name in ("results.md", "results.json", "summary.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    rows = res["runs"]
    assert [r["label"] for r in rows] == ["lenet-sgd", "lenet-adam"]
    assert [r["status"] for r in rows] == ["trained", "trained"]
    assert all(r["top1"] is not None and r["params"] > 0 and r["macs"] > 0 and r["epochs_run"] == 1 for r in rows)
    assert rows[0]["paper_top1"] == 63.0 and rows[1]["paper_top1"] is None
    md = (out / "results.md").read_text()
    assert "| lenet-sgd |" in md and "63.00" in md and "--epochs 1" in md and "data at hand" in md
    assert "| lenet-adam |" in stdout  # the table is printed at the end
    # progress: position in the grid, and once a run is measured, the time left
    assert "[1/2] lenet-sgd: training 1 epoch ->" in stdout and "[2/2] lenet-adam: done, top-1 " in stdout
    assert "left in the grid" not in stdout.split("[1/2] lenet-sgd: done")[0]  # nothing measured yet: no guess
    assert "[1/2] lenet-sgd: done" in stdout and "about " in stdout.split("[1/2] lenet-sgd: done")[1].splitlines()[0]
    assert "left in the grid" not in stdout.split("[2/2] lenet-adam: done")[1].splitlines()[0]  # the end: no guess
    best = out / "lenet-sgd" / "best.pt"
    mtime = best.stat().st_mtime_ns

    rc, stdout, _ = _cli(args, capsys)
    assert rc == 0
    rows = json.loads((out / "results.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["skipped", "skipped"]
    assert best.stat().st_mtime_ns == mtime
    assert rows[0]["top1"] is not None

    # other budget overrides on the same folder: refused, nothing retrained
    rc, _, err = _cli(args[:5] + [2] + args[6:], capsys)
    assert rc == 2 and "epochs=1" in err and "epochs=2" in err and len(err.strip().splitlines()) == 1
    assert best.stat().st_mtime_ns == mtime


def test_interrupted_run_is_resumed(tmp_path, data_dir, monkeypatch):
    import train.experiments as ex
    from train.trainer import fit as real_fit

    grid = tmp_path / "g.yaml"
    grid.write_text("runs:\n  - {model: lenet5, optimizer: sgd, lr: 0.05, batch_size: 64}\n")
    out = tmp_path / "out"
    kw = dict(epochs=2, subset=128, data_dir=str(data_dir), device="cpu", progress=False)

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(cfg, resume=False, progress=True):
        def boom(row):
            raise Interrupted
        return real_fit(cfg, resume=resume, progress=progress, on_epoch=boom)

    import train.trainer

    monkeypatch.setattr(train.trainer, "fit", stop_after_first_epoch)
    with pytest.raises(Interrupted):
        ex.run_grid(grid, out, **kw)
    rows = json.loads((out / "results.json").read_text())["runs"]
    assert [r["status"] for r in rows] == ["pending"]          # reports are written even when interrupted
    slug = "lenet5-sgd-lr0.05-cifar10"
    assert (out / slug / "last.pt").is_file() and not (out / slug / "done.json").exists()

    monkeypatch.setattr(train.trainer, "fit", real_fit)
    rows = ex.run_grid(grid, out, **kw)
    assert rows[0]["status"] == "resumed" and rows[0]["epochs_run"] == 2 and rows[0]["top1"] is not None


def test_unknown_key_is_one_line_naming_row_and_key(tmp_path, capsys):
    grid = tmp_path / "bad.yaml"
    grid.write_text("runs:\n  - {label: first, model: lenet5}\n  - {label: second, model: lenet5, lrr: 0.1}\n")
    rc, out, err = _cli(["experiment", grid, "--out", tmp_path / "o"], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "lrr" in err and "runs[1]" in err and "second" in err
    assert not (tmp_path / "o").exists()  # validated before anything ran


@pytest.mark.parametrize("text, needle", [
    ("runs:\n  - {model: nosuchnet}\n", "nosuchnet"),
    ("runs:\n  - {model: lenet5, optimizer: sgdd}\n", "optimizer"),
    ("runs:\n  - {model: lenet5, out: elsewhere}\n", "out"),
    ("grid:\n  model: lenet5\n", "list"),
    ("name: x\n", "no runs"),
    ("rows: []\n", "rows"),
])
def test_bad_grids_fail_with_one_line(tmp_path, text, needle):
    from train.experiments import load_grid

    grid = tmp_path / "bad.yaml"
    grid.write_text(text)
    with pytest.raises(EdgeRuntimeError, match=needle) as info:
        load_grid(grid)
    assert "\n" not in str(info.value)


def test_grid_product_and_unique_slugs(tmp_path):
    from train.experiments import load_grid

    grid = tmp_path / "p.yaml"
    grid.write_text("defaults: {epochs: 3}\n"
                    "runs:\n  - {label: 'A/B run', model: lenet5}\n  - {label: 'a/b run', model: lenet5}\n"
                    "grid:\n  model: [lenet5, resnet18]\n  optimizer: [sgd, adam]\n  batch_size: [64, 128]\n")
    g = load_grid(grid, epochs=1)
    assert len(g.runs) == 2 + 8
    slugs = [r.slug for r in g.runs]
    assert len(set(slugs)) == len(slugs)
    assert slugs[:2] == ["a-b-run", "a-b-run-2"]
    assert all("/" not in s for s in slugs)
    assert all(r.config.epochs == 1 for r in g.runs)


def test_paper_table1_expands_to_eight_valid_runs():
    from train.config import OPTIMIZERS
    from train.experiments import load_grid
    from train.models import list_models

    g = load_grid(REPO / "train" / "configs" / "paper_table1.yaml")
    assert len(g.runs) == 8
    pairs = [(r.config.model, r.config.optimizer) for r in g.runs]
    assert pairs == [("lenet5", "sgd"), ("lenet5", "adam"), ("resnet34", "sgd"), ("resnet34", "adam"),
                     ("mobilenetv2", "sgd"), ("mobilenetv2", "adam"), ("mobilenetv2_paper", "sgd"),
                     ("mobilenetv2_paper", "adadelta")]
    assert all(m in list_models() and o in OPTIMIZERS for m, o in pairs)
    paper = {r.label: r.paper_top1 for r in g.runs if r.paper_top1 is not None}
    assert paper == {"lenet5-sgd": 63.0, "resnet34-sgd": 75.5, "mobilenetv2_paper-sgd": 83.27}
    assert all(r.config.epochs == 30 and r.config.batch_size == 128 for r in g.runs)


def test_strong_grid_uses_the_recipes():
    from train.config import TrainConfig, load_yaml, overlay
    from train.experiments import load_grid

    g = load_grid(REPO / "train" / "configs" / "strong.yaml")
    assert [r.config.model for r in g.runs] == ["lenet5", "mobilenetv2_paper", "mobilenetv2_cifar_x0_5",
                                                "mobilenetv2_cifar", "resnet34"]
    lenet = g.runs[0].config
    recipe = overlay(TrainConfig(), load_yaml(REPO / "train" / "configs" / "recipes" / "lenet5.yaml"))
    assert lenet == recipe and lenet.model_kwargs == {"activation": "relu", "pooling": "max"}
