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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from edge_runtime.errors import EdgeRuntimeError

from . import checkpoint

__all__ = ["fold", "evaluate", "from_snapshots"]


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
    Returns (model, what the manifest records under ``training.average``)."""
    from torch.optim.swa_utils import update_bn

    from .evaluation import predict, summarize

    model = copy.deepcopy(template)
    model.load_state_dict(average["weights"])
    model.to(device)
    t0 = time.perf_counter()
    train_loader.set_epoch(cfg.epochs)   # a pass past the schedule's epochs: not a batch order training used
    update_bn(train_loader, model, device=device)
    ev = summarize(*predict(model, test_loader, device, cfg.amp))
    eps = list(average["epochs"])
    info = {"epochs": eps, "n": len(eps), "from": cfg.average_from, "top1": ev["top1"],
            "top1_first1000": ev["top1_first1000"] if first_exact else None, "loss": ev["loss"],
            "bn": "statistics recomputed over one pass of the %d training images" % train_loader.n,
            "seconds": round(time.perf_counter() - t0, 2)}
    return model, info


def from_snapshots(paths: Sequence[Path], out: Path, data_dir: Optional[str] = None,
                   device: str = "cpu") -> Dict[str, Any]:
    """Average the epoch-end weights in ``paths`` (copies of one run's ``last.pt``, each taken at the end of an
    epoch), evaluate the average as the trainer would have with ``--average-from``, and write it to ``out`` (a
    checkpoint whose manifest is the last snapshot's, with the average's accuracy and ``training.average``).
    Returns the manifest."""
    from edge_runtime.fsio import sha256_file

    from .config import TrainConfig, overlay
    from .models import create_model
    from .trainer import make_loaders

    if len(paths) < 2:
        raise EdgeRuntimeError("averaging needs at least two snapshots, got %d" % len(paths))
    cks = sorted((checkpoint.load(Path(p)) for p in paths), key=lambda c: int(c["epoch"]))
    cfgs = [{k: v for k, v in c["config"].items() if k not in ("data_dir", "out")} for c in cks]
    if any(c != cfgs[0] for c in cfgs):
        raise EdgeRuntimeError("the snapshots come from runs with different configs; average epochs of one run only")
    epochs: List[int] = [int(c["epoch"]) for c in cks]
    if len(set(epochs)) != len(epochs) or any(c.get("partial") for c in cks):
        raise EdgeRuntimeError("snapshots must be distinct epoch ends of one run (got epochs %s%s)" % (
            epochs, ", one saved mid-epoch" if any(c.get("partial") for c in cks) else ""))
    values = dict(cks[-1]["config"])
    if data_dir is not None:
        values["data_dir"] = data_dir
    values["device"] = device
    known = {f for f in TrainConfig.__dataclass_fields__}
    cfg = overlay(TrainConfig(), {k: v for k, v in values.items() if k in known}, "snapshot config")
    dev = torch.device(device)
    ds, _, _, first_exact, train_loader, test_loader = make_loaders(cfg, dev)
    average: Optional[Dict[str, Any]] = None
    for c in cks:
        average = fold(average, c["model"], int(c["epoch"]))
    assert average is not None
    template = create_model(cfg.model, num_classes=ds.num_classes, **cfg.model_kwargs)
    if cfg.channels_last:
        template = template.to(memory_format=torch.channels_last)
    model, info = evaluate(template, average, cfg, train_loader, test_loader, dev, first_exact)
    info["made_from"] = "%d snapshots of last.pt taken at epoch ends, averaged after the run (train/average.py)" % len(cks)
    last = cks[-1]
    man = dict(last["manifest"])
    span = "epochs %d-%d" % (epochs[0], epochs[-1])
    man["accuracy"] = dict(man.get("accuracy") or {}, top1=info["top1"], top1_first1000=info["top1_first1000"],
                           epoch=epochs[-1], selection="the uniform average of the weights at the end of %s (%d "
                           "epochs; SWA), BatchNorm statistics recomputed" % (span, len(epochs)))
    man["training"] = dict(man.get("training") or {}, average=info, epochs_run=epochs[-1])
    payload = {k: v for k, v in last.items() if k not in ("optimizer", "partial", "average", "format")}
    payload.update(model={k: v.cpu() for k, v in model.state_dict().items()}, manifest=man)
    checkpoint.save(Path(out), payload)
    return dict(man, sha256=sha256_file(Path(out)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m train.average SNAPSHOT.pt... --out AVG.pt``: :func:`from_snapshots` from the shell."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m train.average", description=(
        "Average one run's epoch-end weights (copies of its last.pt taken at epoch ends), recompute BatchNorm "
        "statistics on the training images and evaluate on the test split, as --average-from does during a run."))
    ap.add_argument("snapshots", nargs="+", type=Path, help="copies of last.pt, each taken at the end of an epoch")
    ap.add_argument("--out", type=Path, required=True, help="where to write the averaged checkpoint")
    ap.add_argument("--data-dir", help="the dataset folder (default: the one in the run's config)")
    args = ap.parse_args(argv)
    if args.out.exists():
        print("python -m train.average: %s exists; choose another --out (nothing was overwritten)" % args.out,
              file=sys.stderr)
        return 2
    try:
        man = from_snapshots(args.snapshots, args.out, data_dir=args.data_dir)
    except EdgeRuntimeError as exc:
        print("python -m train.average: %s" % exc, file=sys.stderr)
        return 2
    avg = man["training"]["average"]
    first = avg["top1_first1000"]
    print("weight average of epochs %d-%d (%d): test %.2f %%%s -> %s" % (
        avg["epochs"][0], avg["epochs"][-1], avg["n"], avg["top1"],
        "" if first is None else " (first 1000: %.2f %%)" % first, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
