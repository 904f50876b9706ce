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
import sys
import time
from dataclasses import dataclass
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
from .distill import Teachers, kd_loss
from .models import create_model, get_entry
from .models.profile import count_macs, count_params
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


# ----------------------------------------------------------------------------------------------------------------------
# evaluation


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


def summarize(logits: torch.Tensor, labels: torch.Tensor, first: int = 1000) -> Dict[str, Any]:
    pred = logits.argmax(1)
    correct = (pred == labels)
    out: Dict[str, Any] = {"loss": float(F.cross_entropy(logits, labels)), "top1": float(correct.float().mean() * 100),
                           "n": int(labels.numel())}
    out["top1_first1000"] = float(correct[:first].float().mean() * 100) if labels.numel() >= first else None
    return out


# ----------------------------------------------------------------------------------------------------------------------
# the run


def _command_line() -> str:
    prog = "edge-runtime" if Path(sys.argv[0]).name in ("edge-runtime", "__main__.py") else Path(sys.argv[0]).name
    return " ".join([prog] + [shlex.quote(a) for a in sys.argv[1:]])


def _plot_curves(rows: List[Dict[str, Any]], path: Path, title: str) -> None:
    from .plots import new_figure, save_png

    ep = [r["epoch"] for r in rows]
    fig = new_figure((10, 4))
    a1, a2 = fig.subplots(1, 2)
    a1.plot(ep, [r["train_loss"] for r in rows], label="train")
    a1.plot(ep, [r["test_loss"] for r in rows], label="test")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend(), a1.grid(alpha=0.3)
    a2.plot(ep, [r["train_acc"] for r in rows], label="train")
    a2.plot(ep, [r["test_acc"] for r in rows], label="test")
    if any(r.get("test_acc_first1000") not in (None, "") for r in rows):
        a2.plot(ep, [r["test_acc_first1000"] for r in rows], label="test (first 1000, exact)", ls="--")
    a2.set_xlabel("epoch"), a2.set_ylabel("top-1 accuracy (%)"), a2.legend(), a2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def _write_metrics(rows: List[Dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (round(r[k], 6) if isinstance(r[k], float) else r[k])) for k in METRIC_FIELDS})
    write_text_atomic(path, buf.getvalue())


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


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True,
        on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None, command: Optional[str] = None) -> Dict[str, Any]:
    """Train per ``cfg``; returns the best checkpoint's manifest (``{}`` on ranks other than 0).

    ``command`` is recorded in the manifest as the command that produced the accuracy
    (default: this process's command line). ``on_epoch`` sees each epoch's metrics row.
    """
    cfg.validate()
    device = select_device(cfg.device)
    dd = _init_distributed(device)
    if dd.world > 1 and cfg.time_budget:
        # ranks would stop at different steps and leave DDP's all-reduce waiting
        raise EdgeRuntimeError("--time-budget is not supported with several processes (WORLD_SIZE=%d); set --epochs "
                               "instead" % dd.world)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume and not last_path.is_file():
        raise EdgeRuntimeError("--resume: nothing to resume in %s (no last.pt); start a new run without --resume" % out)
    if not resume and last_path.is_file():
        raise EdgeRuntimeError("%s already holds a run (last.pt); continue it with --resume, or choose another --out "
                               "(nothing was overwritten)" % out)

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
    parent_info = None
    if cfg.init_from:
        parent_info = load_parent(model, Path(cfg.init_from), cfg.model, entry.head, ds.class_names)
    apply_freeze(model, cfg.freeze, entry)
    use_cl = cfg.channels_last  # faster on CPU too: 1.1-2.3x per model here (benchmarks/training.md)
    model = model.to(device, memory_format=torch.channels_last if use_cl else torch.contiguous_format)

    aug = data.Augment(crop_padding=cfg.crop_padding, flip=cfg.flip, cutout=cfg.cutout)
    bs = max(1, cfg.batch_size // dd.world)
    train_loader = data.TensorLoader(train_split, bs, ds.mean, ds.std, device, train=True, augment=aug,
                                                              seed=cfg.seed, drop_last=True, rank=dd.rank, world=dd.world,
                                                              channels_last=use_cl)
    if len(train_loader) == 0:
        raise EdgeRuntimeError("batch size %d is larger than the %d training images per process; lower --batch-size"
                               % (bs, len(train_split) // dd.world))
    test_loader = data.TensorLoader(test_split, 1000, ds.mean, ds.std, device, train=False, channels_last=use_cl)
    teachers, distill_info = None, None
    if cfg.teachers:
        teachers = Teachers(cfg.teachers, ds.class_names, ds.mean, ds.std, device, channels_last=use_cl)
        distill_info = {"teachers": teachers.info, "alpha": cfg.distill_alpha, "temperature": cfg.distill_temperature,
                        "targets": cfg.distill_targets}
        ev_t = summarize(*predict(teachers, test_loader, device, cfg.amp))
        distill_info["teachers_test_top1"] = ev_t["top1"]
        if dd.main:
            print("distilling from %d teacher(s): test top-1 %.2f %% (first 1000: %s)" % (
                len(cfg.teachers), ev_t["top1"], "-" if not first_exact or ev_t["top1_first1000"] is None
                else "%.2f %%" % ev_t["top1_first1000"]), file=sys.stderr, flush=True)
        if cfg.distill_targets == "cached":
            plain = data.TensorLoader(train_split, 500, ds.mean, ds.std, device, train=False, channels_last=use_cl)
            tc = time.perf_counter()
            train_loader.set_targets(teachers.cache(plain, progress=progress and dd.main))
            if dd.main:
                print("teacher targets: %d images and their mirrors in %.0f s" % (len(train_split), time.perf_counter() - tc),
                      file=sys.stderr, flush=True)

    optimizer = build_optimizer(cfg, model)
    step, elapsed, start_epoch, best_acc = 0, 0.0, 0, -1.0
    rows: List[Dict[str, Any]] = []
    if resume:
        ck = checkpoint.load(last_path)
        try:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise EdgeRuntimeError("%s does not fit this run's model %s with %d classes (%s); resume with the config "
                                   "it was saved with" % (last_path, cfg.model, ds.num_classes, str(exc).splitlines()[0][:160]))
        step, elapsed = int(ck["scheduler"]["step"]), float(ck["scheduler"]["elapsed"])
        start_epoch, best_acc, rows = int(ck["epoch"]), float(ck.get("best_acc", -1.0)), list(ck.get("history", []))
        _set_rng_state(ck.get("rng", {}), device)
    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    total_steps = cfg.epochs * len(train_loader)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(out / "config.yaml", cfg)
    command = command or _command_line()
    summary: Dict[str, Any] = {}
    if device.type == "cuda" and start_epoch < cfg.epochs:
        _warm_up(model, train_loader, test_loader, criterion, device, cfg.amp)
    t_start = time.perf_counter() - elapsed  # after the warm-up: --time-budget counts training only
    stop = False
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.unfreeze_at is not None and epoch + 1 >= cfg.unfreeze_at:
            unfreeze_all(model)
        torch.manual_seed(cfg.seed * 1000003 + epoch)  # dropout etc.: a function of (seed, epoch) only
        train_loader.set_epoch(epoch)
        net.train()
        if cfg.freeze != "none" and not (cfg.unfreeze_at is not None and epoch + 1 >= cfg.unfreeze_at):
            apply_freeze(model, cfg.freeze, entry, set_mode_only=True)
        mix_rng = np.random.default_rng(cfg.seed * 7919 + epoch)
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        seen = 0
        bar = None
        it: Iterable = train_loader
        if progress and dd.main:
            from tqdm import tqdm

            bar = tqdm(train_loader, total=len(train_loader), desc="epoch %d/%d" % (epoch + 1, cfg.epochs), leave=True,
                       dynamic_ncols=True, file=sys.stderr)
            it = bar
        for bi, batch in enumerate(it):
            x, y = batch[0], batch[1]
            if cfg.time_budget and time.perf_counter() - t_start >= cfg.time_budget:
                stop = True
                break
            if cfg.time_budget:
                p = (time.perf_counter() - t_start) / cfg.time_budget
            else:
                p = step / max(1, total_steps)
            f = lr_factor(cfg.schedule, p, cfg.warmup_epochs / cfg.epochs if cfg.epochs else 0.0)
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * f
            with _autocast(device, cfg.amp):
                lam = 1.0
                if cfg.mixup > 0:
                    # pair each image with the batch reversed (batches are already shuffled): no host sync
                    lam = float(mix_rng.beta(cfg.mixup, cfg.mixup))
                    x = lam * x + (1 - lam) * x.flip(0)
                    out_ = net(x)
                    loss = lam * criterion(out_, y) + (1 - lam) * criterion(out_, y.flip(0))
                else:
                    out_ = net(x)
                    loss = criterion(out_, y)
                if teachers is not None:
                    if len(batch) > 2:  # cached: the targets of the whole image (mixed as the images were)
                        t = batch[2] if lam == 1.0 else lam * batch[2] + (1 - lam) * batch[2].flip(0)
                    else:
                        t = teachers.logits(x)
                    loss = (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * kd_loss(out_, t, cfg.distill_temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.detach().float() * x.shape[0]
            correct += (out_.detach().argmax(1) == y).sum()
            seen += x.shape[0]
            if bar is not None and (bi % 10 == 0 or bi == len(train_loader) - 1):
                dt = time.perf_counter() - t0
                bar.set_postfix(loss="%.3f" % (loss_sum.item() / seen), acc="%.1f" % (100 * correct.item() / seen),
                                img_s="%.0f" % (seen * dd.world / max(dt, 1e-9)), lr="%.3g" % optimizer.param_groups[0]["lr"])
        if bar is not None:
            bar.close()
        if stop and seen == 0:  # the budget was already spent (a resumed, finished run): nothing to record
            break
        if dd.world > 1:
            tot = torch.stack([loss_sum, correct, torch.tensor(float(seen), device=device)])
            dist.all_reduce(tot)
            loss_sum, correct, seen = tot[0], tot[1], int(tot[2].item())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        secs = time.perf_counter() - t0
        last_epoch = epoch + 1 == cfg.epochs or stop
        row: Dict[str, Any] = {"epoch": epoch + 1, "train_loss": float(loss_sum) / max(seen, 1),
                               "train_acc": 100.0 * float(correct) / max(seen, 1), "lr": optimizer.param_groups[0]["lr"],
                               "seconds": secs, "images_per_s": seen / max(secs, 1e-9),
                               "test_loss": None, "test_acc": None, "test_acc_first1000": None}
        if last_epoch or (epoch + 1) % max(1, cfg.eval_every) == 0:
            ev = summarize(*predict(model, test_loader, device, cfg.amp))
            row.update(test_loss=ev["loss"], test_acc=ev["top1"],
                       test_acc_first1000=ev["top1_first1000"] if first_exact else None)
        rows.append(row)
        elapsed = time.perf_counter() - t_start
        if dd.main:
            if not progress:
                print("epoch %d/%d  train loss %.4f acc %.2f  test loss %s acc %s  %.0f img/s  %.1fs" % (
                    epoch + 1, cfg.epochs, row["train_loss"], row["train_acc"],
                    "-" if row["test_loss"] is None else "%.4f" % row["test_loss"],
                    "-" if row["test_acc"] is None else "%.2f" % row["test_acc"], row["images_per_s"], secs), flush=True)
            improved = row["test_acc"] is not None and row["test_acc"] > best_acc
            if improved:
                best_acc = row["test_acc"]
            acc = {"top1": row["test_acc"], "top1_first1000": row["test_acc_first1000"], "split": "test",
                   "n": len(test_split), "epoch": epoch + 1, "command": command,
                   "selection": "the checkpoint with the best test accuracy among the evaluated epochs (no separate "
                                "validation split): slightly optimistic; the last epoch is in metrics.csv",
                   "note": "first1000 = official test images 0-999 (exact pixels in the shared copy)" if first_exact else
                   "evaluated on a subset or class selection"}
            extra = {"macs": macs, "training": {
                "epochs": cfg.epochs, "epochs_run": epoch + 1, "optimizer": cfg.optimizer, "lr": cfg.lr,
                "schedule": cfg.schedule, "batch_size": cfg.batch_size, "seconds": round(elapsed, 2),
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "world_size": dd.world, "torch": str(torch.__version__), "classes": cfg.classes, "subset": cfg.subset},
                "parent": parent_info}
            if distill_info is not None:
                extra["distillation"] = distill_info
            man = _manifest(cfg, ds, model, acc, extra)
            payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "scheduler": {"step": step, "elapsed": elapsed}, "epoch": epoch + 1, "rng": _rng_state(device),
                       "config": cfg.to_dict(), "manifest": man, "history": rows, "best_acc": best_acc}
            if improved:  # best first: last.pt records best_acc, so it must never run ahead of best.pt
                checkpoint.save(best_path, payload)
                best = dict(man)
                best["sha256"] = sha256_file(best_path)
                write_json_atomic(out / "manifest.json", best)
                summary = best
            checkpoint.save(last_path, payload)
            _write_metrics(rows, out / "metrics.csv")
            _plot_curves(rows, out / "curves.png", "%s on %s" % (cfg.model, cfg.dataset))
        if on_epoch:
            on_epoch(row)
        if stop:
            break
    if dd.world > 1:
        dist.barrier()
    if dd.main and (out / "manifest.json").is_file():
        summary = mf.read(out / "manifest.json")
    return summary
