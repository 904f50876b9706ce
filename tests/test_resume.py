"""Exact resume at any step: a run stopped by SIGINT/SIGTERM after a random step inside an epoch, then resumed,
ends bit for bit where the uninterrupted run ends (metrics, weights, optimizer state), for each LR schedule."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from train import checkpoint
from train.config import TrainConfig
from train.trainer import TrainingInterrupted, fit

from .conftest import run_cli

# 160 images, batches of 32: 5 steps per epoch, 15 in all; mixup, cutout and dropout all draw random numbers
BASE = dict(model="lenet5", model_kwargs={"activation": "relu"}, batch_size=32, device="cpu", subset=160, epochs=3,
            mixup=0.2, cutout=4, lr=0.05)
STEPS_PER_EPOCH, TOTAL = 5, 15


def _csv(path):
    return path.read_text().splitlines()


def _same_run(a: Path, b: Path, note: str) -> None:
    ra, rb = _csv(a / "metrics.csv"), _csv(b / "metrics.csv")
    assert len(ra) == len(rb) == 4, note
    hdr = ra[0].split(",")
    for la, lb in zip(ra[1:], rb[1:]):
        va, vb = dict(zip(hdr, la.split(","))), dict(zip(hdr, lb.split(",")))
        for k in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert va[k] == vb[k], (note, k, va, vb)
    for name in ("last.pt", "best.pt"):
        ca, cb = checkpoint.load(a / name), checkpoint.load(b / name)
        assert ca["model"].keys() == cb["model"].keys()
        for k in ca["model"]:
            assert torch.equal(ca["model"][k], cb["model"][k]), (note, name, k)
        sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            assert torch.equal(sa[i]["momentum_buffer"], sb[i]["momentum_buffer"]), (note, name, i)
        assert [g["lr"] for g in ca["optimizer"]["param_groups"]] == [g["lr"] for g in cb["optimizer"]["param_groups"]]
        assert ca["scheduler"]["step"] == cb["scheduler"]["step"]
        assert "partial" not in ca and "partial" not in cb


def _interrupt_at(step_wanted: int, sig: int = signal.SIGINT):
    def on_step(epoch, batch, step):
        if step == step_wanted:
            os.kill(os.getpid(), sig)  # the real handler: it stops at the step boundary and saves last.pt there
    return on_step


@pytest.fixture(scope="module")
def data_dir(cifar10_dir):
    return str(cifar10_dir)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "step"])
def test_stopped_three_times_at_random_steps_then_resumed_is_bit_identical(data_dir, tmp_path, schedule):
    cfg = dict(BASE, data_dir=data_dir, schedule=schedule, warmup_epochs=0.5 if schedule == "cosine" else 0.0)
    fit(TrainConfig(out=str(tmp_path / "straight"), **cfg), progress=False)
    seed = int.from_bytes(os.urandom(4), "little")
    stops = sorted(random.Random(seed).sample(range(1, TOTAL), 3))  # any step but the last, epoch ends included
    note = "schedule %s, stopped after steps %s (seed %d)" % (schedule, stops, seed)
    split = tmp_path / "split"
    for i, s in enumerate(stops):
        with pytest.raises(TrainingInterrupted):
            fit(TrainConfig(out=str(split), **cfg), resume=i > 0, progress=False, on_step=_interrupt_at(s))
        ck = checkpoint.load(split / "last.pt")
        assert ck["scheduler"]["step"] == s, note
        if s % STEPS_PER_EPOCH:  # inside an epoch: the position is saved with the epoch's RNG and tallies
            assert ck["partial"]["batch"] == s % STEPS_PER_EPOCH and ck["epoch"] == s // STEPS_PER_EPOCH, note
        else:  # the last step of an epoch: the epoch is finished and saved as usual
            assert "partial" not in ck and ck["epoch"] == s // STEPS_PER_EPOCH, note
    fit(TrainConfig(out=str(split), **cfg), resume=True, progress=False)
    _same_run(tmp_path / "straight", split, note)


def test_resume_before_the_fix_would_have_rescaled_the_schedule(data_dir, tmp_path):
    """The LR after a resume mid-warm-up is the schedule's, not (lr at the stop / base lr) times it."""
    cfg = dict(BASE, data_dir=data_dir, schedule="onecycle")
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(out=str(tmp_path / "r"), **cfg), progress=False, on_step=_interrupt_at(2))
    fit(TrainConfig(out=str(tmp_path / "r"), **cfg), resume=True, progress=False)
    lrs = [r["lr"] for r in checkpoint.load(tmp_path / "r" / "last.pt")["history"]]
    from train.trainer import lr_factor

    # the lr of an epoch's row is the one its last step used: step index 5(e+1)-1 of 15
    want = [0.05 * lr_factor("onecycle", (STEPS_PER_EPOCH * (e + 1) - 1) / TOTAL) for e in range(3)]
    assert lrs == pytest.approx(want, rel=1e-12)


def test_sigterm_from_outside_stops_the_cli_and_resume_finishes_identically(data_dir, tmp_path):
    """The CLI as a user runs it: SIGTERM while training, exit 130 and a one-line hint, then --resume.

    Every part runs as its own process with the same thread count (a different count changes the order
    of float sums, hence the bits)."""
    args = ["--model", "lenet5", "--model-arg", "activation=relu", "--batch-size", "32", "--device", "cpu", "--subset",
            "640", "--epochs", "2", "--mixup", "0.2", "--data-dir", data_dir, "--seed", "3", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")

    def cli(*extra):
        return subprocess.Popen([sys.executable, "-m", "edge_runtime", "train", *args, *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, universal_newlines=True)

    straight = cli("--out", str(tmp_path / "straight"))
    proc = cli("--out", str(tmp_path / "split"))
    line = proc.stdout.readline()  # the first epoch's line: the second epoch is under way
    assert line.startswith("epoch 1/2"), line + proc.stderr.read()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived (a fast machine)")
    assert proc.returncode == 130, err
    assert "continue exactly with: edge-runtime train --out %s --resume" % (tmp_path / "split") in err, err
    ck = checkpoint.load(tmp_path / "split" / "last.pt")
    assert ck["epoch"] == 1
    resumed = subprocess.run([sys.executable, "-m", "edge_runtime", "train", "--resume", "--out", str(tmp_path / "split"),
                              "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             universal_newlines=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming %s from epoch 2, step" % (tmp_path / "split") in resumed.stderr or "from the end of epoch 1" in \
        resumed.stderr, resumed.stderr
    a, b = checkpoint.load(tmp_path / "straight" / "last.pt"), checkpoint.load(tmp_path / "split" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["test_acc"] for r in a["history"]] == [r["test_acc"] for r in b["history"]]


def test_extending_a_finished_run_is_refused_with_the_command_that_does_it(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--model", "lenet5", "--batch-size", "32", "--device", "cpu", "--subset", "128", "--data-dir", data_dir]
    assert run_cli(["train", *common, "--epochs", "1", "--out", out, "--quiet"], capsys)[0] == 0
    before = (out / "last.pt").read_bytes()
    rc, so, se = run_cli(["train", "--resume", "--out", out, "--epochs", "3"], capsys)
    assert rc == 2 and len(se.strip().splitlines()) == 1, se
    assert "its own length (1 epochs, finished)" in se and "--init-from %s" % (out / "last.pt") in se, se
    assert (out / "last.pt").read_bytes() == before
    # the command it names works: a new 3-epoch schedule from the finished run's weights (head kept)
    cmd = se.split("with a new 3-epoch schedule: ")[1].strip().split()
    assert cmd[:2] == ["edge-runtime", "train"]
    rc, so, se = run_cli([*cmd[1:], "--data-dir", data_dir, "--quiet"], capsys)
    assert rc == 0, se
    ck = checkpoint.load(Path(str(out) + "-3ep") / "last.pt")
    assert ck["epoch"] == 3 and ck["manifest"]["parent"]["head"] == "kept"
    # resuming a finished run at its own length says so and changes nothing
    rc, so, se = run_cli(["train", "--resume", "--out", out], capsys)
    assert rc == 0 and "finished its 1 epochs earlier" in se, se
    assert (out / "last.pt").read_bytes() == before
