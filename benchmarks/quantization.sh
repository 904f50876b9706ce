#!/usr/bin/env bash
# Reproduces benchmarks/quantization.md: export -> quantize (tensorrt, cpu, fp16) -> batch-1 latency, per model.
# Usage: DATA=/work/data bash benchmarks/quantization.sh [model ...]   (default: the three trained checkpoints)
set -euo pipefail
DATA=${DATA:-${EDGE_RUNTIME_DATA:-/work/data}}
ER=${ER:-.venv/bin/python -m edge_runtime}
OUT=${OUT:-engines/bench}
MODELS=${*:-mobilenetv2_cifar_x0_5 mobilenetv2_paper mobilenetv2_cifar}
mkdir -p "$OUT"
for m in $MODELS; do
  $ER export engines/checkpoints/$m.pt --out $OUT/$m.onnx --data-dir "$DATA" --parity-images 1000 --force
  $ER quantize $OUT/$m.onnx --target tensorrt --data-dir "$DATA" --force
  $ER quantize $OUT/$m.onnx --target cpu --data-dir "$DATA" --force
  $ER quantize $OUT/$m.onnx --target fp16 --data-dir "$DATA" --force
  for f in $OUT/$m.onnx $OUT/$m.int8-tensorrt.onnx $OUT/$m.int8-cpu.onnx $OUT/$m.fp16.onnx; do
    $ER eval $f --data-dir "$DATA" --limit 1000 --latency-iters 500 --out $OUT/eval
  done
done
