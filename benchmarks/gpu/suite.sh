#!/usr/bin/env bash
# The GPU training suite behind benchmarks/models.md (issue: trained models that beat the paper).
#
# Runs on a machine with one CUDA GPU, PyTorch, and the CIFAR-10 transport files copied to
# $CIFAR_SRC (the shared/data files: *.cmz.xz, unpack-cifar, cifar-manifest.json). Everything it
# produces lands in $R; a compact copy (weights of the small models, metrics, manifests, logs) is
# packed into $OUT for the trip back.
#
#   BUDGET=350 benchmarks/gpu/suite.sh          # phase 1: speed run alone; phase 2: the rest at once
#   ONLY="mobilenetv2_cifar_x0_5 mobilenetv2_paper_kd" SKIP_SPEED=1 BUDGET=420 benchmarks/gpu/suite.sh
#                                               # phase 2 with only these runs: fewer runs share the GPU,
#                                               # so each gets more epochs in the same budget
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here" || exit 1
export PYTHONPATH=$here PYTHONUNBUFFERED=1
CIFAR_SRC=${CIFAR_SRC:-/tmp/cifar}
DATA=${DATA:-/tmp/data}
R=${R:-/tmp/runs}
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${BUDGET:-350}        # seconds of training per phase-2 run
SPEED=${SPEED:-55}           # seconds of training for the time-to-accuracy run
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
mkdir -p "$R" "$OUT"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 ))s] $*" | tee -a "$R/suite.log"; }

if [ ! -f "$DATA/cifar-10-batches-py/test_batch" ]; then
  stamp "unpacking CIFAR-10 from $CIFAR_SRC"
  "$PY" "$CIFAR_SRC/unpack-cifar" "$DATA" --parts present > "$R/unpack.log" 2>&1 || { cat "$R/unpack.log"; exit 1; }
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$R/gpu.txt" 2>&1 || echo "no nvidia-smi" > "$R/gpu.txt"
"$PY" -c "import torch,sys;print('python',sys.version.split()[0],'torch',torch.__version__,'cuda',torch.version.cuda)" >> "$R/gpu.txt"

ONLY=${ONLY:-}               # space-separated run names of phase 2 (resnet34, mobilenetv2_cifar, ..., transfer); empty: all
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

train() {  # name budget_s [flags...]
  local name=$1 budget=$2; shift 2
  stamp "start $name (budget ${budget}s)"
  timeout $((budget + 120)) "$PY" -m edge_runtime train --data-dir "$DATA" --out "$R/$name" --quiet --device "$DEVICE" \
      --time-budget "$budget" "$@" > "$R/$name.log" 2>&1
  stamp "end $name rc=$? $(tail -n 1 "$R/$name.log")"
}
train_epochs() {  # name max_s [flags...]  (epoch-bounded, wall-clock guarded)
  local name=$1 cap=$2; shift 2
  stamp "start $name"
  timeout "$cap" "$PY" -m edge_runtime train --data-dir "$DATA" --out "$R/$name" --quiet --device "$DEVICE" "$@" > "$R/$name.log" 2>&1
  stamp "end $name rc=$? $(tail -n 1 "$R/$name.log")"
}

if [ "${SKIP_SPEED:-0}" != 1 ]; then
  # Phase 1, alone on the GPU: how far MobileNetV2-CIFAR gets in about a minute.
  ts=$SECONDS
  train speed_mobilenetv2_cifar "$SPEED" --config train/configs/recipes/mobilenetv2_cifar_speed.yaml
  echo "wall_s $(( SECONDS - ts )) (process start to exit: data load, training, final evaluation)" > "$R/speed_mobilenetv2_cifar.wall"
fi

# Phase 2: the long runs share the GPU (each has its own time budget, so all end together).
want resnet34 && train resnet34 "$BUDGET" --config train/configs/recipes/resnet34.yaml &
want mobilenetv2_cifar && train mobilenetv2_cifar "$BUDGET" --config train/configs/recipes/mobilenetv2_cifar.yaml &
want mobilenetv2_cifar_x0_5 && train mobilenetv2_cifar_x0_5 "$BUDGET" --config train/configs/recipes/mobilenetv2_cifar_x0_5.yaml &
want mobilenetv2_paper && train mobilenetv2_paper "$BUDGET" --config train/configs/recipes/mobilenetv2_paper_gpu.yaml &
# the paper's model distilled from the two bundled CIFAR MobileNetV2s; on a GPU the teachers see every batch
want mobilenetv2_paper_kd && train mobilenetv2_paper_kd "$BUDGET" --config train/configs/recipes/mobilenetv2_paper_distill.yaml \
    --distill-targets online --batch-size 512 --lr 0.4 &
want transfer && (
  pb=$(( BUDGET / 3 ))
  train transfer_parent "$pb" --config train/configs/recipes/transfer_parent_animals.yaml
  left=$(( BUDGET - pb - 30 )); [ "$left" -lt 60 ] && left=60
  train_epochs transfer_child "$left" --config train/configs/recipes/transfer_child_vehicles.yaml \
      --init-from "$R/transfer_parent/best.pt" --freeze backbone --unfreeze-at 3 &
  train_epochs transfer_scratch "$left" --config train/configs/recipes/transfer_child_vehicles.yaml &
  wait
) &
wait
stamp "training done"
"$PY" benchmarks/gpu/collect.py "$R" "$OUT" 2>&1 | tee -a "$R/suite.log"
stamp "suite done"
