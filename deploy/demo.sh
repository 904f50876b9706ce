#!/usr/bin/env bash
# `make demo`: the main job, headless, on a fresh machine (no GPU, no camera): `edge-runtime run` with the bundled
# MobileNetV2 x0.5 (its INT8 ONNX build for CPUs, on ONNX Runtime) and deploy/configs/vehicle.yaml on the bundled demo clip
# (deploy/demo/cifar10-demo.mp4: 50 CIFAR-10 test images from 0-999, 25 s at 30 FPS; ground truth in its .json).
# Prints one line per change of decision, then the timing report, then the score of the run's decisions against
# the clip's labels (edge-runtime score). The JSONL event log and the score land in runs/vehicle/.
set -euo pipefail
BIN=${1:-.venv/bin}
MODEL=engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx   # what `edge-runtime run` picks for ONNX Runtime
"$BIN/python" - "$MODEL" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + ".json"))
acc, acc32 = m["accuracy"]["top1"], m["accuracy"]["fp32_onnx"]["top1"]  # both measured with ONNX Runtime
print("model: %s (%.2f M params, %.1f M MACs), %s build: %.2f %% top-1 on the CIFAR-10 test set with ONNX Runtime "
      "(the FP32 ONNX: %.2f %%; benchmarks/quantization.md)" % (m["model"]["name"], m["model"]["params"] / 1e6,
                                                       m["model"]["macs"] / 1e6, m["precision"].upper(), acc, acc32))
clip = json.load(open("deploy/demo/cifar10-demo.json"))
print("clip: %d CIFAR-10 test images, %d frames at %d FPS; expected actions by segment: %s"
      % (len(clip["images"]), clip["frames"], clip["fps"], clip["rule"].split(" of ")[0].replace("segments ", "")))
PY
"$BIN/edge-runtime" run deploy/demo/cifar10-demo.mp4 --model "$MODEL" --config deploy/configs/vehicle.yaml
# How good were those decisions? The clip is a labelled scenario: score the run's JSONL log against it
# (reaction to each STOP segment, missed STOPs, wrong-action time, chatter; a timeline PNG in runs/vehicle/score/).
echo
exec "$BIN/edge-runtime" score deploy/demo/cifar10-demo.json --events runs/vehicle/events.jsonl --out runs/vehicle/score
