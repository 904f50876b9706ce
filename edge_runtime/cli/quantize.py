"""INT8 (TensorRT or CPU layout) and FP16 ONNX from an FP32 export, with measured accuracy.

  --target tensorrt  Q/DQ, signed int8 symmetric (zero points 0), weights per-channel (axis 0), activations
                     per-tensor, output in float: what TensorRT builds as an explicitly quantized engine
  --target cpu       Q/DQ, uint8 activations + int8 per-channel weights: fastest on ONNX Runtime's CPU kernels;
                     7-bit weights (reduce_range), so x86 CPUs without VNNI do not saturate
  --target fp16      FP16 weights and compute, float32 input/output (for TensorRT 11, which has no FP16 flag)

Calibration (INT8): --calib is a set made by `edge-runtime calib make` (or a folder holding one;
default: the CIFAR sets edge-runtime comes with, calib/ of the checkout or of the installed package,
the same from any working directory), read through the model manifest's preprocessing. --method minmax|entropy|percentile
(default: percentile for tensorrt, minmax for cpu). The new file's manifest records the method,
the set's sha256, and the accuracy measured with ONNX Runtime on the test split (--limit N images;
--skip-eval when no dataset is at hand) with the drop against the FP32 file.

Every input (the output place, the calibration set, the test data) is checked before the work starts;
the calibration and accuracy passes show progress on stderr (tqdm on a terminal, else a line every 5 s).
Paths are relative to the working directory; the output goes beside the input unless --out says otherwise.

Examples:
  edge-runtime quantize engines/mnv2.onnx --target tensorrt --data-dir ~/data
  edge-runtime quantize engines/mnv2.onnx --target cpu --method entropy --calib calib/cifar10-train-1000.npz
  edge-runtime quantize engines/mnv2.onnx --target fp16 --out engines/mnv2.fp16.onnx --limit 2000
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line, pct


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="FP32 .onnx written by edge-runtime export")
    p.add_argument("--target", choices=["tensorrt", "cpu", "fp16"], required=True)
    p.add_argument("--method", choices=["minmax", "entropy", "percentile"], default=None,
                   help="INT8 calibration method (default percentile for tensorrt, minmax for cpu)")
    p.add_argument("--calib", type=Path, default=None, help="calibration .npz or folder (default: the bundled calib/ sets)")
    p.add_argument("--calib-images", type=flag_type(int, lo=1), default=None, help="use only the first N calibration images")
    p.add_argument("--limit", type=flag_type(int, lo=1), default=None, help="evaluate on the first N test images (default all)")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset root (default $EDGE_RUNTIME_DATA)")
    p.add_argument("--skip-eval", action="store_true", help="do not measure accuracy (manifest says so)")
    p.add_argument("--out", type=Path, default=None, help="output .onnx (default beside the input, e.g. X.int8-cpu.onnx)")
    p.add_argument("--force", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    from ..fsio import check_writable
    from ..quantize import default_out, quantize

    check_writable(args.out or default_out(args.model, args.target), "--out")  # before calibrating

    res = quantize(args.model, args.target, args.method, args.calib, args.limit, args.data_dir, args.out, args.force,
                   evaluate=not args.skip_eval, calib_limit=args.calib_images, command=command_line(args))
    m = res.manifest
    q = m["quantization"]
    print("wrote %s (%s, %s%s; %.2f MB) and its manifest" % (res.path, m["precision"], q["target"],
                                                            ", %s calibration on %d images" % (q["method"], q["calibration"]["images"]) if "method" in q else "",
                                                            res.path.stat().st_size / 1e6))
    a = m.get("accuracy")
    if a:
        print("top-1 on %d test images: %s (FP32 ONNX %s, drop %.2f points); first 1000: %s (FP32 %s)" % (
            a["n"], pct(a["top1"]), pct(a["fp32_onnx"]["top1"]), a["drop_vs_fp32"], pct(a["top1_first1000"]),
            pct(a["fp32_onnx"]["top1_first1000"])))
    else:
        print("accuracy not measured (--skip-eval)")
    return 0
