"""Evaluation during training and what a run reports: logits, metrics, metrics.csv, the summary line.

The metrics themselves (top-1, first 1000, per class, confusion) are :func:`edge_runtime.evaluate.summarize`,
the same code that measures an exported artifact; here only the loss is added.
"""
from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import write_text_atomic

METRIC_FIELDS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_acc_first1000", "lr", "seconds",
                 "images_per_s"]


def autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable[Tuple[torch.Tensor, torch.Tensor]], device: torch.device,
            amp: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Logits (float32, CPU) and labels for every batch of ``loader``."""
    model.eval()
    outs, labels = [], []
    for x, y in loader:
        with autocast(device, amp):
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


def write_metrics(rows: List[Dict[str, Any]], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (round(r[k], 6) if isinstance(r[k], float) else r[k])) for k in METRIC_FIELDS})
    write_text_atomic(path, buf.getvalue())


def summary_line(rows: List[Dict[str, Any]], epochs: int, time_budget: Optional[float] = None) -> str:
    """``top-1 88.48 % at epoch 60/60, best 88.52 % at epoch 55`` from the metrics rows.

    With a time budget the planned epochs are only an upper bound: ``at epoch 60 (330 s budget)``."""
    ev = [r for r in rows if r.get("test_acc") not in (None, "")]
    of = " (%.0f s budget)" % time_budget if time_budget else "/%d" % epochs
    if not ev:
        return "no evaluated epoch yet (%d%s trained)" % (len(rows), of)
    last, best = ev[-1], max(ev, key=lambda r: float(r["test_acc"]))
    text = "top-1 %.2f %% at epoch %d%s" % (float(last["test_acc"]), int(last["epoch"]), of)
    if best is not last:
        text += ", best %.2f %% at epoch %d" % (float(best["test_acc"]), int(best["epoch"]))
    return text


def describe_result(out: Path) -> str:
    """What a finished (or interrupted) run in ``out`` reached, in words, read from its files."""
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    man = mf.read(out / "manifest.json") if (out / "manifest.json").is_file() else {}
    epochs = int(man.get("training", {}).get("epochs") or len(rows))
    budget = None
    if (out / "config.yaml").is_file():
        from .config import load_yaml

        budget = load_yaml(out / "config.yaml").get("time_budget")
    acc = man.get("accuracy", {})
    n = acc.get("n")
    avg = man.get("training", {}).get("average") or {}
    if avg.get("chosen_for_best"):
        from .average import describe_epochs

        what = "the weight average of %s (%.2f %%)" % (describe_epochs(avg["epochs"]), avg["top1"])
    else:
        what = "epoch %s" % acc.get("epoch", "-")
    return "%s (PyTorch, %s test images); best.pt is %s -> %s" % (
        summary_line(rows, epochs, budget), n if n is not None else "?", what, out)


