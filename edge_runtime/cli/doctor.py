"""Check this machine end to end once, and write a report to attach to a bug report (doctor.md + doctor.json).

Runs, in order: the machine probe (JetPack, L4T, TensorRT, CUDA, GPU, power mode, clocks); ONNX Runtime on the
bundled model (FP32 and the INT8 CPU build) over the committed calibration images (calib/cifar10-train-1000.npz)
and, with --data-dir (or $EDGE_RUNTIME_DATA), the first 1000 CIFAR-10 test images; the tests marked
tensorrt/gpu (pytest -m "tensorrt or gpu", from a source checkout); the bundled model's FP16 and INT8 (Q/DQ)
TensorRT engines built here, each compared with ONNX Runtime FP32 on the same images (top-1 agreement, max
abs logit difference) and benchmarked at batch 1.

Exit code: 0 every check passed; 1 a check failed (the report says which); 2 TensorRT is not available here
(the CPU checks ran, the TensorRT rows say "not available here", the last line says what to install).

Examples:
  edge-runtime doctor                                  # on the Jetson; writes doctor/doctor.md and doctor.json
  edge-runtime doctor --out /tmp/doctor --data-dir data --bench-seconds 10
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("doctor"), help="report folder (default doctor/)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with cifar-10-batches-py (adds test images 0-999)")
    p.add_argument("--bench-seconds", type=flag_type(float, lo=0, lo_open=True), default=3.0,
                   help="timed seconds per benchmark (default 3)")
    p.add_argument("--images", type=flag_type(int, lo=1), default=None, metavar="N",
                   help="only the first N images of each set (default all)")
    p.add_argument("--no-tests", action="store_true", help="skip pytest -m 'tensorrt or gpu'")


def run(args: argparse.Namespace) -> int:
    from ..doctor import run as run_doctor

    rep = run_doctor(args.out, args.data_dir, tests=not args.no_tests, bench_s=args.bench_seconds,
                     command=command_line(args), images=args.images)
    for r in rep["rows"]:
        print("%-13s %s%s" % (r["status"], r["check"], (": " + r["detail"]) if r["detail"] else ""))
    print("wrote %s and %s" % (Path(args.out) / "doctor.md", Path(args.out) / "doctor.json"))
    print(rep["summary"])
    return int(rep["exit_code"])
