#!/usr/bin/env python3
"""How much of the test accuracy the JPEG recovery of the data costs.

55,000 of the 60,000 CIFAR-10 images here were decoded from quality-75 JPEGs (4:2:0); only the
first 1,000 test images are exact. This compresses those 1,000 exact images the same way (Pillow,
quality 75, 4:2:0), checks that the copies match the data's own JPEG statistics (mean PSNR about
30.5 dB, see ../shared/data/README.md), and evaluates each checkpoint on both versions of the very
same images. The difference is the JPEG cost on the test side, free of the sampling error that
separates "first 1000" from "test".

    EDGE_RUNTIME_DATA=... python benchmarks/jpeg_effect.py engines/checkpoints/*.pt --out benchmarks/jpeg_effect
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_runtime.cli._common import command_line  # noqa: E402
from edge_runtime.errors import EdgeRuntimeError  # noqa: E402
from edge_runtime.fsio import write_text_atomic  # noqa: E402
from train import checkpoint, data  # noqa: E402
from train.models import create_model  # noqa: E402
from train.trainer import predict  # noqa: E402


def jpeg_copy(images: np.ndarray, quality: int = 75) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(images)
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=2)  # 2 = 4:2:0
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))


def accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, mean, std) -> tuple:
    split = data.Split(images=images, labels=labels)
    loader = data.TensorLoader(split, 250, mean, std, torch.device("cpu"), train=False)
    logits, y = predict(model, ((b[0], b[1]) for b in loader), torch.device("cpu"), amp=False)
    correct = (logits.argmax(1) == y).numpy()
    return correct, float(correct.mean() * 100)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--data-dir", default=os.environ.get("EDGE_RUNTIME_DATA"),
                    help="folder holding cifar-10-batches-py/ (default: $EDGE_RUNTIME_DATA)")
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    args = ap.parse_args(argv)
    try:
        return run(args, argv)
    except EdgeRuntimeError as e:
        print("jpeg_effect: error: %s" % e, file=sys.stderr)
        return 2


def run(args: argparse.Namespace, argv) -> int:
    if not args.data_dir:
        raise EdgeRuntimeError("no data folder: pass --data-dir or set EDGE_RUNTIME_DATA to the folder holding "
                               "cifar-10-batches-py/")
    ds = data.load("cifar10", args.data_dir)
    exact, labels = ds.test.images[:1000], ds.test.labels[:1000]
    jpeg = jpeg_copy(exact, args.quality)
    p = psnr(exact, jpeg)
    rows = []
    for path in args.checkpoints:
        ck = checkpoint.load(path)
        man = ck["manifest"]
        model = create_model(man["model"]["name"], num_classes=man["dataset"]["num_classes"],
                             **man["model"].get("kwargs", {}))
        model.load_state_dict(ck["model"])
        pre = man["preprocess"]
        c_exact, a_exact = accuracy(model, exact, labels, pre["mean"], pre["std"])
        c_jpeg, a_jpeg = accuracy(model, jpeg, labels, pre["mean"], pre["std"])
        rows.append({"checkpoint": str(path), "model": man["model"]["name"],
                     "test_top1": man.get("accuracy", {}).get("top1"), "exact_top1": a_exact, "jpeg_top1": a_jpeg,
                     "cost": a_exact - a_jpeg, "right_only_exact": int((c_exact & ~c_jpeg).sum()),
                     "right_only_jpeg": int((c_jpeg & ~c_exact).sum())})
        # paired: only the images right in one version and wrong in the other carry information
        rows[-1]["cost_se"] = float(np.sqrt(rows[-1]["right_only_exact"] + rows[-1]["right_only_jpeg"]) / len(labels) * 100)
        print("%-46s exact %.1f  jpeg q%d %.1f  cost %+.1f +- %.1f" % (path, a_exact, args.quality, a_jpeg,
                                                                    a_exact - a_jpeg, rows[-1]["cost_se"]))
    result = {"quality": args.quality, "subsampling": "4:2:0", "images": "test 0-999 (exact)",
              "psnr_mean_db": float(p.mean()), "psnr_median_db": float(np.median(p)), "models": rows,
              "command": command_line(argv, prog="python benchmarks/jpeg_effect.py")}
    print("JPEG copies: mean PSNR %.2f dB, median %.2f dB" % (p.mean(), np.median(p)))
    if args.out:
        md = ["# What JPEG costs on the test side", "",
              "The exact test images 0-999, evaluated as they are and after a quality-%d JPEG round trip "
              "(Pillow, 4:2:0; mean PSNR %.2f dB, median %.2f dB: the data's own JPEG copies measure "
              "30.49 / 30.54 dB on these images). Same images, same labels: the difference is what the JPEG "
              "recovery of test images 1,000-9,999 costs each model." % (args.quality, p.mean(), np.median(p)), "",
              "Command (with `EDGE_RUNTIME_DATA` set): `%s`. Machine: %d-core %s CPU, torch %s." % (
                  result["command"], os.cpu_count() or 0, platform.machine(), torch.__version__), "",
              "The s.e. is that of a paired comparison (from the images right in one version only); "
              "the same 1,000 images are too few to tell costs below about 1.5 points apart.", "",
              "| checkpoint | test (10,000, as unpacked) | first 1000 exact | same 1000 after JPEG | cost +- paired s.e. "
              "| right only exact / only JPEG |",
              "|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            md.append("| `%s` | %s | %.1f | %.1f | %+.1f +- %.1f | %d / %d |" % (
                r["checkpoint"], "%.2f" % r["test_top1"] if r["test_top1"] is not None else "-", r["exact_top1"],
                r["jpeg_top1"], r["cost"], r["cost_se"], r["right_only_exact"], r["right_only_jpeg"]))
        write_text_atomic(args.out.with_suffix(".md"), "\n".join(md) + "\n")
        write_text_atomic(args.out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
