#!/usr/bin/env python3
"""Top-1 of the bundled INT8 builds on the exact CIFAR-10 test images 0-999 at each ONNX Runtime graph
optimization level, on this CPU: does the published accuracy hold where it runs?

`edge-runtime doctor --data-dir data` found the CPU-layout build (uint8 activations, int8 weights) 3 points
below its manifest on a machine with AVX2 and no VNNI; this isolates the cause (the fused kernels ONNX Runtime
picks when it optimizes the graph). One session per level, batch 1, 1 thread.

    python benchmarks/ort_int8_optlevel.py --data-dir data --out benchmarks/doctor-cpu/ort-int8-optlevel.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.cifar import load_split  # noqa: E402
from edge_runtime.cli._common import command_line  # noqa: E402
from edge_runtime.doctor import _cpu_flags  # noqa: E402
from edge_runtime.fsio import write_json_atomic  # noqa: E402
from edge_runtime.preprocess import preprocess_batch  # noqa: E402

LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")
FILES = ("mobilenetv2_cifar_x0_5.onnx", "mobilenetv2_cifar_x0_5.int8-cpu.onnx", "mobilenetv2_cifar_x0_5.int8-tensorrt.onnx")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import onnxruntime as ort

    sp = load_split("cifar10", "test", args.data_dir)
    labels = sp.labels[:1000]
    rows = []
    for name in FILES:
        path = ROOT / "engines" / "bundled" / name
        man = mf.for_artifact(path)
        x = preprocess_batch(sp.images[:1000], man["preprocess"])
        for level in LEVELS:
            so = ort.SessionOptions()
            so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
            so.intra_op_num_threads = 1
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            inp = sess.get_inputs()[0].name
            y = np.concatenate([sess.run(None, {inp: x[i:i + 1]})[0] for i in range(len(x))])
            top1 = float((y.argmax(1) == labels).mean() * 100)
            rows.append({"file": name, "level": level, "top1_test_0_999": top1,
                         "manifest_top1_first1000": (man.get("accuracy") or {}).get("top1_first1000")})
            print("%-45s %-20s %.1f %%" % (name, level, top1))
    write_json_atomic(args.out, {"command": command_line(prog="python benchmarks/ort_int8_optlevel.py"),
                                 "onnxruntime": ort.__version__, "cpu": platform.processor() or platform.machine(),
                                 "cpu_flags": _cpu_flags(), "images": "CIFAR-10 test 0-999 (exact)", "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
