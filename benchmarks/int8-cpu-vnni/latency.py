#!/usr/bin/env python3
"""Batch-1 latency of the bundled FP32 model, the re-quantized INT8 CPU build (7-bit weights, reduce_range) and the
previous INT8 CPU build (8-bit weights, taken from git) on this CPU, through the project's ONNX Runtime runner
(ORT_ENABLE_ALL, 1 thread).

The CPU is shared (a training run and other work): the three models are timed in interleaved rounds, the order
reversed every other round (edge_runtime.bench.statistics.interleaved), and the headline is the median of the round
medians, so a load change hits all three alike.

    python benchmarks/int8-cpu-vnni/latency.py --old-rev 36d8ec1 --out benchmarks/int8-cpu-vnni/latency.json
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.backends.onnxrt import OnnxRuntimeRunner  # noqa: E402
from edge_runtime.bench.probe import machine  # noqa: E402
from edge_runtime.bench.statistics import Timing, interleaved  # noqa: E402
from edge_runtime.cli._common import command_line  # noqa: E402
from edge_runtime.doctor import _cpu_flags  # noqa: E402
from edge_runtime.fsio import sha256_file, write_json_atomic  # noqa: E402

BUNDLED = ROOT / "engines" / "bundled"
FP32 = BUNDLED / "mobilenetv2_cifar_x0_5.onnx"
INT8 = BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.onnx"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-rev", default="36d8ec1", help="git revision holding the previous INT8 CPU build")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per model and round")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old.int8-cpu.onnx"
        old.write_bytes(subprocess.run(["git", "show", "%s:%s" % (args.old_rev, INT8.relative_to(ROOT))], cwd=ROOT,
                                       check=True, stdout=subprocess.PIPE).stdout)
        files = {"fp32": FP32, "int8-cpu (7-bit weights, new)": INT8, "int8-cpu (8-bit weights, %s)" % args.old_rev: old}
        x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
        runners = {n: OnnxRuntimeRunner(p, threads=1, manifest=mf.for_artifact(FP32)) for n, p in files.items()}
        for r in runners.values():
            r.__enter__()
        try:
            m0 = machine()
            res = interleaved([(n, (lambda rr: lambda: rr.infer(x))(r)) for n, r in runners.items()], args.rounds,
                              Timing(warmup_s=0.3, duration_s=args.seconds, min_iterations=10),
                              on_round=lambda i, n, med: print("round %d %-36s %.3f ms" % (i + 1, n, med)))
        finally:
            for r in runners.values():
                r.__exit__(None, None, None)
        sha = {n: sha256_file(p) for n, p in files.items()}
    rows = {n: {"median_ms": v["median_ms"], "round_medians_ms": v["round_medians_ms"],
                "p90_ms_pooled": v["pooled"].get("p90_ms"), "calls": len(v["samples_ms"]), "sha256": sha[n]}
            for n, v in res.items()}
    write_json_atomic(args.out, {
        "command": command_line(prog="python benchmarks/int8-cpu-vnni/latency.py"),
        "method": "batch 1, OnnxRuntimeRunner (ORT_ENABLE_ALL, 1 intra-op thread), random 1x3x32x32 input; %d "
                  "interleaved rounds (order reversed every other round), %.1f s timed per model and round after "
                  "0.3 s warm-up; median_ms = median of the round medians" % (args.rounds, args.seconds),
        "onnxruntime": ort.__version__, "cpu": m0["cpu"], "cores": m0["cores"], "cpu_flags": _cpu_flags(),
        "loadavg_start": m0["loadavg"], "loadavg_end": machine()["loadavg"],
        "note": "shared 2-core CPU (a training run and other engineers): absolute times are inflated; compare "
                "the rows, which shared the load", "rows": rows})
    for n, v in rows.items():
        print("%-36s median %.3f ms" % (n, v["median_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
