"""Calibration sets: a fixed, class-balanced, seeded subset of a TRAIN split (numpy only).

A set is two files under ``calib/``::

    cifar10-train-1000.npz        images (N, 32, 32, 3) uint8 RGB, labels (N,) int64
    cifar10-train-1000.npz.json   dataset, split, class names, per-class count, seed, source indices,
                                  sha256 of the .npz, the command that made it

The .npz is written with fixed zip timestamps, so the same dataset, seed and count give the same
bytes (and sha256) on every machine. Loading checks the hash, and checks the set against the
model's manifest (dataset name, class count and names); calibration batches go through the
manifest's preprocessing (:mod:`edge_runtime.preprocess`), the one the model was trained with.
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from .errors import EdgeRuntimeError
from .fsio import PathLike, sha256_file, write_bytes_atomic, write_json_atomic
from .manifest import sidecar_path
from .preprocess import preprocess_batch

FORMAT = "edge-runtime.calib/1"
DEFAULT_DIR = Path("calib")


@dataclass(frozen=True)
class CalibSet:
    path: Path
    images: np.ndarray
    labels: np.ndarray
    meta: Dict[str, Any]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batches(self, pp: Dict[str, Any], batch_size: int = 32, limit: Optional[int] = None) -> Iterator[np.ndarray]:
        """Preprocessed ``(B, 3, H, W)`` float32 batches, in file order, through the manifest's transform."""
        n = len(self) if limit is None else min(int(limit), len(self))
        for i in range(0, n, batch_size):
            yield preprocess_batch(self.images[i:min(i + batch_size, n)], pp)


def file_name(dataset: str, count: int) -> str:
    return "%s-train-%d.npz" % (dataset, count)


def _npz_bytes(arrays: Dict[str, np.ndarray]) -> bytes:
    """An .npz with fixed timestamps (reproducible sha256), readable by ``np.load``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            body = io.BytesIO()
            np.lib.format.write_array(body, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, body.getvalue())
    return buf.getvalue()


def select(labels: np.ndarray, num_classes: int, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices: ``per_class`` of each class, drawn without replacement with ``seed``."""
    rng = np.random.default_rng(seed)
    picked: List[np.ndarray] = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise EdgeRuntimeError("class %d has only %d training images, fewer than --per-class %d; lower --per-class"
                                   % (c, len(idx), per_class))
        picked.append(rng.choice(idx, size=per_class, replace=False))
    return np.sort(np.concatenate(picked))


def make(dataset: str, per_class: int = 100, seed: int = 0, data_dir: Optional[os.PathLike] = None,
         out_dir: PathLike = DEFAULT_DIR, force: bool = False, command: str = "") -> Path:
    """Write a class-balanced calibration set from the TRAIN split; returns the .npz path."""
    from .cifar import load_split

    if per_class < 1:
        raise EdgeRuntimeError("--per-class must be at least 1; got %d" % per_class)
    split = load_split(dataset, "train", data_dir)
    k = len(split.class_names)
    out = Path(out_dir) / file_name(dataset, per_class * k)
    for p in (out, sidecar_path(out)):
        if p.exists() and not force:
            raise EdgeRuntimeError("%s already exists; pass --force to replace it or choose another --out "
                                   "(nothing was overwritten)" % p)
    idx = select(split.labels, k, per_class, seed)
    write_bytes_atomic(out, _npz_bytes({"images": split.images[idx], "labels": split.labels[idx].astype(np.int64)}))
    meta = {
        "format": FORMAT, "dataset": dataset, "split": "train", "num_classes": k, "class_names": split.class_names,
        "per_class": per_class, "count": int(len(idx)), "seed": seed,
        "selection": "numpy default_rng(seed).choice per class, without replacement, classes 0..k-1 in order; indices sorted",
        "image_layout": "NHWC uint8 RGB", "source_indices": [int(i) for i in idx], "sha256": sha256_file(out),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "command": command,
    }
    write_json_atomic(sidecar_path(out), meta)
    return out


def resolve(path: Optional[PathLike], manifest: Dict[str, Any]) -> Path:
    """A calibration .npz for this model: ``path`` itself, or the set for its dataset in a folder. Default: the sets
    edge-runtime comes with (calib/ of the checkout or the installed package, :mod:`edge_runtime.resources`), the same
    from any working directory; ./calib only where neither has one."""
    if path is None:
        from . import resources

        p = resources.folder("calib") or DEFAULT_DIR
    else:
        p = Path(path)
    if p.is_dir():
        ds = manifest["dataset"]["name"]
        found = sorted(p.glob("%s-train-*.npz" % ds))
        if not found:
            raise EdgeRuntimeError("no calibration set for %s in %s/; make one with: edge-runtime calib make --dataset %s "
                                   "--per-class 100 --out %s" % (ds, p, ds, p))
        return found[-1]
    return p


def load(path: PathLike, manifest: Optional[Dict[str, Any]] = None) -> CalibSet:
    """Load and check a calibration set (hash, shapes, non-empty; against ``manifest`` if given)."""
    p = Path(path)
    side = sidecar_path(p)
    if not p.is_file():
        raise EdgeRuntimeError("calibration set not found: %s; make one with: edge-runtime calib make --dataset cifar10 "
                               "--per-class 100" % p)
    if not side.is_file():
        raise EdgeRuntimeError("%s has no metadata file %s; remake the set with edge-runtime calib make" % (p, side))
    try:
        meta = json.loads(side.read_text())
    except ValueError as exc:
        raise EdgeRuntimeError("%s is not valid JSON (%s); remake the set with edge-runtime calib make" % (side, exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EdgeRuntimeError("%s is not an edge-runtime calibration set description (format %r)" % (side, FORMAT))
    got = sha256_file(p)
    if meta.get("sha256") != got:
        raise EdgeRuntimeError("%s does not match %s (sha256 %s..., recorded %s...); remake the set with edge-runtime "
                               "calib make" % (p, side.name, got[:12], str(meta.get("sha256"))[:12]))
    try:
        with np.load(str(p), allow_pickle=False) as z:
            images, labels = np.asarray(z["images"]), np.asarray(z["labels"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise EdgeRuntimeError("%s is not a readable calibration set (%s)" % (p, str(exc)[:160])) from None
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 or labels.shape != (images.shape[0],):
        raise EdgeRuntimeError("%s: images %s %s with %d labels; expected uint8 (N, H, W, 3) and N labels"
                               % (p, images.dtype, images.shape, labels.shape[0]))
    if len(labels) == 0:
        raise EdgeRuntimeError("%s is empty (0 images); INT8 calibration needs images: remake it with "
                               "edge-runtime calib make --per-class 100" % p)
    cs = CalibSet(p, images, labels, meta)
    if manifest is not None:
        check_matches(cs, manifest)
    return cs


def check_matches(cs: CalibSet, manifest: Dict[str, Any]) -> None:
    ds = manifest["dataset"]
    if cs.meta.get("dataset") != ds["name"] or int(cs.meta.get("num_classes", -1)) != int(ds["num_classes"]):
        raise EdgeRuntimeError("calibration set %s is from %s with %s classes, but the model is %s with %d classes; use "
                               "a set made with: edge-runtime calib make --dataset %s" % (
                                   cs.path, cs.meta.get("dataset"), cs.meta.get("num_classes"), ds["name"],
                                   ds["num_classes"], ds["name"]))
    if list(cs.meta.get("class_names", [])) != list(ds["class_names"]):
        raise EdgeRuntimeError("calibration set %s has other class names than the model (%s... vs %s...); the model was "
                               "trained on a class selection or another dataset" % (
                                   cs.path, cs.meta.get("class_names", [])[:3], ds["class_names"][:3]))
