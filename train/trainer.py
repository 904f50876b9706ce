"""fit / evaluate: the training loop, optimizers, per-step schedules, checkpoints and curves.

One loop for CPU and GPU. On CUDA it holds the dataset on the GPU and augments there, runs in
bf16 autocast with channels_last, and can ``torch.compile``. Under ``torchrun`` it trains with
DistributedDataParallel (gloo on CPU, NCCL on GPU); rank 0 writes the outputs.

Outputs in ``out``: ``last.pt``, ``best.pt`` (atomic), ``metrics.csv``, ``curves.png``,
``config.yaml`` and ``manifest.json``. ``resume=True`` continues from ``last.pt`` exactly: the
shuffle, augmentation and dropout of epoch *e* depend only on (seed, e), and the optimizer,
schedule and RNG states are restored, so a resumed CPU run reproduces the uninterrupted one.
"""
from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import shlex
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file, write_json_atomic, write_text_atomic

from . import checkpoint, data
from .config import TrainConfig, save_yaml
from .distill import Teachers, cached_logits, kd_loss, target_key
from .models import create_model, get_entry
from .models.profile import count_macs, count_params
from .plots import plot_curves
from .transfer import apply_freeze, load_parent, unfreeze_all

METRIC_FIELDS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_acc_first1000", "lr", "seconds",
                 "images_per_s"]


# ----------------------------------------------------------------------------------------------------------------------
# machinery


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def select_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise EdgeRuntimeError("--device cuda was asked for, but torch sees no CUDA GPU here (torch %s); use "
                                   "--device cpu or auto" % torch.__version__)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local)
    return torch.device("cpu")


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


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _rng_state(device: torch.device) -> Dict[str, Any]:
    st: Dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def _set_rng_state(st: Dict[str, Any], device: torch.device) -> None:
    if "torch" in st:
        torch.set_rng_state(st["torch"].cpu())
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"].cpu(), device)


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped training at a step boundary after ``last.pt`` was saved there (``--resume`` continues)."""


class _StopOnSignal:
    """SIGINT/SIGTERM during training ask the loop to stop at the next step boundary (a second one acts at once).

    Installed only in the main thread of a single process: under torchrun the ranks could see the
    signal at different steps, so there an interrupted run resumes from its last finished epoch.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: Optional[int] = None
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "_StopOnSignal":
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self._restore()

    def _restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __exit__(self, *exc: Any) -> None:
        self._restore()


# ----------------------------------------------------------------------------------------------------------------------
# evaluation: logits here, metrics shared with edge_runtime.evaluate (one definition of top-1, first-1000, per class)


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable[Tuple[torch.Tensor, torch.Tensor]], device: torch.device,
            amp: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32, CPU) and labels for every batch of ``loader``."""
    model.eval()
    outs, labels = [], []
    for x, y in loader:
        with _autocast(device, amp):
            out = model(x)
        outs.append(out.float().cpu())
        labels.append(y.cpu())
    return torch.cat(outs), torch.cat(labels)


def summarize(logits: torch.Tensor, labels: torch.Tensor, first: int = 1000,
              class_names: Optional[List[str]] = None) -> Dict[str, Any]:
    """Loss plus :func:`edge_runtime.evaluate.summarize` (top-1, first 1000, per class, confusion)."""
    from edge_runtime.evaluate import summarize as metrics

    if not bool(torch.isfinite(logits).all()):
        raise EdgeRuntimeError("the model's outputs are NaN/inf on %d of %d test images: training diverged; lower --lr "
                               "(or add warm-up) and start again" % (int((~torch.isfinite(logits)).any(1).sum()),
                                                                     len(labels)))
    names = class_names or [str(i) for i in range(logits.shape[1])]
    out = metrics(logits.numpy(), labels.numpy(), names, first=first)
    out["loss"] = float(F.cross_entropy(logits, labels))
    return out


def _command_line() -> str:
    prog = "edge-runtime" if Path(sys.argv[0]).name in ("edge-runtime", "__main__.py") else Path(sys.argv[0]).name
    return " ".join([prog] + [shlex.quote(a) for a in sys.argv[1:]])


def _write_metrics(rows: List[Dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (round(r[k], 6) if isinstance(r[k], float) else r[k])) for k in METRIC_FIELDS})
    write_text_atomic(path, buf.getvalue())


def summary_line(rows: List[Dict[str, Any]], epochs: int) -> str:
    """``top-1 88.48 % at epoch 60/60, best 88.52 % at epoch 55`` from the metrics rows."""
    ev = [r for r in rows if r.get("test_acc") not in (None, "")]
    if not ev:
        return "no evaluated epoch yet (%d/%d trained)" % (len(rows), epochs)
    last, best = ev[-1], max(ev, key=lambda r: float(r["test_acc"]))
    text = "top-1 %.2f %% at epoch %d/%d" % (float(last["test_acc"]), int(last["epoch"]), epochs)
    if best is not last:
        text += ", best %.2f %% at epoch %d" % (float(best["test_acc"]), int(best["epoch"]))
    return text


def describe_result(out: Path) -> str:
    """What a finished (or interrupted) run in ``out`` reached, in words, read from its files."""
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    man = mf.read(out / "manifest.json") if (out / "manifest.json").is_file() else {}
    epochs = int(man.get("training", {}).get("epochs") or len(rows))
    acc = man.get("accuracy", {})
    n = acc.get("n")
    return "%s (PyTorch, %s test images); best.pt is epoch %s -> %s" % (
        summary_line(rows, epochs), n if n is not None else "?", acc.get("epoch", "-"), out)


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


def _warm_up(model: nn.Module, train_loader: "data.TensorLoader", test_loader: "data.TensorLoader",
             criterion: nn.Module, device: torch.device, amp: bool, steps: int = 3) -> None:
    """Run cuDNN's autotuning (and CUDA's lazy initialization) on a throw-away copy of the model.

    On the H200 the first epoch of a MobileNetV2 took 21 s instead of 2 s, most of it choosing kernels
    (benchmarks/models.md). The tuned choices are cached per shape, so the real run starts fast and
    a --time-budget measures training. The copy keeps the model's weights, statistics and the RNG untouched.
    """
    import copy

    rng = torch.get_rng_state()
    shadow = copy.deepcopy(model).train()
    x, y = next(iter(train_loader))
    for _ in range(steps):
        with _autocast(device, amp):
            loss = criterion(shadow(x), y)
        loss.backward()
    shadow.eval()
    with torch.no_grad(), _autocast(device, amp):
        shadow(next(iter(test_loader))[0])
    del shadow
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    torch.set_rng_state(rng)


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


def _check_out(cfg: TrainConfig, resume: bool) -> Path:
    out = Path(cfg.out)
    last = out / "last.pt"
    if resume and not last.is_file():
        raise EdgeRuntimeError("--resume: nothing to resume in %s (no last.pt); start a new run without --resume" % out)
    if not resume and last.is_file():
        raise EdgeRuntimeError("%s already holds a run (last.pt); continue it with --resume, or choose another --out "
                               "(nothing was overwritten)" % out)
    return out


def _setup_teachers(cfg: TrainConfig, ds: data.CifarData, train_split: data.Split, test_split: data.Split,
                    test_loader: data.TensorLoader, train_loader: data.TensorLoader, device: torch.device,
                    main: bool, progress: bool, first_exact: bool) -> Tuple[Teachers, Dict[str, Any]]:
    teachers = Teachers(cfg.teachers or [], ds.class_names, ds.mean, ds.std, device, channels_last=cfg.channels_last)
    info: Dict[str, Any] = {"teachers": teachers.info, "alpha": cfg.distill_alpha, "temperature": cfg.distill_temperature,
                            "targets": cfg.distill_targets}
    if cfg.distill_targets == "cached":
        tc = time.perf_counter()
        meta = {"device": str(device), "torch": str(torch.__version__), "teachers": teachers.info}
        key = target_key(teachers.info, ds.name, "test", test_split.images, ds.mean, ds.std, "image")
        test_logits, test_file, test_hit = cached_logits(
            key, cfg.distill_cache, lambda: predict(teachers, test_loader, device, amp=False)[0], meta)
        ev_t = summarize(test_logits, torch.as_tensor(test_split.labels))
        key = target_key(teachers.info, ds.name, "train", train_split.images, ds.mean, ds.std, "image+mirror")
        plain = data.TensorLoader(train_split, 500, ds.mean, ds.std, device, train=False, channels_last=cfg.channels_last)
        targets, train_file, train_hit = cached_logits(key, cfg.distill_cache,
                                                       lambda: teachers.cache(plain, progress=progress and main), meta)
        train_loader.set_targets(targets)
        info["cache"] = {"train": str(train_file), "test": str(test_file), "reused": bool(train_hit and test_hit)}
        if main:
            print("teacher targets: %d images and their mirrors %s %s (%.0f s)" % (
                len(train_split), "read from" if train_hit else "computed and kept in", train_file,
                time.perf_counter() - tc), file=sys.stderr, flush=True)
    else:
        ev_t = summarize(*predict(teachers, test_loader, device, cfg.amp))
    info["teachers_test_top1"] = ev_t["top1"]
    if main:
        print("distilling from %d teacher(s): test top-1 %.2f %% (first 1000: %s)" % (
            len(teachers.info), ev_t["top1"], "-" if not first_exact or ev_t["top1_first1000"] is None
            else "%.2f %%" % ev_t["top1_first1000"]), file=sys.stderr, flush=True)
    return teachers, info


def _setup(cfg: TrainConfig, resume: bool, progress: bool, command: Optional[str]) -> _Run:
    device = select_device(cfg.device)
    dd = _init_distributed(device)
    if dd.world > 1 and cfg.time_budget:
        # ranks would stop at different steps and leave DDP's all-reduce waiting
        raise EdgeRuntimeError("--time-budget is not supported with several processes (WORLD_SIZE=%d); set --epochs "
                               "instead" % dd.world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    out = _check_out(cfg, resume)
    ds = data.load(cfg.dataset, cfg.data_dir, download_missing=cfg.download)
    if cfg.classes:
        ds = data.select_classes(ds, cfg.classes)
    train_split, test_split = ds.train, ds.test
    if cfg.subset:
        train_split = data.subset(train_split, cfg.subset, cfg.seed)
        test_split = data.subset(test_split, cfg.subset, cfg.seed + 1)
    first_exact = len(test_split) == len(ds.test) and not cfg.classes

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=ds.num_classes, **cfg.model_kwargs)
    entry = get_entry(cfg.model)
    macs = count_macs(model)
    parent_info = load_parent(model, Path(cfg.init_from), cfg.model, entry.head, ds.class_names) if cfg.init_from else None
    apply_freeze(model, cfg.freeze, entry)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format  # 1.1-2.3x on CPU (benchmarks/training.md)
    model = model.to(device, memory_format=fmt)

    bs = max(1, cfg.batch_size // dd.world)
    train_loader = data.TensorLoader(train_split, bs, ds.mean, ds.std, device, train=True,
                                     augment=data.Augment(crop_padding=cfg.crop_padding, flip=cfg.flip, cutout=cfg.cutout),
                                     seed=cfg.seed, drop_last=True, rank=dd.rank, world=dd.world,
                                     channels_last=cfg.channels_last)
    if len(train_loader) == 0:
        raise EdgeRuntimeError("batch size %d is larger than the %d training images per process; lower --batch-size"
                               % (bs, len(train_split) // dd.world))
    test_loader = data.TensorLoader(test_split, 1000, ds.mean, ds.std, device, train=False, channels_last=cfg.channels_last)
    teachers, distill_info = None, None
    if cfg.teachers:
        teachers, distill_info = _setup_teachers(cfg, ds, train_split, test_split, test_loader, train_loader, device,
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
                command=command or _command_line(), progress=progress)


def _restore(run: _Run) -> _State:
    last = run.out / "last.pt"
    ck = checkpoint.load(last)
    saved_epochs = int(ck.get("config", {}).get("epochs", run.cfg.epochs))
    if saved_epochs != run.cfg.epochs:
        done = int(ck["epoch"]) >= saved_epochs
        raise EdgeRuntimeError(
            "--resume continues %s exactly to its own length (%d epochs%s); --epochs %d would change its schedule. To "
            "train on from its weights with a new %d-epoch schedule: edge-runtime train --config %s --init-from %s "
            "--epochs %d --out %s-%dep" % (run.out, saved_epochs, ", finished" if done else ", %d done" % int(ck["epoch"]),
                                           run.cfg.epochs, run.cfg.epochs, run.out / "config.yaml", last, run.cfg.epochs,
                                           run.out, run.cfg.epochs))
    try:
        run.model.load_state_dict(ck["model"])
        run.optimizer.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise EdgeRuntimeError("%s does not fit this run's model %s with %d classes (%s); resume with the config it was "
                               "saved with" % (last, run.cfg.model, run.ds.num_classes, str(exc).splitlines()[0][:160]))
    st = _State(step=int(ck["scheduler"]["step"]), elapsed=float(ck["scheduler"]["elapsed"]), epoch=int(ck["epoch"]),
                best_acc=float(ck.get("best_acc", -1.0)), rows=list(ck.get("history", [])), partial=ck.get("partial"))
    _set_rng_state(ck.get("rng", {}), run.device)
    if run.dd.main:
        where = ("epoch %d, step %d of %d" % (st.epoch + 1, st.partial["batch"], len(run.train_loader))
                 if st.partial else "the end of epoch %d" % st.epoch)
        print("resuming %s from %s" % (run.out, where) if st.epoch < run.cfg.epochs or st.partial else
              "%s finished its %d epochs earlier: nothing to resume" % (run.out, run.cfg.epochs), file=sys.stderr,
              flush=True)
    return st


def _payload(run: _State, r: _Run, epoch_done: int, manifest: Dict[str, Any]) -> Dict[str, Any]:
    return {"model": r.model.state_dict(), "optimizer": r.optimizer.state_dict(),
            "scheduler": {"step": run.step, "elapsed": run.elapsed}, "epoch": epoch_done, "rng": _rng_state(r.device),
            "config": r.cfg.to_dict(), "manifest": manifest, "history": run.rows, "best_acc": run.best_acc}


@dataclass
class _Tally:
    loss_sum: torch.Tensor
    correct: torch.Tensor
    seen: int = 0
    seconds: float = 0.0        # of this epoch before a resume
    postfix: Dict[str, str] = field(default_factory=dict)   # what the progress bar shows


def _train_epoch(r: _Run, st: _State, epoch: int, t_start: float, stopper: _StopOnSignal,
                 on_step: Optional[Callable[[int, int, int], None]]) -> Tuple[_Tally, float, bool, Any]:
    """One epoch of steps (from its saved position when resumed); returns (tally, t0, budget_spent, progress bar)."""
    cfg, model, net, opt, device = r.cfg, r.model, r.net, r.optimizer, r.device
    if cfg.unfreeze_at is not None and epoch + 1 >= cfg.unfreeze_at:
        unfreeze_all(model)
    torch.manual_seed(cfg.seed * 1000003 + epoch)  # dropout etc.: a function of (seed, epoch) only
    net.train()
    if cfg.freeze != "none" and not (cfg.unfreeze_at is not None and epoch + 1 >= cfg.unfreeze_at):
        apply_freeze(model, cfg.freeze, r.entry, set_mode_only=True)
    mix_rng = np.random.default_rng(cfg.seed * 7919 + epoch)
    tally = _Tally(torch.zeros((), device=device), torch.zeros((), device=device))
    part, st.partial = st.partial, None
    start = 0
    if part is not None and int(part["epoch"]) == epoch:  # mid-epoch resume: the same batches, RNG and tallies
        start = int(part["batch"])
        tally = _Tally(part["loss_sum"].to(device), part["correct"].to(device), int(part["seen"]), float(part["seconds"]))
        torch.set_rng_state(part["rng"]["torch"].cpu())
        if device.type == "cuda" and "cuda" in part["rng"]:
            torch.cuda.set_rng_state(part["rng"]["cuda"].cpu(), device)
        for _ in range(start if cfg.mixup > 0 else 0):
            mix_rng.beta(cfg.mixup, cfg.mixup)
    r.train_loader.set_epoch(epoch, start_batch=start)
    n_batches = len(r.train_loader)
    t0 = time.perf_counter() - tally.seconds
    bar = None
    it: Iterable = r.train_loader
    if r.progress and r.dd.main:
        from tqdm import tqdm

        bar = tqdm(r.train_loader, total=n_batches, initial=start, desc="epoch %d/%d" % (epoch + 1, cfg.epochs),
                   leave=True, dynamic_ncols=True, file=sys.stderr)
        it = bar
    total_steps = cfg.epochs * n_batches
    warm = cfg.warmup_epochs / cfg.epochs if cfg.epochs else 0.0
    for bi, batch in enumerate(it, start):
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
                              "rng": _rng_state(r.device)}
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
    if bar is not None:
        if row["test_acc"] is not None:
            bar.set_postfix(dict(tally.postfix, test="%.2f%%" % row["test_acc"]))
        bar.close()
    st.rows.append(row)
    st.elapsed = time.perf_counter() - t_start
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
        checkpoint.save(r.out / "best.pt", payload)
        best = dict(man)
        best["sha256"] = sha256_file(r.out / "best.pt")
        write_json_atomic(r.out / "manifest.json", best)
    checkpoint.save(r.out / "last.pt", payload)
    _write_metrics(st.rows, r.out / "metrics.csv")
    plot_curves(st.rows, r.out / "curves.png", "%s on %s: %s" % (cfg.model, cfg.dataset, summary_line(st.rows, cfg.epochs)),
                epochs=cfg.epochs, schedule=_schedule_curve(cfg), steps_per_epoch=len(r.train_loader))


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
    r = _setup(cfg, resume, progress, command)
    st = _restore(r) if resume else _State()
    if r.dd.main:
        r.out.mkdir(parents=True, exist_ok=True)
        save_yaml(r.out / "config.yaml", cfg)
    if r.device.type == "cuda" and st.epoch < cfg.epochs:
        _warm_up(r.model, r.train_loader, r.test_loader, r.criterion, r.device, cfg.amp)
    t_start = time.perf_counter() - st.elapsed  # after the warm-up: --time-budget counts training only
    with _StopOnSignal(enabled=r.dd.world == 1) as stopper:
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
    if r.dd.world > 1:
        dist.barrier()
    if r.dd.main and (r.out / "manifest.json").is_file():
        return mf.read(r.out / "manifest.json")
    return {}
