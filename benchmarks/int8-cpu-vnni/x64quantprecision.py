#!/usr/bin/env python3
"""ONNX Runtime's runtime remedy for u8s8 saturation on x86 without VNNI, session option
``session.x64quantprecision=1`` (ONNX Runtime PR #12088: u8s8 products with weights outside [-64, 63] are computed
as u8u8), beside the quantization remedy (7-bit weights): top-1 on CIFAR-10 test images 0-999 and batch-1 latency of
the bundled INT8 builds, with and without the option, at ORT_ENABLE_ALL, 1 thread, on this CPU.

Latency: interleaved rounds (edge_runtime.bench.statistics.interleaved), median of the round medians; the CPU is
shared with a training run.

    python benchmarks/int8-cpu-vnni/x64quantprecision.py --data-dir /work/main/data --old-rev 36d8ec1 \
        --out benchmarks/int8-cpu-vnni/x64quantprecision.json
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.bench.probe import machine  # noqa: E402
from edge_runtime.bench.statistics import Timing, interleaved  # noqa: E402
from edge_runtime.cifar import load_split  # noqa: E402
from edge_runtime.cli._common import command_line  # noqa: E402
from edge_runtime.doctor import _cpu_flags  # noqa: E402
from edge_runtime.fsio import write_json_atomic  # noqa: E402
from edge_runtime.preprocess import preprocess_batch  # noqa: E402

BUNDLED = ROOT / "engines" / "bundled"
FP32 = BUNDLED / "mobilenetv2_cifar_x0_5.onnx"


def _session(path: Path, x64: bool) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    if x64:
        so.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--old-rev", default="36d8ec1", help="git revision holding the 8-bit-weight INT8 CPU build")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import onnxruntime as ort

    sp = load_split("cifar10", "test", args.data_dir)
    x = preprocess_batch(sp.images[:1000], mf.for_artifact(FP32)["preprocess"])
    labels = sp.labels[:1000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old.int8-cpu.onnx"
        old.write_bytes(subprocess.run(["git", "show", "%s:engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx" % args.old_rev],
                                       cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout)
        files = {"int8-cpu, 7-bit weights (bundled now)": BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.onnx",
                 "int8-cpu, 8-bit weights (%s)" % args.old_rev: old,
                 "int8-tensorrt layout (bundled, full 8-bit)": BUNDLED / "mobilenetv2_cifar_x0_5.int8-tensorrt.onnx"}
        fns = []
        for name, path in files.items():
            for x64 in (False, True):
                s = _session(path, x64)
                inp = s.get_inputs()[0].name
                y = np.concatenate([s.run(None, {inp: x[i:i + 1]})[0] for i in range(len(x))])
                top1 = float((y.argmax(1) == labels).mean() * 100)
                label = "%s, x64quantprecision=%d" % (name, int(x64))
                rows.append({"file": name, "x64quantprecision": x64, "top1_test_0_999": round(top1, 2)})
                print("%-70s %.1f %%" % (label, top1), flush=True)
                fns.append((label, (lambda ss, nn: lambda: ss.run(None, {nn: x[:1]}))(s, inp)))
        m0 = machine()
        lat = interleaved(fns, args.rounds, Timing(warmup_s=0.2, duration_s=args.seconds, min_iterations=10))
    for r, (label, _) in zip(rows, fns):
        r["median_ms"] = round(lat[label]["median_ms"], 4)
        r["round_medians_ms"] = [round(v, 4) for v in lat[label]["round_medians_ms"]]
        print("%-70s %.3f ms" % (label, r["median_ms"]))
    write_json_atomic(args.out, {
        "command": command_line(prog="python benchmarks/int8-cpu-vnni/x64quantprecision.py"),
        "method": "top-1 on CIFAR-10 test images 0-999 (exact), batch 1; latency: bare InferenceSession.run at batch 1 "
                  "(ORT_ENABLE_ALL, 1 thread), %d interleaved rounds of %.1f s, median of the round medians"
                  % (args.rounds, args.seconds),
        "onnxruntime": ort.__version__, "cpu": m0["cpu"], "cpu_flags": _cpu_flags(), "loadavg_start": m0["loadavg"],
        "loadavg_end": machine()["loadavg"], "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
