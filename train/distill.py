"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a student learns from trained teachers.

    loss = (1 - alpha) * CE(student, label) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

Teachers are edge-runtime checkpoints trained on the same dataset and classes with the same
normalization; several teachers form an ensemble (their logits are averaged). Two ways to get the
teachers' targets (``distill_targets``):

- ``online``: the teachers run on every batch exactly as the student sees it (crop, flip, cutout,
  mixup). Exact; costs one forward pass per teacher per step, which a GPU hides.
- ``cached``: the teachers run once before training on every training image and its mirror image;
  each step looks the targets up by image and flip. The random crop and cutout are not seen by
  the teachers (the targets are those of the whole, centred image), but the teachers' cost is two
  passes over the training set instead of one per step: what makes distillation affordable on a
  CPU, where a teacher 9x the student's size would otherwise make every epoch ~4x slower.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file

from . import checkpoint
from .models import create_model


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged over the batch (float32)."""
    t = float(temperature)
    log_p = F.log_softmax(student.float() / t, dim=1)
    log_q = F.log_softmax(teacher.float() / t, dim=1)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * (t * t)


class Teachers(nn.Module):
    """One or more trained checkpoints whose averaged logits are the soft targets (an ensemble module)."""

    def __init__(self, paths: Sequence[str], class_names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                 device: torch.device, channels_last: bool = True) -> None:
        if not paths:
            raise EdgeRuntimeError("distillation needs at least one teacher checkpoint (--teacher PATH)")
        super().__init__()
        self.models = nn.ModuleList()
        self.info: List[Dict[str, Any]] = []
        for p in paths:
            path = Path(p)
            ck = checkpoint.load(path)
            man = ck["manifest"]
            names = list(man["dataset"].get("class_names") or [])
            if names != list(class_names):
                raise EdgeRuntimeError(
                    "teacher %s was trained on the classes %s, this run has %s; a teacher must share the student's "
                    "dataset and classes" % (path, _short(names), _short(class_names)))
            pre = man.get("preprocess", {})
            if not (np.allclose(pre.get("mean", []), mean, atol=1e-4) and np.allclose(pre.get("std", []), std, atol=1e-4)):
                raise EdgeRuntimeError(
                    "teacher %s normalizes with mean %s / std %s, this run with %s / %s; use a teacher trained on the "
                    "same data" % (path, pre.get("mean"), pre.get("std"), list(mean), list(std)))
            model = create_model(man["model"]["name"], num_classes=len(names), **man["model"].get("kwargs", {}))
            try:
                model.load_state_dict(ck["model"])
            except (RuntimeError, KeyError) as exc:
                raise EdgeRuntimeError("teacher %s: weights do not fit %s (%s)" % (
                    path, man["model"]["name"], str(exc).splitlines()[0][:160])) from None
            model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            model.eval()
            for q in model.parameters():
                q.requires_grad_(False)
            self.models.append(model)
            self.info.append({"path": str(path), "sha256": sha256_file(path), "model": man["model"]["name"],
                              "top1": man.get("accuracy", {}).get("top1")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The ensemble's logits for a normalized batch (float32)."""
        return torch.stack([m(x).float() for m in self.models]).mean(0)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    @torch.no_grad()
    def cache(self, loader: Any, progress: bool = True) -> torch.Tensor:
        """Logits for every image of an un-augmented, unshuffled loader and for its mirror: (N, 2, K)."""
        it = loader
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(loader, total=len(loader), desc="teacher targets", dynamic_ncols=True, file=sys.stderr)
            it = bar
        outs = []
        for x, _ in it:
            outs.append(torch.stack([self.logits(x), self.logits(x.flip(3))], dim=1))
        if bar is not None:
            bar.close()
        return torch.cat(outs)


def _short(names: Sequence[str]) -> str:
    names = list(names)
    return "[%s]" % ", ".join(names[:4] + (["... (%d)" % len(names)] if len(names) > 4 else []))
