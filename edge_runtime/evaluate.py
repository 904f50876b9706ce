"""Evaluate an artifact (.pt, .onnx, .engine) on a CIFAR test split: accuracy, confusion, latency.

Every artifact is evaluated the same way: test images -> the manifest's preprocessing
(:mod:`edge_runtime.preprocess`) -> the backend's runner -> logits. Accuracy is reported on the
whole split (or the first ``limit`` images) and on the first 1000 (the official test images
0-999). Latency is batch 1, after warm-up, as percentiles of wall-clock time per ``infer`` call.
"""
from __future__ import annotations

import json
import platform
import struct
import time
import zlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import manifest as mf
from . import backends
from .backends import Runner
from .errors import EdgeRuntimeError
from .fsio import PathLike, check_writable, write_bytes_atomic, write_json_atomic
from .preprocess import preprocess_batch
from .progress import Progress
from .figures import png_bytes


def predict(runner: Runner, images: np.ndarray, pp: Dict[str, Any], batch: int = 250,
            progress: Optional[Progress] = None) -> np.ndarray:
    """Logits for uint8 HWC images, in chunks (a fixed-batch runner is fed its own batch size); ``progress`` is
    updated per chunk."""
    outs = []
    for i in range(0, len(images), batch):
        outs.append(runner.infer(preprocess_batch(images[i:i + batch], pp)))
        if progress is not None:
            progress.update(len(outs[-1]))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def summarize(logits: np.ndarray, labels: np.ndarray, class_names: Sequence[str], first: int = 1000) -> Dict[str, Any]:
    if not np.all(np.isfinite(logits)):
        raise EdgeRuntimeError("the model produced non-finite outputs (NaN/inf) on %d images; the artifact is broken"
                               % int((~np.isfinite(logits)).any(1).sum()))
    if logits.shape[1] != len(class_names):
        raise EdgeRuntimeError("the model has %d outputs but its manifest names %d classes; re-export it"
                               % (logits.shape[1], len(class_names)))
    pred = logits.argmax(1)
    ok = pred == labels
    k = len(class_names)
    conf = np.zeros((k, k), np.int64)
    np.add.at(conf, (labels, pred), 1)
    per = {class_names[c]: (float(conf[c, c] / conf[c].sum() * 100.0) if conf[c].sum() else None) for c in range(k)}
    return {"top1": float(ok.mean() * 100.0), "n": int(len(labels)),
            "top1_first1000": float(ok[:first].mean() * 100.0) if len(labels) >= first else None,
            "per_class": per, "confusion": conf.tolist()}


def latency(runner: Runner, x: np.ndarray, warmup: int = 30, iters: int = 200) -> Dict[str, Any]:
    """Batch-1 latency of ``runner.infer`` in ms: p50, p90, p99, mean over ``iters`` after ``warmup`` calls."""
    x = np.ascontiguousarray(x[:1])
    for _ in range(warmup):
        runner.infer(x)
    t = np.empty(iters, np.float64)
    for i in range(iters):
        t0 = time.perf_counter()
        runner.infer(x)
        t[i] = time.perf_counter() - t0
    from .bench.statistics import summarize

    out: Dict[str, Any] = {"batch": 1, "warmup": warmup, "iters": iters, "backend": runner.name,
                           "host": "%s %s" % (platform.machine(), platform.processor() or platform.system())}
    out.update(summarize(t, 1e3))
    return out


def _png(rgb: np.ndarray) -> bytes:
    """A minimal PNG encoder (no matplotlib/OpenCV needed on the device)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def confusion_png(conf: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """Row-normalized confusion matrix: matplotlib with labels when installed, else a plain heat map."""
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    try:

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        cell = max(4, 400 // max(1, len(class_names)))
        v = (255 * (1 - norm)).astype(np.uint8)
        img = np.stack([v, v, np.full_like(v, 255)], -1)
        return _png(np.repeat(np.repeat(img, cell, 0), cell, 1))
    k = len(class_names)
    size = 4 + 0.35 * min(k, 40)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xticklabels(class_names, rotation=90)
        ax.set_yticklabels(class_names)
        for i in range(k):
            for j in range(k):
                if conf[i, j]:
                    ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def manual_manifest(artifact: PathLike, dataset: str, mean: Optional[List[float]], std: Optional[List[float]],
                    labels: Optional[List[str]], precision: str = "fp32") -> Dict[str, Any]:
    """A manifest for an artifact without one, from --mean --std --labels (all required)."""
    missing = [f for f, v in (("--mean", mean), ("--std", std), ("--labels", labels)) if not v]
    if missing:
        raise EdgeRuntimeError("%s has no manifest (no %s and no embedded metadata), so its preprocessing and classes are "
                               "unknown; pass %s (e.g. --mean 0.491 0.482 0.447 --std 0.247 0.243 0.262 --labels "
                               "airplane,automobile,...), or re-export it with edge-runtime export" % (
                                   artifact, mf.sidecar_path(artifact).name, " ".join(missing)))
    assert mean is not None and std is not None and labels is not None
    return mf.new("onnx", {"name": Path(artifact).stem, "note": "no manifest; given on the command line"},
                  mf.make_dataset(dataset, labels), mf.make_preprocess(mean, std), precision)


def load_artifact(artifact: PathLike, dataset: Optional[str] = None, mean: Optional[List[float]] = None,
                  std: Optional[List[float]] = None, labels: Optional[List[str]] = None,
                  threads: Optional[int] = None) -> Any:
    """(runner, manifest) for an artifact through :func:`edge_runtime.backends.load` (the one loader); an ONNX is
    also checked with ``onnx.checker`` first (a corrupt file is named as such)."""
    p = Path(artifact)
    if not p.is_file():
        raise EdgeRuntimeError("artifact not found: %s" % p)
    man = None
    if p.suffix == ".onnx":
        from . import onnxutil

        _model, man = onnxutil.load_checked(p)
    runner = backends.load(p, manifest=man, mean=mean, std=std, labels=labels, threads=threads, dataset=dataset or "cifar10")
    return runner, runner.manifest


def evaluate(artifact: PathLike, dataset: Optional[str] = None, limit: Optional[int] = None,
             data_dir: Optional[PathLike] = None, out_dir: Optional[PathLike] = None, mean: Optional[List[float]] = None,
             std: Optional[List[float]] = None, labels: Optional[List[str]] = None, latency_iters: int = 200,
             threads: Optional[int] = None, command: str = "", progress: bool = True) -> Dict[str, Any]:
    """Accuracy (full/first-1000/per class), confusion matrix and batch-1 latency; writes JSON + PNG to ``out_dir``.
    Checks the output folder before any work; ``progress``: lines on stderr (:class:`Progress`)."""
    from .cifar import load_split

    if out_dir is not None:
        check_writable(out_dir, "--out", directory=True)
    runner, man = load_artifact(artifact, dataset, mean, std, labels, threads)
    ds_name = man["dataset"]["name"]
    if dataset is not None and dataset != ds_name:
        raise EdgeRuntimeError("%s was trained on %s, not %s; evaluate it with --dataset %s" % (artifact, ds_name, dataset, ds_name))
    split = load_split(ds_name, "test", data_dir)
    class_names = mf.class_names(man)
    if list(split.class_names) != class_names:
        raise EdgeRuntimeError("%s: the model's classes (%s, ...) are not the %s test classes; it was trained on a class "
                               "selection, which eval does not support yet" % (artifact, ", ".join(class_names[:3]), ds_name))
    n = len(split) if limit is None else min(int(limit), len(split))
    if n < 1:
        raise EdgeRuntimeError("--limit must be at least 1")
    with runner:
        t0 = time.perf_counter()
        with Progress(n, "eval %s on %s" % (runner.name, ds_name), enabled=progress) as bar:
            logits = predict(runner, split.images[:n], man["preprocess"], progress=bar)
        secs = time.perf_counter() - t0
        lat = latency(runner, preprocess_batch(split.images[:1], man["preprocess"]), iters=latency_iters) if latency_iters else None
    res = summarize(logits, split.labels[:n], class_names)
    res.update(artifact=str(artifact), dataset=ds_name, split="test", precision=man.get("precision"),
               model=man["model"]["name"], backend=runner.name, seconds=round(secs, 2), latency=lat, command=command,
               note="first1000 = official test images 0-999")
    from .calibration import eval_block, reliability_png

    cal = eval_block(logits, split.labels[:n], man)  # ECE (15 bins) with raw softmax and with the manifest's T
    res["calibration"] = {k: v for k, v in cal.items() if not k.startswith("reliability")}
    if out_dir is not None:
        out = Path(out_dir)
        stem = Path(artifact).name
        write_json_atomic(out / ("%s.eval.json" % stem), res)
        title = "%s (%s, %s): top-1 %.2f %% on %d %s test images" % (res["model"], res["precision"], res["backend"],
                                                                    res["top1"], n, ds_name)
        write_bytes_atomic(out / ("%s.confusion.png" % stem), confusion_png(np.asarray(res["confusion"]), class_names, title))
        res["files"] = [str(out / ("%s.eval.json" % stem)), str(out / ("%s.confusion.png" % stem))]
        curves = [("softmax (T=1)", cal["reliability_before"])]
        if cal["calibrated"]:
            curves.append(("calibrated (T=%.3f)" % cal["temperature"], cal["reliability_after"]))
        write_bytes_atomic(out / ("%s.reliability.png" % stem), reliability_png(curves, title))
        res["files"].append(str(out / ("%s.reliability.png" % stem)))
    return res


def accuracy_record(res: Dict[str, Any], command: str) -> Dict[str, Any]:
    """The manifest's ``accuracy`` block from an :func:`evaluate`-style result."""
    return {"top1": res["top1"], "top1_first1000": res.get("top1_first1000"), "split": "test", "n": res["n"],
            "command": command, "measured_with": res.get("backend"),
            "note": "first1000 = official test images 0-999"}


def dumps(res: Dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in res.items() if k not in ("confusion",)}, indent=2)
