"""Print the markdown table of benchmarks/quantization.md from the artifacts quantization.sh wrote.

Usage: .venv/bin/python benchmarks/quantization_table.py [engines/bench]
Accuracy comes from each file's manifest (measured with ONNX Runtime on the full CIFAR-10 test set by
`edge-runtime quantize`, FP32 by the same code); latency from `edge-runtime eval` reports (batch 1).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "engines/bench")
print("| model | precision | target | top-1 full (10k) | top-1 first 1000 | drop vs FP32 | size MB | p50 ms | p99 ms | speed-up vs FP32 (p50) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for fp32 in sorted(root.glob("*.onnx")):
    if fp32.name.count(".") != 1:
        continue
    stem = fp32.name[:-5]
    base_lat = None
    for suffix, prec, target in ((".onnx", "fp32", "-"), (".int8-tensorrt.onnx", "int8", "tensorrt"),
                                 (".int8-cpu.onnx", "int8", "cpu"), (".fp16.onnx", "fp16", "fp16 (TRT 11)")):
        f = root / (stem + suffix)
        side = f.with_name(f.name + ".json")
        if not side.is_file():
            continue
        m = json.loads(side.read_text())
        acc = m.get("accuracy") or {}
        if prec == "fp32":
            q = json.loads((root / (stem + ".int8-cpu.onnx.json")).read_text())["accuracy"]["fp32_onnx"] if (root / (stem + ".int8-cpu.onnx.json")).is_file() else {}
            full, first, drop = q.get("top1"), q.get("top1_first1000"), 0.0
        else:
            full, first, drop = acc.get("top1"), acc.get("top1_first1000"), acc.get("drop_vs_fp32")
        ev = root / "eval" / (f.name + ".eval.json")
        lat = json.loads(ev.read_text()).get("latency") if ev.is_file() else None
        if prec == "fp32" and lat:
            base_lat = lat["p50_ms"]
        fmt = lambda v, d=2: "-" if v is None else ("%." + str(d) + "f") % v  # noqa: E731
        print("| %s | %s | %s | %s | %s | %s | %.2f | %s | %s | %s |" % (
            stem, prec, target, fmt(full), fmt(first), fmt(drop), f.stat().st_size / 1e6,
            fmt(lat["p50_ms"], 3) if lat else "-", fmt(lat["p99_ms"], 3) if lat else "-",
            ("%.2fx" % (base_lat / lat["p50_ms"])) if (lat and base_lat) else "-"))
