import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from edge_runtime import manifest as mf
from train import checkpoint
from train.config import TrainConfig
from train.trainer import fit, lr_factor

from .conftest import run_cli

FAST = ["--model", "lenet5", "--batch-size", "64", "--device", "cpu", "--quiet"]


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_one_epoch_subset_run_writes_every_output(cifar10_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc, so, se = run_cli(["train", *FAST, "--data-dir", cifar10_dir, "--epochs", "1", "--subset", "512",
                          "--out", out], capsys)
    assert rc == 0, se
    for f in ("last.pt", "best.pt", "metrics.csv", "curves.png", "config.yaml", "manifest.json"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _rows(out / "metrics.csv")
    assert len(rows) == 1 and set(rows[0]) >= {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                                               "seconds", "images_per_s"}
    m = mf.read(out / "manifest.json")
    assert m["kind"] == "checkpoint" and m["model"]["name"] == "lenet5" and m["dataset"]["num_classes"] == 10
    assert m["sha256"] and m["accuracy"]["command"].startswith("edge-runtime train")
    assert len(m["preprocess"]["mean"]) == 3
    ck = checkpoint.load(out / "last.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "config", "manifest"} <= set(ck)
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_resume_reproduces_the_uninterrupted_run(cifar10_dir, tmp_path):
    base = dict(model="lenet5", data_dir=str(cifar10_dir), batch_size=64, device="cpu", subset=256, epochs=3,
                model_kwargs={"activation": "relu"}, mixup=0.2, cutout=4)
    fit(TrainConfig(out=str(tmp_path / "straight"), **base), progress=False)
    # interrupt the same 3-epoch run after its first epoch, then resume it
    class Stop(Exception):
        pass

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        fit(TrainConfig(out=str(tmp_path / "split"), **base), progress=False, on_epoch=stop_after_first)
    assert checkpoint.load(tmp_path / "split" / "last.pt")["epoch"] == 1
    fit(TrainConfig(out=str(tmp_path / "split"), **base), resume=True, progress=False)
    a, b = _rows(tmp_path / "straight" / "metrics.csv"), _rows(tmp_path / "split" / "metrics.csv")
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        for k in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert ra[k] == rb[k], (k, ra, rb)
    wa = checkpoint.load(tmp_path / "straight" / "last.pt")["model"]
    wb = checkpoint.load(tmp_path / "split" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_cli_keeps_the_saved_config_and_ends_with_a_readable_summary(cifar10_dir, tmp_path, capsys):
    out = tmp_path / "run"
    rc, so, se = run_cli(["train", *FAST, "--data-dir", cifar10_dir, "--epochs", "2", "--subset", "128", "--out", out],
                         capsys)
    assert rc == 0, se
    # per evaluated epoch a plain line with the test accuracy (not a terminal: no bars), then the summary in words
    lines = so.strip().splitlines()
    assert [l.split()[:2] for l in lines[:2]] == [["epoch", "1/2"], ["epoch", "2/2"]] and " acc " in lines[1]
    rows = _rows(out / "metrics.csv")
    best = max(rows, key=lambda r: float(r["test_acc"]))  # the first of equals: best.pt is kept on a tie
    want = "top-1 %.2f %% at epoch 2/2" % float(rows[-1]["test_acc"])
    if best["epoch"] != rows[-1]["epoch"]:
        want += ", best %.2f %% at epoch %s" % (float(best["test_acc"]), best["epoch"])
    assert lines[-1].startswith(want + " (PyTorch, 128 test images)"), (want, lines[-1])
    assert '"top1": ' not in so  # no raw dict unless --json
    rc, so, se = run_cli(["train", "--resume", "--out", out, "--lr", "1.0"], capsys)
    assert rc == 2 and "only --device, --data-dir" in se
    rc, so, se = run_cli(["train", "--resume", "--out", out, "--json"], capsys)
    assert rc == 0 and json.loads(so.strip().splitlines()[-1])["epoch"] in (1, 2)


def test_manifest_records_the_code_version(cifar10_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["train", *FAST, "--data-dir", cifar10_dir, "--epochs", "1", "--subset", "64", "--out", out], capsys)[0] == 0
    code = mf.read(out / "manifest.json")["code"]
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        assert code["commit"] is None and code["dirty"] is None
        return
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], stdout=subprocess.PIPE, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                stdout=subprocess.PIPE, text=True).stdout.strip())
    assert code["commit"] == head and code["dirty"] is dirty or code["commit"] != head  # HEAD may move meanwhile
    assert len(code["commit"]) == 40 and isinstance(code["dirty"], bool)


def test_flags_are_generated_from_the_config_dataclass():
    import argparse
    import dataclasses

    from edge_runtime.cli.train import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    dests = {a.dest for a in p._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= dests
    flags = {s for a in p._actions for s in a.option_strings}
    # the README's flag names
    assert {"--teacher", "--model-arg", "--no-amp", "--no-channels-last", "--init-from", "--distill-targets",
            "--distill-cache", "--time-budget", "--eval-every", "--resume", "--config", "--quiet"} <= flags
    a = p.parse_args(["--teacher", "a.pt", "--teacher", "b.pt", "--classes", "cat, dog", "--no-amp", "--lr", "0.1",
                      "--model-arg", "activation=relu", "--download", "--schedule", "cosine"])
    assert a.teachers == ["a.pt", "b.pt"] and a.classes == ["cat", "dog"] and a.amp is False and a.lr == 0.1
    assert a.model_kwargs == [{"activation": "relu"}] and a.download is True and a.schedule == "cosine"
    assert p.parse_args([]).epochs is None  # unset flags leave the YAML's value alone
    with pytest.raises(SystemExit):
        p.parse_args(["--schedule", "linear"])


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step", "none"])
def test_lr_schedules_are_bounded(schedule):
    vals = [lr_factor(schedule, p / 100, 0.1) for p in range(101)]
    assert all(0 <= v <= 1.0 + 1e-9 for v in vals)
    if schedule != "none":
        assert vals[-1] < 0.05


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adadelta", "adamw"])
def test_every_optimizer_trains(cifar10_dir, tmp_path, optimizer):
    from train.models import create_model
    from train.trainer import build_optimizer

    lr = {"sgd": 0.05, "adam": 1e-3, "adadelta": 1.0, "adamw": 1e-3}[optimizer]
    cfg = TrainConfig(model="lenet5", data_dir=str(cifar10_dir), optimizer=optimizer, lr=lr, epochs=1, subset=128,
                      batch_size=64, device="cpu", out=str(tmp_path / optimizer))
    # the named optimizer is the one built, with the configured lr and no weight decay on biases/norms
    expected = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adadelta": torch.optim.Adadelta,
                "adamw": torch.optim.AdamW}[optimizer]
    model = create_model("lenet5")
    opt = build_optimizer(cfg, model)
    assert type(opt) is expected and [g["lr"] for g in opt.param_groups] == [lr, lr]
    assert opt.param_groups[1]["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in opt.param_groups[1]["params"])
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(8, 3, 32, 32)).logsumexp(1).mean().backward()
    opt.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # one step moves every tensor
    s = fit(cfg, progress=False)
    assert s["training"]["optimizer"] == optimizer


def _one_line_error(rc, err, *needles):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_bad_inputs_are_one_line_errors(cifar10_dir, tmp_path, capsys):
    d = ["--data-dir", cifar10_dir, "--out", tmp_path / "x", "--epochs", "1", "--subset", "64", "--quiet"]
    _one_line_error(*run_cli(["train", "--model", "vgg", *d], capsys)[::2], "unknown model 'vgg'", "lenet5")
    _one_line_error(*run_cli(["train", "--model", "lenet5", "--optimizer", "rmsprop", *d], capsys)[::2], "rmsprop", "sgd")
    _one_line_error(*run_cli(["train", "--model", "lenet5", "--dataset", "mnist", *d], capsys)[::2], "mnist", "cifar10")
    _one_line_error(*run_cli(["train", "--model", "lenet5", "--data-dir", tmp_path / "empty", "--out", tmp_path / "y"],
                             capsys)[::2], "empty", "--download")
    _one_line_error(*run_cli(["train", "--bogus-flag"], capsys)[::2], "unrecognized arguments: --bogus-flag")
    _one_line_error(*run_cli(["train", "--resume", "--out", tmp_path / "nothing"], capsys)[::2], "nothing to resume")


def test_yaml_config_errors_name_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: lenet5\nlearning_rate: 0.1\n")
    _one_line_error(*run_cli(["train", "--config", cfg], capsys)[::2], "learning_rate")
    cfg.write_text("model: lenet5\nepochs: ten\n")
    _one_line_error(*run_cli(["train", "--config", cfg], capsys)[::2], "c.yaml: epochs: expected an integer >= 1, got 'ten'")
    cfg.write_text("- just\n- a list\n")
    _one_line_error(*run_cli(["train", "--config", cfg], capsys)[::2], "mapping")


def test_flags_override_yaml_and_resolved_config_is_saved(cifar10_dir, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: lenet5\nepochs: 5\nlr: 0.01\nbatch_size: 64\ndevice: cpu\n")
    out = tmp_path / "run"
    rc, _, se = run_cli(["train", "--config", cfg, "--epochs", "1", "--subset", "64", "--data-dir", cifar10_dir,
                         "--out", out, "--quiet"], capsys)
    assert rc == 0, se
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["lr"] == 0.01 and saved["model"] == "lenet5"


def test_existing_run_is_never_overwritten(cifar10_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", *FAST, "--data-dir", cifar10_dir, "--epochs", "1", "--subset", "64", "--out", out]
    assert run_cli(args, capsys)[0] == 0
    before = (out / "last.pt").read_bytes()
    _one_line_error(*run_cli(args, capsys)[::2], "already holds a run", "--resume")
    assert (out / "last.pt").read_bytes() == before


def test_corrupt_truncated_and_foreign_checkpoints(cifar10_dir, tmp_path, capsys):
    out = tmp_path / "parent"
    assert run_cli(["train", *FAST, "--data-dir", cifar10_dir, "--epochs", "1", "--subset", "64", "--out", out], capsys)[0] == 0
    good = (out / "best.pt").read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good[: len(good) // 2])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    common = ["train", "--model", "lenet5", "--data-dir", cifar10_dir, "--epochs", "1", "--subset", "64", "--quiet"]
    for i, (bad, needle) in enumerate([(trunc, "corrupt"), (junk, "corrupt"), (plain, "not an edge-runtime checkpoint")]):
        _one_line_error(*run_cli([*common, "--init-from", bad, "--out", tmp_path / ("o%d" % i)], capsys)[::2], needle)
    # a checkpoint of another model
    _one_line_error(*run_cli(["train", "--model", "mobilenetv2_paper", "--data-dir", cifar10_dir, "--epochs", "1",
                              "--init-from", out / "best.pt", "--out", tmp_path / "o9", "--quiet"], capsys)[::2],
                    "is a lenet5", "same architecture")


def test_resume_refuses_a_checkpoint_of_another_model_or_class_count(cifar10_dir, cifar100_dir, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    base = ["train", "--model", "lenet5", "--epochs", "2", "--subset", "64", "--batch-size", "32", "--device", "cpu", "--quiet"]
    assert run_cli([*base, "--data-dir", cifar10_dir, "--out", a], capsys)[0] == 0
    assert run_cli([*base, "--dataset", "cifar100", "--data-dir", cifar100_dir, "--out", b], capsys)[0] == 0
    # swap in the 100-class checkpoint under the 10-class run's config
    ck_b = checkpoint.load(b / "last.pt")
    ck_a = checkpoint.load(a / "last.pt")
    ck_b["config"], ck_b["epoch"] = ck_a["config"], 1
    checkpoint.save(a / "last.pt", ck_b)
    before = (a / "last.pt").read_bytes()
    _one_line_error(*run_cli(["train", "--resume", "--out", a], capsys)[::2], "does not fit", "10 classes")
    assert (a / "last.pt").read_bytes() == before


def test_cuda_warm_up_leaves_model_and_rng_untouched(cifar10_dir):
    """The warm-up that keeps cuDNN autotuning out of --time-budget runs on a copy (exercised here on the CPU)."""
    from train import data
    from train.models import create_model
    from train.device import warm_up as _warm_up

    d = data.load("cifar10", cifar10_dir)
    dev = torch.device("cpu")
    tl = data.TensorLoader(d.train, 32, d.mean, d.std, dev, train=True)
    vl = data.TensorLoader(d.test, 32, d.mean, d.std, dev, train=False)
    model = create_model("mobilenetv2_paper").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    _warm_up(model, tl, vl, torch.nn.CrossEntropyLoss(), dev, amp=False, steps=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())


def test_progress_bar_shows_the_test_accuracy_of_each_evaluated_epoch(cifar10_dir, tmp_path, capsys):
    fit(TrainConfig(model="lenet5", data_dir=str(cifar10_dir), epochs=2, subset=128, batch_size=64, device="cpu",
                    eval_every=2, out=str(tmp_path / "r")), progress=True)
    err = capsys.readouterr().err
    rows = _rows(tmp_path / "r" / "metrics.csv")
    assert rows[0]["test_acc"] == "" and rows[1]["test_acc"] != ""
    final = [l for l in err.replace("\r", "\n").splitlines() if l.startswith("epoch 2/2")][-1]
    assert "test=%.2f%%" % float(rows[1]["test_acc"]) in final, final
    assert not [l for l in err.replace("\r", "\n").splitlines() if l.startswith("epoch 1/2") and "test=" in l]


def test_code_version_is_none_outside_a_git_checkout(tmp_path):
    """An installed copy (no .git beside the package) records no commit, even inside another repository's tree."""
    import shutil
    import sys

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "edge_runtime", tmp_path / "site" / "edge_runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # an enclosing repository must not be taken
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q",
                    "--allow-empty", "-m", "enclosing"], check=True)
    code = "import json; from edge_runtime import manifest; print(json.dumps(manifest.code_version()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")),
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    got = json.loads(out)
    assert got["commit"] is None and got["dirty"] is None and got["version"]


def test_summary_line_and_curves_for_one_epoch_and_a_time_budget(tmp_path):
    from train.evaluation import summary_line
    from train.plots import plot_curves

    rows = [{"epoch": 1, "train_loss": 2.0, "train_acc": 20.0, "test_loss": 1.9, "test_acc": 25.5,
             "test_acc_first1000": None, "lr": 0.01}]
    assert summary_line(rows, 1) == "top-1 25.50 % at epoch 1/1"
    rows.append(dict(rows[0], epoch=2, test_acc=24.0))
    assert summary_line(rows, 400, time_budget=330) == "top-1 24.00 % at epoch 2 (330 s budget), best 25.50 % at epoch 1"
    assert summary_line([dict(rows[0], test_acc=None)], 3) == "no evaluated epoch yet (1/3 trained)"
    png = plot_curves(rows[:1], tmp_path / "c.png", "one epoch", epochs=1, schedule=lambda e: 0.1 * (1 - e))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10000
