"""Evaluate an artifact on a CIFAR test split: top-1 (all and first 1000), per class, confusion, latency.

ARTIFACT is a .pt checkpoint (PyTorch), an .onnx file (ONNX Runtime) or an .engine (TensorRT). Test
images go through the preprocessing in the artifact's manifest. An ONNX file without a manifest
needs --mean, --std and --labels. With --out DIR: <artifact>.eval.json and <artifact>.confusion.png.
Latency: batch 1, 30 warm-up calls, then --latency-iters timed calls (p50/p90/p99).
The output folder is checked before any work; the accuracy pass shows progress on stderr. Paths are
relative to the working directory (engines/bundled/... names the bundled models from anywhere).

Examples:
  edge-runtime eval engines/bundled/mobilenetv2_cifar_x0_5.onnx --dataset cifar10 --out runs/eval
  edge-runtime eval engines/checkpoints/mobilenetv2_paper.pt --limit 1000
  edge-runtime eval other.onnx --mean 0.491 0.482 0.447 --std 0.247 0.243 0.262 --labels airplane,automobile,...
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line, pct


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", type=Path, help=".pt, .onnx or .engine")
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], default=None, help="must match the manifest's")
    p.add_argument("--limit", type=flag_type(int, lo=1), default=None, help="only the first N test images")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset root (default $EDGE_RUNTIME_DATA)")
    p.add_argument("--out", type=Path, default=None, help="folder for the JSON report and confusion PNG")
    p.add_argument("--latency-iters", type=flag_type(int, lo=0), default=200, help="timed batch-1 calls (0: skip)")
    p.add_argument("--threads", type=flag_type(int, lo=0), default=None, help="CPU threads for ONNX Runtime / PyTorch")
    p.add_argument("--mean", type=flag_type(float), nargs=3, default=None, help="R G B mean (only for ONNX without manifest)")
    p.add_argument("--std", type=flag_type(float, lo=0, lo_open=True), nargs=3, default=None, help="R G B std (only for ONNX without manifest)")
    p.add_argument("--labels", type=lambda s: [c for c in s.split(",") if c], default=None,
                   help="comma-separated class names (only for ONNX without manifest)")


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate

    from .. import resources

    res = evaluate(resources.resolve(args.artifact), args.dataset, args.limit, args.data_dir, args.out, args.mean, args.std, args.labels,
                   latency_iters=args.latency_iters, threads=args.threads, command=command_line(args))
    print("%s (%s, %s, %s): top-1 %s on %d %s test images; first 1000: %s" % (
        args.artifact, res["model"], res["precision"], res["backend"], pct(res["top1"]), res["n"], res["dataset"],
        pct(res["top1_first1000"])))
    worst = sorted((v, k) for k, v in res["per_class"].items() if v is not None)[:3]
    print("weakest classes: %s" % ", ".join("%s %.1f %%" % (k, v) for v, k in worst))
    lat = res.get("latency")
    if lat:
        print("batch-1 latency: p50 %.3f ms, p90 %.3f ms, p99 %.3f ms (%d calls)" % (lat["p50_ms"], lat["p90_ms"], lat["p99_ms"], lat["iters"]))
    cal = res.get("calibration")
    if cal:
        print("calibration (ECE, 15 bins): %.2f %% with raw softmax, %s" % (
            100 * cal["ece_before"], "%.2f %% with the manifest's temperature %.3f" % (100 * cal["ece_after"],
                                                                                    cal["temperature"])
            if cal["calibrated"] else "no temperature in the manifest (edge-runtime calibrate fits one)"))
    for f in res.get("files", []):
        print("wrote %s" % f)
    return 0
