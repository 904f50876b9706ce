#!/usr/bin/env bash
# `make demo`: the main job, headless, on a fresh machine (no GPU, no camera): `edge-runtime run` with the bundled
# MobileNetV2 x0.5 ONNX model (ONNX Runtime, CPU) and deploy/configs/vehicle.yaml on the bundled demo clip
# (deploy/demo/cifar10-demo.mp4: 50 CIFAR-10 test images from 0-999, 25 s at 30 FPS; ground truth in its .json).
# Prints one line per change of decision, then the timing report. The JSONL event log lands in runs/vehicle/.
set -euo pipefail
BIN=${1:-.venv/bin}
"$BIN/python" - <<'PY'
import json
m = json.load(open("engines/bundled/mobilenetv2_cifar_x0_5.onnx.json"))
print("model: %s (%.2f M params, %.1f M MACs), 88.55 %% top-1 on the CIFAR-10 test set with ONNX Runtime FP32 "
      "(benchmarks/quantization.md)" % (m["model"]["name"], m["model"]["params"] / 1e6, m["model"]["macs"] / 1e6))
clip = json.load(open("deploy/demo/cifar10-demo.json"))
print("clip: %d CIFAR-10 test images, %d frames at %d FPS; expected actions by segment: %s"
      % (len(clip["images"]), clip["frames"], clip["fps"], clip["rule"].split(" of ")[0].replace("segments ", "")))
PY
exec "$BIN/edge-runtime" run deploy/demo/cifar10-demo.mp4 --model engines/bundled/mobilenetv2_cifar_x0_5.onnx \
  --config deploy/configs/vehicle.yaml
