"""Weight averaging (SWA, Izmailov et al. 2018): the uniform average of a run's epoch-end weights, BatchNorm
statistics recomputed on the averaged weights, evaluated once.

The trainer does it during a run (``--average-from P``: a running mean kept in ``last.pt``); :func:`from_snapshots`
does the same after a run from copies of its ``last.pt`` taken at epoch ends, with the same two functions, so the
average of epochs a..b is the same whichever way it was made.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from edge_runtime.errors import EdgeRuntimeError

if TYPE_CHECKING:  # imported where used: `python -m train.average` installs its signal handlers before torch loads
    import torch
    import torch.nn as nn

__all__ = ["fold", "evaluate", "averaged_checkpoint", "from_snapshots", "describe_epochs"]

#: config keys a resumed run may change (edge_runtime/cli/train.py): snapshots that differ only in these are one run
_MAY_DIFFER = ("out", "epochs", "device", "data_dir", "distill_cache")


def describe_epochs(epochs: Sequence[int]) -> str:
    """'epochs 5-9' for a consecutive run, else 'epochs 2, 4, 7'."""
    eps = list(epochs)
    if len(eps) == 1:
        return "epoch %d" % eps[0]
    if eps == list(range(eps[0], eps[-1] + 1)):
        return "epochs %d-%d" % (eps[0], eps[-1])
    return "epochs " + ", ".join(str(e) for e in eps)


def fold(average: Optional[Dict[str, Any]], weights: Mapping[str, torch.Tensor], epoch: int) -> Dict[str, Any]:
    """``average`` (``{"weights": running mean, "epochs": [...]}`` or None) with one more epoch's weights folded in.

    Floating-point tensors: mean_{n+1} = mean_n + (w - mean_n) / (n + 1), in place; integer tensors (BatchNorm's
    ``num_batches_tracked``): the latest value.
    """
    w = {k: v.detach().to("cpu", copy=True) for k, v in weights.items()}
    if average is None:
        return {"weights": w, "epochs": [int(epoch)]}
    n = len(average["epochs"])
    if average["weights"].keys() != w.keys():
        raise EdgeRuntimeError("weights of epoch %d do not match the average's tensors; average epochs of one run only"
                               % epoch)
    for k, v in average["weights"].items():
        if v.is_floating_point():
            v.add_(w[k].to(v.dtype) - v, alpha=1.0 / (n + 1))
        else:
            v.copy_(w[k])
    average["epochs"].append(int(epoch))
    return average


def evaluate(template: nn.Module, average: Mapping[str, Any], cfg: Any, train_loader: Any, test_loader: Any,
             device: torch.device, first_exact: bool) -> Tuple[nn.Module, Dict[str, Any]]:
    """A copy of ``template`` with the averaged weights, its BatchNorm statistics recomputed over one pass of the
    training images (augmented as in training; ``torch.optim.swa_utils.update_bn``), evaluated on the test split.
    BatchNorm layers that ``cfg.freeze`` still held frozen at the last averaged epoch kept their parent's statistics
    in training: they keep them here too. Returns (model, what the manifest records under ``training.average``)."""
    import torch.nn as nn
    from torch.optim.swa_utils import update_bn

    from .evaluation import predict, summarize
    from .models import get_entry
    from .transfer import apply_freeze, freeze_in_effect

    model = copy.deepcopy(template)
    model.load_state_dict(average["weights"])
    model.to(device)
    model.train()
    kept: Dict[str, torch.Tensor] = {}
    if freeze_in_effect(cfg, average["epochs"][-1]):
        apply_freeze(model, cfg.freeze, get_entry(cfg.model), set_mode_only=True)
        for name, mod in model.named_modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) and not mod.training:
                kept.update({name + "." + b: t.clone() for b, t in mod.named_buffers(recurse=False)})
    t0 = time.perf_counter()
    train_loader.set_epoch(cfg.epochs)   # a pass past the schedule's epochs: not a batch order training used
    update_bn(train_loader, model, device=device)
    if kept:
        own = model.state_dict()
        for k, v in kept.items():
            own[k].copy_(v)
    ev = summarize(*predict(model, test_loader, device, cfg.amp))
    eps = list(average["epochs"])
    seen = len(train_loader) * train_loader.batch_size
    info = {"epochs": eps, "n": len(eps), "from": cfg.average_from, "top1": ev["top1"],
            "top1_first1000": ev["top1_first1000"] if first_exact else None, "loss": ev["loss"],
            "bn": "statistics recomputed over one pass of %d training images%s" % (
                seen, "; %d frozen BatchNorm tensors kept" % len(kept) if kept else ""),
            "seconds": round(time.perf_counter() - t0, 2)}
    return model, info


def averaged_checkpoint(last: Mapping[str, Any], model: nn.Module, info: Dict[str, Any], selection: str,
                        command: Optional[str] = None) -> Dict[str, Any]:
    """The checkpoint payload of an average: ``last`` (the run's last.pt) with the averaged weights and a manifest
    whose accuracy is the average's (``selection`` appended to the standard description) and whose
    ``training.average`` is ``info``; no optimizer state (not a point of the optimizer's trajectory: nothing resumes
    from it). ``command``: the command that made the average, when not the run's (the run's goes to
    ``info["run_command"]``)."""
    eps = info["epochs"]
    man = dict(last["manifest"])
    acc = dict(man.get("accuracy") or {}, top1=info["top1"], top1_first1000=info["top1_first1000"], epoch=eps[-1],
               selection="the uniform average of the weights at the end of %s (%d epochs; SWA), BatchNorm statistics "
                         "recomputed%s" % (describe_epochs(eps), len(eps), selection))
    if command:
        info["run_command"] = acc.get("command")
        acc["command"] = command
    man.update(accuracy=acc, training=dict(man.get("training") or {}, average=info, epochs_run=eps[-1]))
    payload = {k: v for k, v in last.items() if k not in ("optimizer", "partial", "average", "format")}
    payload.update(model={k: v.detach().cpu() for k, v in model.state_dict().items()}, manifest=man)
    return payload


def from_snapshots(paths: Sequence[Path], out: Path, data_dir: Optional[str] = None, device: str = "cpu",
                   command: Optional[str] = None) -> Dict[str, Any]:
    """Average the epoch-end weights in ``paths`` (copies of one run's ``last.pt``, each taken at the end of an
    epoch), evaluate the average as the trainer would have with ``--average-from``, and write it to ``out`` (a
    checkpoint whose manifest is the last snapshot's, with the average's accuracy and ``training.average``).
    The same as the in-run average for one process on the same device. Returns the manifest."""
    import torch

    from edge_runtime.fsio import sha256_file

    from . import checkpoint
    from .config import TrainConfig, overlay
    from .models import create_model
    from .trainer import make_loaders

    if len(paths) < 2:
        raise EdgeRuntimeError("averaging needs at least two snapshots (copies of last.pt at epoch ends), got %d; "
                               "name two or more" % len(paths))
    if not Path(out).parent.is_dir():
        raise EdgeRuntimeError("%s: its folder does not exist; create it or choose another --out" % out)
    heads = []   # (epoch, path, config) of each snapshot, read once; weights are folded one file at a time below
    for p in paths:
        ck = checkpoint.load(Path(p))
        if "epoch" not in ck or "config" not in ck or ck.get("partial"):
            raise EdgeRuntimeError("%s is not a copy of last.pt taken at an epoch end (%s); use snapshots of one run's "
                                   "last.pt" % (p, "saved mid-epoch" if ck.get("partial") else "no epoch or config"))
        heads.append((int(ck["epoch"]), Path(p), ck["config"]))
        del ck
    heads.sort(key=lambda h: h[0])
    ref = heads[0]
    for e, p, c in heads[1:]:
        diff = sorted(k for k in set(c) | set(ref[2]) if k not in _MAY_DIFFER and c.get(k) != ref[2].get(k))
        if diff:
            raise EdgeRuntimeError("%s and %s are from different runs (config %s differs); average epochs of one run "
                                   "only" % (ref[1], p, ", ".join(diff[:4])))
    epochs: List[int] = [h[0] for h in heads]
    if len(set(epochs)) != len(epochs):
        raise EdgeRuntimeError("snapshots must be distinct epoch ends of one run, got epochs %s; drop the duplicates"
                               % epochs)
    values = dict(heads[-1][2], device=device)
    if data_dir is not None:
        values["data_dir"] = data_dir
    known = set(TrainConfig.__dataclass_fields__)
    cfg = overlay(TrainConfig(), {k: v for k, v in values.items() if k in known}, "snapshot config")
    dev = torch.device(device)
    ds, _, _, first_exact, train_loader, test_loader = make_loaders(cfg, dev)
    average: Optional[Dict[str, Any]] = None
    last: Dict[str, Any] = {}
    for e, p, _ in heads:
        last = checkpoint.load(p)
        average = fold(average, last["model"], e)
    assert average is not None
    template = create_model(cfg.model, num_classes=ds.num_classes, **cfg.model_kwargs)
    if cfg.channels_last:
        template = template.to(memory_format=torch.channels_last)
    model, info = evaluate(template, average, cfg, train_loader, test_loader, dev, first_exact)
    info["made_from"] = "%d snapshots of last.pt taken at epoch ends, averaged after the run (train/average.py)" % len(heads)
    payload = averaged_checkpoint(last, model, info, "", command=command)
    checkpoint.save(Path(out), payload)
    return dict(payload["manifest"], sha256=sha256_file(Path(out)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m train.average SNAPSHOT.pt... --out AVG.pt``: :func:`from_snapshots` from the shell. Bad input:
    one line, exit 2; SIGINT/SIGTERM at any moment: one line, 128 + the signal; nothing is written either way."""
    import argparse
    import sys

    from edge_runtime.cli import signals

    signals.install()
    try:
        ap = argparse.ArgumentParser(prog="python -m train.average", description=(
            "Average one run's epoch-end weights (copies of its last.pt taken at epoch ends), recompute BatchNorm "
            "statistics on the training images and evaluate on the test split, as --average-from does during a run."))
        ap.add_argument("snapshots", nargs="+", type=Path, help="copies of last.pt, each taken at the end of an epoch")
        ap.add_argument("--out", type=Path, required=True, help="where to write the averaged checkpoint")
        ap.add_argument("--data-dir", help="the dataset folder (default: the one in the run's config)")
        ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: the device the BatchNorm pass and the "
                                                       "test run on")
        args = ap.parse_args(argv)
        if args.out.exists():
            raise EdgeRuntimeError("%s exists; choose another --out (nothing was overwritten)" % args.out)
        from edge_runtime.cli._common import command_line

        man = from_snapshots(args.snapshots, args.out, data_dir=args.data_dir, device=args.device,
                             command=command_line(argv, prog="python -m train.average"))
    except EdgeRuntimeError as exc:
        print("python -m train.average: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:   # the output is written atomically at the end: nothing half-written is left
        print("python -m train.average: interrupted; nothing was written", file=sys.stderr)
        return signals.exit_code(None, exc.signum) if isinstance(exc, signals.Interrupted) else 130
    finally:
        signals.restore()
    avg = man["training"]["average"]
    first = avg["top1_first1000"]
    print("weight average of %s (%d): test %.2f %%%s -> %s" % (
        describe_epochs(avg["epochs"]), avg["n"], avg["top1"],
        "" if first is None else " (first 1000: %.2f %%)" % first, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
