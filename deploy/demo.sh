#!/usr/bin/env bash
# `make demo`: the zoo table, then a short LeNet-5 training on CIFAR-10 (real data when unpacked in
# DATA, else a generated stand-in), then the bundled MobileNetV2 checkpoint's manifest.
set -euo pipefail
BIN=${1:-.venv/bin}
DATA=${2:-data}
ER="$BIN/edge-runtime"
echo "== the model zoo (params, multiply-adds at 32x32, depthwise-separable saving) =="
"$ER" models
if [ ! -f "$DATA/cifar-10-batches-py/test_batch" ]; then
  DATA=runs/demo/fixture-data
  "$BIN/python" -c "from train.data import write_fixture; write_fixture('$DATA', 'cifar10', 2000, 500)"
  echo "(no CIFAR-10 found: training on a generated stand-in in $DATA)"
fi
rm -rf runs/demo/lenet5
echo "== a 3-epoch LeNet-5 run on $DATA (CPU) =="
"$ER" train --config train/configs/recipes/lenet5.yaml --epochs 3 --data-dir "$DATA" --device cpu --out runs/demo/lenet5 --quiet
echo "outputs: $(ls runs/demo/lenet5 | tr '\n' ' ')"
echo "== the bundled MobileNetV2 (CIFAR strides, x0.5) trained on one GPU =="
"$BIN/python" - <<'PY'
from train import checkpoint
m = checkpoint.load("engines/checkpoints/mobilenetv2_cifar_x0_5.pt")["manifest"]
a = m["accuracy"]
print("%s: %.2f %% on the CIFAR-10 test set, %.1f %% on its exact first 1000; %.2f M params, %.1f M MACs"
      % (m["model"]["name"], a["top1"], a["top1_first1000"], m["model"]["params"] / 1e6, m["model"]["macs"] / 1e6))
print("measured with:", a["command"])
PY
