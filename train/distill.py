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

Cached targets are kept on disk (:func:`cached_logits`) and reused by every later run with the same
key: the teachers' sha256, the dataset, the split, the exact images (their sha256) and normalization,
and the view (``image+mirror`` for training, ``image`` for the teachers' test accuracy). A second run
does no teacher pass at all. Default folder: ``$EDGE_RUNTIME_CACHE/teacher-targets``, else
``~/.cache/edge-runtime/teacher-targets`` (``distill_cache`` / ``--distill-cache DIR`` sets another).
Files are named by the key's hash and record the key itself: a file whose key differs from the run's
(copied or renamed by hand, or damaged) is refused in one line, never overwritten.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file, write_bytes_atomic

from . import checkpoint, data
from .config import TrainConfig
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


CACHE_FORMAT = "edge-runtime.teacher-targets/1"
VIEWS = {"image": 1, "image+mirror": 2}


def default_cache_dir() -> Path:
    env = os.environ.get("EDGE_RUNTIME_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "edge-runtime") / "teacher-targets"


def target_key(teacher_info: Sequence[Dict[str, Any]], dataset: str, split: str, images: np.ndarray,
               mean: Sequence[float], std: Sequence[float], view: str) -> Dict[str, Any]:
    """What cached teacher logits depend on; two runs share an entry only when every field is equal."""
    if view not in VIEWS:
        raise ValueError("view must be one of %s, got %r" % (", ".join(VIEWS), view))
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    return {"teachers": [t["sha256"] for t in teacher_info], "dataset": dataset, "split": split,
            "images": {"n": int(len(images)), "sha256": h.hexdigest()},
            "normalize": {"mean": [round(float(m), 8) for m in mean], "std": [round(float(v), 8) for v in std]},
            "view": view}


def cache_path(location: Optional[str], key: Dict[str, Any]) -> Path:
    """The entry's file in the folder ``location`` (default :func:`default_cache_dir`), named by the key's hash."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(location).expanduser() if location else default_cache_dir()
    if folder.suffix == ".pt" or folder.is_file():
        raise EdgeRuntimeError("--distill-cache %s: expected a folder (entries are named by their key), got a file name; "
                               "pass its folder" % location)
    return folder / ("%s-%s-%s-%s.pt" % (key["dataset"], key["split"], key["view"].replace("+", "-"), digest))


def _describe(v: Any) -> str:
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def cached_logits(key: Dict[str, Any], location: Optional[str], compute: Callable[[], torch.Tensor],
                  meta: Optional[Dict[str, Any]] = None) -> Tuple[torch.Tensor, Path, bool]:
    """(logits, file, reused): the entry for ``key`` read from disk, or computed once and written atomically.

    Logits are ``(N, K)`` for the ``image`` view and ``(N, 2, K)`` for ``image+mirror``. A file
    that is not a cache entry, or whose key differs from ``key``, is a one-line error (nothing is
    overwritten).
    """
    path = cache_path(location, key)
    if path.is_file():
        try:
            entry = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling raises arbitrary types on garbage
            raise EdgeRuntimeError("teacher-target cache %s is unreadable (%s: %s); delete it and it is rebuilt" % (
                path, type(exc).__name__, str(exc).splitlines()[0][:120] if str(exc) else "")) from None
        if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("logits"),
                                                                                               torch.Tensor):
            raise EdgeRuntimeError("%s is not a teacher-target cache (expected format %s); pass another --distill-cache"
                                   % (path, CACHE_FORMAT))
        have = entry.get("key", {})
        diff = [k for k in sorted(set(key) | set(have)) if have.get(k) != key.get(k)]
        if diff:
            raise EdgeRuntimeError("teacher-target cache %s was made for %s, this run needs %s; delete the file or pass "
                                   "another --distill-cache (nothing was overwritten)" % (
                                       path, ", ".join("%s=%s" % (k, _describe(have.get(k))) for k in diff),
                                       ", ".join("%s=%s" % (k, _describe(key.get(k))) for k in diff)))
        logits = entry["logits"]
        want = (key["images"]["n"],) + ((2,) if VIEWS[key["view"]] == 2 else ())
        if tuple(logits.shape[:len(want)]) != want or logits.dim() != len(want) + 1:
            raise EdgeRuntimeError("teacher-target cache %s holds logits %s, expected %s x classes; delete it and it is "
                                   "rebuilt" % (path, tuple(logits.shape), want))
        return logits, path, True
    logits = compute().detach().float().cpu().contiguous()
    buf = io.BytesIO()
    torch.save({"format": CACHE_FORMAT, "key": key, "logits": logits, "meta": dict(meta or {})}, buf)
    write_bytes_atomic(path, buf.getvalue())
    return logits, path, False


def setup_teachers(cfg: TrainConfig, ds: data.CifarData, train_split: data.Split, test_split: data.Split,
                    test_loader: data.TensorLoader, train_loader: data.TensorLoader, device: torch.device,
                    main: bool, progress: bool, first_exact: bool) -> Tuple[Teachers, Dict[str, Any]]:
    """The teachers, their test accuracy and (``cached``) the training loader's targets, read from or kept in the cache."""
    from .evaluation import predict, summarize

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


def _short(names: Sequence[str]) -> str:
    names = list(names)
    return "[%s]" % ", ".join(names[:4] + (["... (%d)" % len(names)] if len(names) > 4 else []))
