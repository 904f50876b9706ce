"""fit: the training loop, optimizers and per-step schedules.

One loop for CPU and GPU. On CUDA it holds the dataset on the GPU and augments there, runs in
bf16 autocast with channels_last, and can ``torch.compile``. Under ``torchrun`` it trains with
DistributedDataParallel (gloo on CPU, NCCL on GPU); rank 0 writes the outputs.

``fit`` in steps: ``_setup`` (data, model, loaders, teachers, optimizer) -> ``_restore`` (resume) ->
per epoch ``_train_epoch`` (the steps) -> ``_end_epoch`` (evaluate, print, ``_save_epoch``).
Beside it: ``checkpoint`` (files, RNG, stop on a signal), ``evaluation`` (metrics shared with
``edge_runtime.evaluate``, metrics.csv, the summary line), ``device``, ``distill``, ``plots``.

Outputs in ``out``: ``last.pt``, ``best.pt`` (atomic), ``metrics.csv``, ``curves.png``,
``config.yaml`` and ``manifest.json``; with ``average_from``, ``average.pt`` (train/average.py). ``resume=True`` continues from ``last.pt`` exactly, at any
step: the shuffle, augmentation and dropout of epoch *e* depend only on (seed, e); the optimizer,
the schedule's position (its base LRs come from the config, never from the restored state) and the
RNG states are restored; SIGINT/SIGTERM save ``last.pt`` at the next step boundary with the
epoch's position and tallies. A resumed CPU run reproduces the uninterrupted one bit for bit
(tests/test_resume.py). ``--resume`` keeps the run's length; a longer run is a new run with
``--init-from`` (the refusal names the command).
"""
from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from edge_runtime import manifest as mf
from edge_runtime.cli._common import command_line
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file, write_json_atomic

from . import average as averaging, checkpoint, data
from .average import averaged_checkpoint
from .checkpoint import StopOnSignal, TrainingInterrupted
from .config import TrainConfig, save_yaml
from .distill import Teachers, kd_loss, setup_teachers
from .device import Dist, init_distributed, select_device, warm_up
from .evaluation import METRIC_FIELDS, autocast as _autocast, describe_result, predict, summarize, summary_line, write_metrics
from .models import create_model, get_entry
from .models.profile import count_macs, count_params
from .plots import plot_curves
from .transfer import apply_freeze, freeze_in_effect, load_parent, unfreeze_all

__all__ = ["fit", "lr_factor", "build_optimizer", "select_device", "predict", "summarize", "summary_line",
           "describe_result", "TrainingInterrupted", "METRIC_FIELDS"]


# ----------------------------------------------------------------------------------------------------------------------
# machinery


def lr_factor(schedule: str, p: float, warmup: float = 0.0) -> float:
    """Multiplier of the base LR at training progress ``p`` in [0, 1]."""
    p = min(max(p, 0.0), 1.0)
    if schedule == "none":
        return 1.0
    if schedule == "step":
        return 1.0 if p < 0.5 else (0.1 if p < 0.75 else 0.01)
    if schedule == "onecycle":  # as torch's OneCycleLR: cos warm-up over 25 %, cos anneal; div 25, final div 1e4
        lo, end, pct = 1.0 / 25.0, 1.0 / 25.0 / 1e4, 0.25
        if p < pct:
            return lo + (1 - lo) * (1 - math.cos(math.pi * p / pct)) / 2
        q = (p - pct) / (1 - pct)
        return end + (1 - end) * (1 + math.cos(math.pi * q)) / 2
    if schedule == "cosine":
        if warmup > 0 and p < warmup:
            return p / warmup
        q = (p - warmup) / max(1e-12, 1 - warmup)
        return 0.5 * (1 + math.cos(math.pi * q))
    raise ValueError(schedule)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(groups, lr=cfg.lr)
    raise EdgeRuntimeError("unknown optimizer %r" % cfg.optimizer)


def _schedule_curve(cfg: TrainConfig) -> Optional[Callable[[float], float]]:
    if cfg.time_budget:
        return None  # the schedule follows wall time, not epochs
    warm = cfg.warmup_epochs / cfg.epochs
    return lambda e: cfg.lr * lr_factor(cfg.schedule, e / cfg.epochs, warm)


def _manifest(cfg: TrainConfig, ds: data.CifarData, model: nn.Module, acc: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    raw = model.module if hasattr(model, "module") else model
    raw = getattr(raw, "_orig_mod", raw)
    return mf.new(
        "checkpoint",
        model={"name": cfg.model, "kwargs": dict(cfg.model_kwargs), "params": count_params(raw), "macs": extra.pop("macs")},
        dataset=mf.make_dataset(ds.name, ds.class_names, ds.superclass_names, ds.fine_to_coarse),
        preprocess=mf.make_preprocess(ds.mean, ds.std),
        precision="fp32",
        accuracy=acc,
        code=mf.code_version(),
        **extra,
    )


# ----------------------------------------------------------------------------------------------------------------------
# the run, in steps: setup -> restore -> per epoch (train steps -> evaluate -> save) -> result


@dataclass
class _Run:
    """Everything a run builds once before its first step."""

    cfg: TrainConfig
    device: torch.device
    dd: Dist
    out: Path
    ds: data.CifarData
    test_n: int
    first_exact: bool
    model: nn.Module
    net: nn.Module
    entry: Any
    macs: int
    parent_info: Optional[Dict[str, Any]]
    train_loader: data.TensorLoader
    test_loader: data.TensorLoader
    teachers: Optional[Teachers]
    distill_info: Optional[Dict[str, Any]]
    optimizer: torch.optim.Optimizer
    base_lrs: List[float]
    criterion: nn.Module
    command: str
    progress: bool


@dataclass
class _State:
    """What last.pt restores: the position in the schedule, the history and, mid-epoch, the epoch's tallies."""

    step: int = 0
    elapsed: float = 0.0
    epoch: int = 0                      # finished epochs
    best_acc: float = -1.0
    rows: List[Dict[str, Any]] = field(default_factory=list)
    partial: Optional[Dict[str, Any]] = None
    average: Optional[Dict[str, Any]] = None   # average_from: {"weights": running mean, "epochs": [1-based]}


def _check_out(cfg: TrainConfig, resume: bool) -> Path:
    out = Path(cfg.out)
    last = out / "last.pt"
    if resume and not last.is_file():
        raise EdgeRuntimeError("--resume: nothing to resume in %s (no last.pt); start a new run without --resume" % out)
    if not resume and last.is_file():
        raise EdgeRuntimeError("%s already holds a run (last.pt); continue it with --resume, or choose another --out "
                               "(nothing was overwritten)" % out)
    return out


def make_loaders(cfg: TrainConfig, device: torch.device, dd: Optional[Dist] = None) -> Tuple[
        data.CifarData, data.Split, data.Split, bool, data.TensorLoader, data.TensorLoader]:
    """The run's data as its config defines it: (dataset, train split, test split, whether the test split is the
    whole official one, training loader, test loader)."""
    rank, world = (dd.rank, dd.world) if dd is not None else (0, 1)
    ds = data.load(cfg.dataset, cfg.data_dir, download_missing=cfg.download)
    if cfg.classes:
        ds = data.select_classes(ds, cfg.classes)
    train_split, test_split = ds.train, ds.test
    if cfg.subset:
        train_split = data.subset(train_split, cfg.subset, cfg.seed)
        test_split = data.subset(test_split, cfg.subset, cfg.seed + 1)
    first_exact = len(test_split) == len(ds.test) and not cfg.classes
    bs = max(1, cfg.batch_size // world)
    train_loader = data.TensorLoader(train_split, bs, ds.mean, ds.std, device, train=True,
                                     augment=data.Augment(crop_padding=cfg.crop_padding, flip=cfg.flip, cutout=cfg.cutout),
                                     seed=cfg.seed, drop_last=True, rank=rank, world=world,
                                     channels_last=cfg.channels_last)
    test_loader = data.TensorLoader(test_split, 1000, ds.mean, ds.std, device, train=False, channels_last=cfg.channels_last)
    return ds, train_split, test_split, first_exact, train_loader, test_loader


def _setup(cfg: TrainConfig, resume: bool, progress: bool, command: Optional[str]) -> _Run:
    device = select_device(cfg.device)
    dd = init_distributed(device)
    if dd.world > 1 and cfg.time_budget:
        # ranks would stop at different steps and leave DDP's all-reduce waiting
        raise EdgeRuntimeError("--time-budget is not supported with several processes (WORLD_SIZE=%d); set --epochs "
                               "instead" % dd.world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    out = _check_out(cfg, resume)
    ds, train_split, test_split, first_exact, train_loader, test_loader = make_loaders(cfg, device, dd)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=ds.num_classes, **cfg.model_kwargs)
    entry = get_entry(cfg.model)
    macs = count_macs(model)
    parent_info = load_parent(model, Path(cfg.init_from), cfg.model, entry.head, ds.class_names) if cfg.init_from else None
    apply_freeze(model, cfg.freeze, entry)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format  # 1.1-2.3x on CPU (benchmarks/training.md)
    model = model.to(device, memory_format=fmt)
    if len(train_loader) == 0:
        raise EdgeRuntimeError("batch size %d is larger than the %d training images per process; lower --batch-size"
                               % (train_loader.batch_size, len(train_split) // dd.world))
    teachers, distill_info = None, None
    if cfg.teachers:
        teachers, distill_info = setup_teachers(cfg, ds, train_split, test_split, test_loader, train_loader, device,
                                                 dd.main, progress, first_exact)
    optimizer = build_optimizer(cfg, model)
    base_lrs = [g["lr"] for g in optimizer.param_groups]  # before any state is loaded: a restored lr is not a base lr
    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return _Run(cfg=cfg, device=device, dd=dd, out=out, ds=ds, test_n=len(test_split), first_exact=first_exact,
                model=model, net=net, entry=entry, macs=macs, parent_info=parent_info, train_loader=train_loader,
                test_loader=test_loader, teachers=teachers, distill_info=distill_info, optimizer=optimizer,
                base_lrs=base_lrs, criterion=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
                command=command or command_line(), progress=progress)


def _resume_plan(cfg: TrainConfig) -> Optional[Dict[str, Any]]:
    """Checked before any setup (data, teachers): another length is refused; returns None when there is work
    to do, else the finished run's manifest (nothing to resume)."""
    out = _check_out(cfg, True)
    last = out / "last.pt"
    ck = checkpoint.load(last)
    saved_epochs = int(ck.get("config", {}).get("epochs", cfg.epochs))
    done = int(ck["epoch"]) >= saved_epochs and not ck.get("partial")
    if saved_epochs != cfg.epochs:
        raise EdgeRuntimeError(
            "--resume continues %s exactly to its own length (%d epochs%s); --epochs %d would change its schedule. To "
            "train on from its weights with a new %d-epoch schedule: edge-runtime train --config %s --init-from %s "
            "--epochs %d --out %s-%dep" % (out, saved_epochs, ", finished" if done else ", %d done" % int(ck["epoch"]),
                                           cfg.epochs, cfg.epochs, out / "config.yaml", last, cfg.epochs, out, cfg.epochs))
    budget_spent = bool(cfg.time_budget and float(ck["scheduler"]["elapsed"]) >= cfg.time_budget)
    average_due = bool(ck.get("average")) and not ck["average"].get("evaluated")
    if (done or budget_spent) and not average_due:
        print("%s finished its %s earlier: nothing to resume" % (
            out, "%.0f s budget" % cfg.time_budget if budget_spent else "%d epochs" % cfg.epochs), file=sys.stderr,
            flush=True)
        return mf.read(out / "manifest.json") if (out / "manifest.json").is_file() else {}
    return None


def _restore(run: _Run) -> _State:
    last = run.out / "last.pt"
    ck = checkpoint.load(last)
    try:
        run.model.load_state_dict(ck["model"])
        run.optimizer.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise EdgeRuntimeError("%s does not fit this run's model %s with %d classes (%s); resume with the config it was "
                               "saved with" % (last, run.cfg.model, run.ds.num_classes, str(exc).splitlines()[0][:160]))
    st = _State(step=int(ck["scheduler"]["step"]), elapsed=float(ck["scheduler"]["elapsed"]), epoch=int(ck["epoch"]),
                best_acc=float(ck.get("best_acc", -1.0)), rows=list(ck.get("history", [])), partial=ck.get("partial"),
                average=ck.get("average"))
    checkpoint.set_rng_state(ck.get("rng", {}), run.device)
    if run.dd.main:
        where = ("epoch %d, step %d of %d" % (st.epoch + 1, st.partial["batch"], len(run.train_loader))
                 if st.partial else "the end of epoch %d" % st.epoch)
        print("resuming %s from %s" % (run.out, where), file=sys.stderr, flush=True)
    return st


def _payload(run: _State, r: _Run, epoch_done: int, manifest: Dict[str, Any]) -> Dict[str, Any]:
    return {"model": r.model.state_dict(), "optimizer": r.optimizer.state_dict(),
            "scheduler": {"step": run.step, "elapsed": run.elapsed}, "epoch": epoch_done, "rng": checkpoint.rng_state(r.device),
            "config": r.cfg.to_dict(), "manifest": manifest, "history": run.rows, "best_acc": run.best_acc,
            **({"average": run.average} if run.average is not None else {})}


def _accumulate_average(r: _Run, st: _State, epoch_done: int, progress: float) -> None:
    """average_from: fold this epoch's end weights into the running mean when the epoch ends at or after that
    fraction of the schedule (the last epoch always counts)."""
    frm = r.cfg.average_from
    if frm is None or progress < frm:
        return
    st.average = averaging.fold(st.average, r.model.state_dict(), epoch_done)


def _finish_average(r: _Run, st: _State) -> None:
    """After the last epoch (rank 0): evaluate the average (train/average.py), write average.pt and, when it beats
    every evaluated epoch, best.pt and manifest.json; then mark it done in last.pt (a resume does not redo it)."""
    avg = st.average
    if avg is None or avg.get("evaluated"):
        return
    eps = avg["epochs"]
    if len(eps) < 2:
        print("--average-from %s: only epoch %s ended at or after that point of the schedule; nothing averaged (lower "
              "--average-from or train longer)" % (r.cfg.average_from, eps[0]), file=sys.stderr, flush=True)
    else:
        # BatchNorm statistics from one pass over the whole training split, in one process
        loader = r.train_loader if r.dd.world == 1 else make_loaders(r.cfg, r.device)[4]
        model, info = averaging.evaluate(r.model, avg, r.cfg, loader, r.test_loader, r.device, r.first_exact)
        _save_average(r, st, model, info)
    avg["evaluated"] = True
    ck = checkpoint.load(r.out / "last.pt")
    ck.update(average=avg, best_acc=st.best_acc)
    checkpoint.save(r.out / "last.pt", ck)


@dataclass
class _Tally:
    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    seconds: float = 0.0        # of this epoch before a resume
    postfix: Dict[str, str] = field(default_factory=dict)   # what the progress bar shows


def _train_epoch(r: _Run, st: _State, epoch: int, t_start: float, stopper: StopOnSignal,
                 on_step: Optional[Callable[[int, int, int], None]]) -> Tuple[_Tally, float, bool, Any]:
    """One epoch of steps (from its saved position when resumed); returns (tally, t0, budget_spent, progress bar)."""
    cfg, model, net, opt, device = r.cfg, r.model, r.net, r.optimizer, r.device
    if cfg.unfreeze_at is not None and epoch + 1 >= cfg.unfreeze_at:
        unfreeze_all(model)
    torch.manual_seed(cfg.seed * 1000003 + epoch)  # dropout etc.: a function of (seed, epoch) only
    net.train()
    if freeze_in_effect(cfg, epoch + 1):
        apply_freeze(model, cfg.freeze, r.entry, set_mode_only=True)
    mix_rng = np.random.default_rng(cfg.seed * 7919 + epoch)
    tally = _Tally(torch.zeros((), device=device), torch.zeros((), device=device))
    part, st.partial = st.partial, None
    start = 0
    if part is not None and int(part["epoch"]) == epoch:  # mid-epoch resume: the same batches, RNG and tallies
        start = int(part["batch"])
        tally = _Tally(part["loss_sum"].to(device), part["correct"].to(device), int(part["seen"]), float(part["seconds"]))
        checkpoint.set_rng_state(part["rng"], device)
        for _ in range(start if cfg.mixup > 0 else 0):
            mix_rng.beta(cfg.mixup, cfg.mixup)
    r.train_loader.set_epoch(epoch, start_batch=start)
    n_batches = len(r.train_loader)
    t0 = time.perf_counter() - tally.seconds
    bar = None
    if r.progress and r.dd.main:
        from tqdm import tqdm

        # updated by hand, not iterated: a tqdm iterator closes itself at the end, before the test accuracy is known
        bar = tqdm(total=n_batches, initial=start, desc="epoch %d/%d" % (epoch + 1, cfg.epochs), leave=True,
                   dynamic_ncols=True, file=sys.stderr)
    total_steps = cfg.epochs * n_batches
    warm = cfg.warmup_epochs / cfg.epochs if cfg.epochs else 0.0
    for bi, batch in enumerate(r.train_loader, start):
        x, y = batch[0], batch[1]
        if cfg.time_budget and time.perf_counter() - t_start >= cfg.time_budget:
            return tally, t0, True, bar
        p = (time.perf_counter() - t_start) / cfg.time_budget if cfg.time_budget else st.step / max(1, total_steps)
        f = lr_factor(cfg.schedule, p, warm)
        for g, base in zip(opt.param_groups, r.base_lrs):
            g["lr"] = base * f
        with _autocast(device, cfg.amp):
            lam = 1.0
            if cfg.mixup > 0:
                # pair each image with the batch reversed (batches are already shuffled): no host sync
                lam = float(mix_rng.beta(cfg.mixup, cfg.mixup))
                x = lam * x + (1 - lam) * x.flip(0)
                out_ = net(x)
                loss = lam * r.criterion(out_, y) + (1 - lam) * r.criterion(out_, y.flip(0))
            else:
                out_ = net(x)
                loss = r.criterion(out_, y)
            if r.teachers is not None:
                if len(batch) > 2:  # cached: the targets of the whole image (mixed as the images were)
                    t = batch[2] if lam == 1.0 else lam * batch[2] + (1 - lam) * batch[2].flip(0)
                else:
                    t = r.teachers.logits(x)
                loss = (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * kd_loss(out_, t, cfg.distill_temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        st.step += 1
        tally.loss_sum += loss.detach().float() * x.shape[0]
        tally.correct += (out_.detach().argmax(1) == y).sum()
        tally.seen += x.shape[0]
        if bar is not None:
            bar.update(1)
        if bar is not None and (bi % 10 == 0 or bi == n_batches - 1):
            dt = time.perf_counter() - t0
            tally.postfix = {"loss": "%.3f" % (tally.loss_sum.item() / tally.seen),
                             "acc": "%.1f" % (100 * tally.correct.item() / tally.seen),
                             "img_s": "%.0f" % (tally.seen * r.dd.world / max(dt, 1e-9)),
                             "lr": "%.3g" % opt.param_groups[0]["lr"]}
            bar.set_postfix(tally.postfix)
        if on_step is not None:
            on_step(epoch, bi, st.step)
        if stopper.signum is not None and bi + 1 < n_batches:
            if bar is not None:
                bar.close()
            _save_partial(r, st, epoch, bi + 1, tally, time.perf_counter() - t0, t_start)
    return tally, t0, False, bar


def _save_partial(r: _Run, st: _State, epoch: int, batch: int, tally: _Tally, seconds: float, t_start: float) -> None:
    """Save last.pt at this step boundary (the position, RNG and tallies of the epoch), then stop."""
    st.elapsed = time.perf_counter() - t_start
    last = r.out / "last.pt"
    if r.dd.main:
        ck = checkpoint.load(last) if last.is_file() else None
        man = ck["manifest"] if ck is not None else _manifest(r.cfg, r.ds, r.model, {"top1": None, "note": "interrupted in "
                                                                                     "the first epoch"},
                                                              {"macs": r.macs, "parent": r.parent_info})
        payload = _payload(st, r, epoch, man)
        payload["partial"] = {"epoch": epoch, "batch": batch, "loss_sum": tally.loss_sum.detach().cpu(),
                              "correct": tally.correct.detach().cpu(), "seen": tally.seen, "seconds": seconds,
                              "rng": checkpoint.rng_state(r.device)}
        checkpoint.save(last, payload)
        print("\ninterrupted in epoch %d/%d after step %d of %d: saved %s there; continue exactly with: edge-runtime "
              "train --out %s --resume" % (epoch + 1, r.cfg.epochs, batch, len(r.train_loader), last,
                                           shlex.quote(str(r.out))), file=sys.stderr, flush=True)
    raise TrainingInterrupted("training interrupted at epoch %d step %d; last.pt saved" % (epoch + 1, batch))


def _end_epoch(r: _Run, st: _State, epoch: int, tally: _Tally, t0: float, t_start: float, last_epoch: bool,
               bar: Any) -> Dict[str, Any]:
    """All-reduce the tallies, evaluate when due, print, and save last.pt (and best.pt when it improved)."""
    cfg, dd, device = r.cfg, r.dd, r.device
    loss_sum, correct, seen = tally.loss_sum, tally.correct, tally.seen
    if dd.world > 1:
        tot = torch.stack([loss_sum, correct, torch.tensor(float(seen), device=device)])
        dist.all_reduce(tot)
        loss_sum, correct, seen = tot[0], tot[1], int(tot[2].item())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    secs = time.perf_counter() - t0
    row: Dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(loss_sum) / max(seen, 1),
                           "train_acc": 100.0 * float(correct) / max(seen, 1), "lr": r.optimizer.param_groups[0]["lr"],
                           "seconds": secs, "images_per_s": seen / max(secs, 1e-9),
                           "test_loss": None, "test_acc": None, "test_acc_first1000": None}
    if last_epoch or (epoch + 1) % max(1, cfg.eval_every) == 0:
        ev = summarize(*predict(r.model, r.test_loader, device, cfg.amp))
        row.update(test_loss=ev["loss"], test_acc=ev["top1"], test_acc_first1000=ev["top1_first1000"] if r.first_exact else None)
    st.elapsed = time.perf_counter() - t_start
    done = 1.0 if last_epoch else (st.elapsed / cfg.time_budget if cfg.time_budget else
                                   st.step / max(1, cfg.epochs * len(r.train_loader)))
    _accumulate_average(r, st, epoch + 1, done)
    if bar is not None:
        if row["test_acc"] is not None:
            bar.set_postfix(dict(tally.postfix, test="%.2f%%" % row["test_acc"]))
        bar.close()
    st.rows.append(row)
    st.epoch = epoch + 1
    if dd.main:
        if bar is None:
            print("epoch %d/%d  train loss %.4f acc %.2f  test loss %s acc %s  %.0f img/s  %.1fs" % (
                epoch + 1, cfg.epochs, row["train_loss"], row["train_acc"],
                "-" if row["test_loss"] is None else "%.4f" % row["test_loss"],
                "-" if row["test_acc"] is None else "%.2f" % row["test_acc"], row["images_per_s"], secs), flush=True)
        _save_epoch(r, st, row)
    return row


def _save_epoch(r: _Run, st: _State, row: Dict[str, Any]) -> None:
    cfg = r.cfg
    improved = row["test_acc"] is not None and row["test_acc"] > st.best_acc
    if improved:
        st.best_acc = row["test_acc"]
    acc = {"top1": row["test_acc"], "top1_first1000": row["test_acc_first1000"], "split": "test", "n": r.test_n,
           "epoch": row["epoch"], "command": r.command, "measured_with": "pytorch",
           "selection": "the checkpoint with the best test accuracy among the evaluated epochs (no separate "
                        "validation split): slightly optimistic; the last epoch is in metrics.csv",
           "note": "first1000 = official test images 0-999 (exact pixels in the shared copy)" if r.first_exact else
           "evaluated on a subset or class selection"}
    extra = {"macs": r.macs, "training": {
        "epochs": cfg.epochs, "epochs_run": row["epoch"], "optimizer": cfg.optimizer, "lr": cfg.lr,
        "schedule": cfg.schedule, "batch_size": cfg.batch_size, "seconds": round(st.elapsed, 2),
        "device": torch.cuda.get_device_name(r.device) if r.device.type == "cuda" else "cpu",
        "world_size": r.dd.world, "torch": str(torch.__version__), "classes": cfg.classes, "subset": cfg.subset},
        "parent": r.parent_info}
    if r.distill_info is not None:
        extra["distillation"] = r.distill_info
    man = _manifest(cfg, r.ds, r.model, acc, extra)
    payload = _payload(st, r, row["epoch"], man)
    if improved:  # best first: last.pt records best_acc, so it must never run ahead of best.pt
        checkpoint.save(r.out / "best.pt", {k: v for k, v in payload.items() if k != "average"})
        best = dict(man)
        best["sha256"] = sha256_file(r.out / "best.pt")
        write_json_atomic(r.out / "manifest.json", best)
    checkpoint.save(r.out / "last.pt", payload)
    write_metrics(st.rows, r.out / "metrics.csv")
    plot_curves(st.rows, r.out / "curves.png", "%s on %s: %s" % (cfg.model, cfg.dataset,
                                                                  summary_line(st.rows, cfg.epochs, cfg.time_budget)),
                epochs=None if cfg.time_budget else cfg.epochs, schedule=_schedule_curve(cfg),
                steps_per_epoch=len(r.train_loader))


def _save_average(r: _Run, st: _State, model: nn.Module, info: Dict[str, Any]) -> None:
    """average.pt (always), and best.pt with manifest.json when the average beats every evaluated epoch."""
    best_single = st.best_acc
    chosen = info["top1"] > best_single
    info["chosen_for_best"] = chosen
    apay = averaged_checkpoint(checkpoint.load(r.out / "last.pt"), model, info, " (average_from %s); %s" % (
        r.cfg.average_from, "it beat the best evaluated epoch (%.2f %%) on test" % best_single if chosen else
        "the best evaluated epoch (%.2f %%) is best.pt" % best_single))
    checkpoint.save(r.out / "average.pt", apay)
    if chosen:
        st.best_acc = info["top1"]
        checkpoint.save(r.out / "best.pt", dict(apay, best_acc=st.best_acc))
        write_json_atomic(r.out / "manifest.json", dict(apay["manifest"], sha256=sha256_file(r.out / "best.pt")))
    print("weight average of %s: test %.2f %%%s -> %s%s" % (
        averaging.describe_epochs(info["epochs"]), info["top1"],
        "" if info["top1_first1000"] is None else " (first 1000: %.2f %%)" % info["top1_first1000"],
        r.out / "average.pt", ", kept as best.pt" if chosen else "; best.pt stays the best epoch (%.2f %%)" % best_single),
        flush=True)


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True,
        on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None, command: Optional[str] = None,
        on_step: Optional[Callable[[int, int, int], None]] = None) -> Dict[str, Any]:
    """Train per ``cfg``; returns the best checkpoint's manifest (``{}`` on ranks other than 0).

    ``command`` is recorded in the manifest as the command that produced the accuracy (default: this
    process's command line). ``on_epoch`` sees each epoch's metrics row; ``on_step(epoch, batch, step)``
    is called after every optimizer step. SIGINT/SIGTERM stop at the next step boundary with last.pt
    saved there (raises :class:`TrainingInterrupted`); ``resume=True`` continues from it exactly.
    """
    cfg.validate()
    if resume:
        finished = _resume_plan(cfg)
        if finished is not None:
            return finished
    r = _setup(cfg, resume, progress, command)
    st = _restore(r) if resume else _State()
    if r.dd.main:
        r.out.mkdir(parents=True, exist_ok=True)
        save_yaml(r.out / "config.yaml", cfg)
        if st.epoch < cfg.epochs:
            print("training %s on %s (%d train / %d test images, %d steps per epoch) -> %s" % (
                cfg.model, cfg.dataset, r.train_loader.n, r.test_n, len(r.train_loader), r.out), file=sys.stderr,
                flush=True)
    if r.device.type == "cuda" and st.epoch < cfg.epochs:
        warm_up(r.model, r.train_loader, r.test_loader, r.criterion, r.device, cfg.amp)
    t_start = time.perf_counter() - st.elapsed  # after the warm-up: --time-budget counts training only
    with StopOnSignal(enabled=r.dd.world == 1) as stopper:
        for epoch in range(st.epoch, cfg.epochs):
            tally, t0, spent, bar = _train_epoch(r, st, epoch, t_start, stopper, on_step)
            if spent and tally.seen == 0:  # the budget was already spent (a resumed, finished run): nothing to record
                if bar is not None:
                    bar.close()
                break
            row = _end_epoch(r, st, epoch, tally, t0, t_start, epoch + 1 == cfg.epochs or spent, bar)
            if on_epoch:
                on_epoch(row)
            if spent:
                break
            if stopper.signum is not None and epoch + 1 < cfg.epochs:
                if r.dd.main:
                    print("interrupted after epoch %d/%d: saved %s; continue exactly with: edge-runtime train --out %s "
                          "--resume" % (epoch + 1, cfg.epochs, r.out / "last.pt", shlex.quote(str(r.out))),
                          file=sys.stderr, flush=True)
                raise TrainingInterrupted("training interrupted after epoch %d; last.pt saved" % (epoch + 1))
    if r.dd.main:
        try:
            _finish_average(r, st)
        except KeyboardInterrupt:
            print("\ninterrupted while evaluating the weight average; the last epoch is saved in %s: edge-runtime "
                  "train --out %s --resume evaluates it" % (r.out / "last.pt", shlex.quote(str(r.out))),
                  file=sys.stderr, flush=True)
            raise TrainingInterrupted("interrupted while evaluating the weight average; last.pt saved") from None
    if r.dd.world > 1:
        dist.barrier()
    if r.dd.main and (r.out / "manifest.json").is_file():
        return mf.read(r.out / "manifest.json")
    return {}


def replot(out: Path) -> Path:
    """Redraw ``out/curves.png`` from the run's ``metrics.csv`` and ``config.yaml`` (older runs, new plot)."""
    import csv
    import dataclasses

    from .config import load_yaml, overlay

    out = Path(out)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = overlay(TrainConfig(), {k: v for k, v in load_yaml(out / "config.yaml").items() if k in known},
                  str(out / "config.yaml"))
    with open(out / "metrics.csv") as fh:
        rows = [{k: (None if v == "" else (int(v) if k == "epoch" else float(v))) for k, v in r.items()}
                for r in csv.DictReader(fh)]
    n_train = cfg.subset or (len(cfg.classes) * 5000 if cfg.classes else 50000)
    title = "%s on %s: %s" % (cfg.model, cfg.dataset, summary_line(rows, cfg.epochs, cfg.time_budget))
    return plot_curves(rows, out / "curves.png", title, epochs=None if cfg.time_budget else cfg.epochs,
                       schedule=_schedule_curve(cfg), steps_per_epoch=n_train // cfg.batch_size)
