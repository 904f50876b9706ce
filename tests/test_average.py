"""average_from (SWA): the weights at the end of the schedule's last epochs are averaged, BatchNorm statistics are
recomputed, the average is evaluated once and saved as average.pt, and best.pt takes it only when it scores higher;
a run stopped and resumed at a random step averages exactly what the uninterrupted run averages."""
import os
import random

import pytest
import torch

from train import checkpoint
from train.config import TrainConfig
from train.trainer import TrainingInterrupted, fit

from .conftest import run_cli
from .test_resume import BASE, TOTAL, _interrupt_at

# a model with BatchNorm: 128 images, batches of 32 -> 4 steps per epoch, 4 epochs
BN = dict(model="mobilenetv2_paper", batch_size=32, device="cpu", subset=128, epochs=4, lr=0.05)


def _is_bn_stat(name: str) -> bool:
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


def test_average_is_the_mean_of_the_epoch_end_weights_with_batchnorm_recomputed(cifar10_dir, tmp_path, capsys):
    out = tmp_path / "run"
    ends = {}

    def on_epoch(row):
        ends[row["epoch"]] = checkpoint.load(out / "last.pt")["model"]

    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), average_from=0.5, **BN), progress=False,
        on_epoch=on_epoch)
    avg = checkpoint.load(out / "average.pt")
    info = avg["manifest"]["training"]["average"]
    # epoch e ends at step 4e of 16: epochs 2 (p = 0.5), 3 and 4 are averaged
    assert info["epochs"] == [2, 3, 4] and info["n"] == 3, info
    weights = avg["model"]
    n_bn = 0
    for k, v in weights.items():
        if _is_bn_stat(k):
            continue
        want = sum(ends[e][k].double() for e in (2, 3, 4)) / 3
        assert torch.allclose(v.double(), want, atol=1e-6), k
    differ = []
    for k, v in weights.items():
        if k.endswith("running_var"):  # recomputed on the averaged weights, not the mean of the epochs' statistics
            mean_of_stats = sum(ends[e][k] for e in (2, 3, 4)) / 3
            n_bn += 1
            differ.append(not torch.allclose(v, mean_of_stats, rtol=1e-3))
    assert n_bn > 0 and sum(differ) > n_bn // 2, (sum(differ), n_bn)
    assert "optimizer" not in avg  # not a point of the training trajectory: nothing resumes from it
    # best.pt is the average exactly when it beat every evaluated epoch
    best = checkpoint.load(out / "best.pt")
    epochs_best = max(r["test_acc"] for r in best["history"])
    chosen = info["top1"] > epochs_best
    assert info["chosen_for_best"] == chosen
    assert best["manifest"]["accuracy"]["top1"] == max(info["top1"], epochs_best)
    same = all(torch.equal(best["model"][k], weights[k]) for k in weights)
    assert same == chosen
    printed = capsys.readouterr().out
    assert "weight average of epochs 2-4: test %.2f %%" % info["top1"] in printed, printed


def test_snapshots_averaged_after_the_run_equal_the_in_run_average(cifar10_dir, tmp_path):
    """train.average.from_snapshots on copies of last.pt taken at epoch ends gives the checkpoint that
    --average-from gives during the run (same folding, same BatchNorm pass)."""
    import shutil

    from train.average import from_snapshots

    out = tmp_path / "run"
    snaps = tmp_path / "snaps"
    snaps.mkdir()

    def on_epoch(row):
        shutil.copy(out / "last.pt", snaps / ("e%d.pt" % row["epoch"]))

    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), average_from=0.5, **BN), progress=False,
        on_epoch=on_epoch)
    man = from_snapshots([snaps / "e4.pt", snaps / "e2.pt", snaps / "e3.pt"], tmp_path / "post.pt")
    a, b = checkpoint.load(out / "average.pt"), checkpoint.load(tmp_path / "post.pt")
    assert man["training"]["average"]["epochs"] == [2, 3, 4]
    assert man["accuracy"]["top1"] == a["manifest"]["training"]["average"]["top1"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    with pytest.raises(Exception, match="distinct epoch ends.*drop the duplicates"):
        from_snapshots([snaps / "e3.pt", snaps / "e3.pt"], tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


def test_a_budget_spent_at_an_epoch_end_still_evaluates_the_average(cifar10_dir, tmp_path, capsys):
    """--time-budget can run out between epochs, so that the next epoch ends before its first step and never
    reaches the end-of-epoch code: the average is evaluated after the loop, whatever ended it."""
    import time as _time

    out = tmp_path / "budget"

    def on_step(epoch, batch, step):
        if step == 8:   # the end of epoch 2: sleep past the budget
            _time.sleep(7.0)

    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), average_from=0.0, time_budget=6.0, eval_every=1,
                    **dict(BN, epochs=50)), progress=False, on_step=on_step)
    rows = checkpoint.load(out / "last.pt")["history"]
    assert len(rows) == 2, rows   # epoch 3 stopped before its first step
    info = checkpoint.load(out / "average.pt")["manifest"]["training"]["average"]
    assert info["epochs"] == [1, 2]
    assert checkpoint.load(out / "last.pt")["average"]["evaluated"] is True
    assert "weight average of epochs 1-2" in capsys.readouterr().out


def test_an_average_not_yet_evaluated_is_evaluated_by_resume(cifar10_dir, tmp_path):
    """A run stopped after its last epoch but before the average was evaluated (a crash in the BatchNorm pass, say):
    --resume does only that, and gets what the uninterrupted run got."""
    out = tmp_path / "run"
    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), average_from=0.5, **BN), progress=False)
    want = checkpoint.load(out / "average.pt")["model"]
    ck = checkpoint.load(out / "last.pt")
    ck["average"]["evaluated"] = False
    checkpoint.save(out / "last.pt", ck)
    (out / "average.pt").unlink()
    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), average_from=0.5, **BN), resume=True, progress=False)
    got = checkpoint.load(out / "average.pt")["model"]
    for k in want:
        assert torch.equal(want[k], got[k]), k
    assert len(checkpoint.load(out / "last.pt")["history"]) == 4   # no epoch trained again


def test_frozen_batchnorm_layers_keep_the_parents_statistics(cifar10_dir, tmp_path):
    parent = tmp_path / "parent"
    fit(TrainConfig(out=str(parent), data_dir=str(cifar10_dir), **dict(BN, epochs=1)), progress=False)
    out = tmp_path / "child"
    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), init_from=str(parent / "last.pt"), freeze="backbone",
                    average_from=0.5, **BN), progress=False)
    before = checkpoint.load(parent / "last.pt")["model"]
    avg = checkpoint.load(out / "average.pt")
    assert "frozen BatchNorm tensors kept" in avg["manifest"]["training"]["average"]["bn"]
    stats = [k for k in avg["model"] if k.endswith("running_var") and not k.startswith("classifier")]
    assert stats
    for k in stats:
        assert torch.equal(avg["model"][k], before[k]), k


def test_average_cli_bad_input_is_one_line_and_writes_nothing(cifar10_dir, tmp_path, capsys):
    from train.average import main

    out = tmp_path / "run"
    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), **dict(BN, epochs=1)), progress=False)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    (tmp_path / "taken.pt").write_bytes(b"keep")
    cases = [([str(out / "last.pt")], "at least two snapshots"),
             ([str(junk), str(out / "last.pt")], "junk.pt is not a readable checkpoint"),
             ([str(out / "last.pt"), str(out / "last.pt")], "drop the duplicates")]
    for args, needle in cases:
        capsys.readouterr()
        assert main(args + ["--out", str(tmp_path / "avg.pt")]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err, err
        assert "weights_only" not in err   # torch's advice to unpickle anyway is cut off
    assert main([str(out / "last.pt"), str(out / "last.pt"), "--out", str(tmp_path / "taken.pt")]) == 2
    assert (tmp_path / "taken.pt").read_bytes() == b"keep"
    assert not (tmp_path / "avg.pt").exists()


def test_without_average_from_nothing_is_averaged(cifar10_dir, tmp_path):
    out = tmp_path / "plain"
    fit(TrainConfig(out=str(out), data_dir=str(cifar10_dir), **dict(BN, epochs=2)), progress=False)
    assert not (out / "average.pt").exists()
    assert "average" not in checkpoint.load(out / "last.pt")
    assert "average" not in checkpoint.load(out / "best.pt")["manifest"]["training"]


def test_stopped_at_a_random_step_then_resumed_averages_the_same_weights(cifar10_dir, tmp_path):
    cfg = dict(BASE, data_dir=str(cifar10_dir), average_from=0.3)
    fit(TrainConfig(out=str(tmp_path / "straight"), **cfg), progress=False)
    seed = int.from_bytes(os.urandom(4), "little")
    stop = random.Random(seed).randrange(1, TOTAL)
    note = "stopped after step %d (seed %d)" % (stop, seed)
    with pytest.raises(TrainingInterrupted):
        fit(TrainConfig(out=str(tmp_path / "split"), **cfg), progress=False, on_step=_interrupt_at(stop))
    fit(TrainConfig(out=str(tmp_path / "split"), **cfg), resume=True, progress=False)
    a, b = (checkpoint.load(tmp_path / d / "average.pt") for d in ("straight", "split"))
    # 5 steps per epoch of 15: epoch 1 ends at p = 1/3 >= 0.3
    assert a["manifest"]["training"]["average"]["epochs"] == b["manifest"]["training"]["average"]["epochs"] == [1, 2, 3], note
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), (note, k)


@pytest.mark.parametrize("value", ["1", "1.5", "-0.1", "nan"])
def test_average_from_outside_0_1_is_a_one_line_error(cifar10_dir, tmp_path, capsys, value):
    rc, _, err = run_cli(["train", "--model", "lenet5", "--average-from", value, "--data-dir", cifar10_dir,
                          "--out", tmp_path / "x", "--epochs", "1", "--subset", "64", "--quiet"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "average_from: expected a number in [0, 1)" in err, err
    assert not (tmp_path / "x").exists()
