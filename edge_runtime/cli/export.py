"""Export a checkpoint to ONNX with its manifest, checked against PyTorch.

Writes X.onnx (opset >= 17, input `input` float32 NCHW 1x3x32x32, output `logits`; --dynamic-batch
makes the batch axis symbolic), embeds the manifest in the ONNX metadata and writes it beside the
file as X.onnx.json with the file's sha256. A parity check runs ONNX Runtime and PyTorch on the same
preprocessed images (CIFAR test images with --data-dir, else seeded random images) and records the
max abs logit difference and top-1 agreement (goal: 100 %, <= 1e-4). Existing outputs are kept
unless --force.

Examples:
  edge-runtime export engines/checkpoints/mobilenetv2_cifar_x0_5.pt --out engines/mnv2_x0_5.onnx
  edge-runtime export runs/lenet5/best.pt --dynamic-batch --data-dir ~/data --parity-images 1000
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import resources
from . import require_train_extras
from ..config import flag_type
from ._common import command_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="a .pt checkpoint written by edge-runtime train (engines/checkpoints/... "
                   "names the bundled ones from any directory)")
    p.add_argument("--out", type=Path, default=None,
                   help="output .onnx (default ./engines/<model>.onnx, under the working directory)")
    p.add_argument("--opset", type=flag_type(int, lo=17), default=17, help="ONNX opset, >= 17 (default 17)")
    p.add_argument("--dynamic-batch", action="store_true", help="symbolic batch axis (default: fixed batch 1)")
    p.add_argument("--data-dir", type=Path, default=None, help="CIFAR root for the parity check on real test images")
    p.add_argument("--parity-images", type=flag_type(int, lo=1), default=256, help="images in the parity check (default 256)")
    p.add_argument("--force", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    require_train_extras()
    from train.export import export_onnx

    from ..fsio import check_writable

    check_writable(args.out or Path("engines"), "--out", directory=args.out is None)  # before exporting

    res = export_onnx(resources.resolve(args.checkpoint), args.out, opset=args.opset, dynamic_batch=args.dynamic_batch,
                      data_dir=args.data_dir, parity_images=args.parity_images, force=args.force, command=command_line(args))
    par = res.manifest["parity"]
    print("wrote %s (%s)" % (Path(res.path).absolute(), Path(res.sidecar).name))
    print("parity vs PyTorch on %d %s: max abs diff %.3g, top-1 agreement %.2f %% [%s]" % (
        par["images"], par["source"], par["max_abs_diff"], par["top1_agreement"],
        "goal met" if par["passed"] else "GOAL MISSED: 100 %% and <= %.0e" % par["goal"]["max_abs_diff"]))
    return 0
