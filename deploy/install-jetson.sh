#!/usr/bin/env bash
# Install edge-runtime on a Jetson (JetPack 5.1+), from this checkout. Safe to run again: every step checks
# what is already there (an upgrade of the checkout or of JetPack is picked up; existing engines are kept).
#
#   deploy/install-jetson.sh                      # venv + package + version check + engines, in /opt/edge-runtime
#   deploy/install-jetson.sh --systemd --udev     # also: user `edge`, /etc/edge-runtime/robot.yaml, the systemd
#                                                 # unit (enabled, not started) and the example udev rule
#
# What it does:
#   1. checks this is a Jetson (/etc/nv_tegra_release) with JetPack 5.1+ (L4T R35.2+), else exits 1 saying why;
#   2. apt-installs what is missing of python3-venv, python3-pip, JetPack's TensorRT bindings (python3-libnvinfer)
#      and JetPack's OpenCV (nvidia-opencv, built with GStreamer: csi:// needs it). Never pip's OpenCV;
#   3. copies the runtime to PREFIX/src and makes PREFIX/venv with --system-site-packages (to see JetPack's
#      TensorRT and OpenCV), then pip-installs edge-runtime[jetson,trt] (not [cv]), numpy<2 (JetPack's cv2 and
#      tensorrt are built against numpy 1.x), cuda-python for this CUDA major, and onnx (build-engine reads the
#      ONNX manifest with it);
#   4. checks the versions (edge-runtime info; TensorRT and OpenCV with GStreamer must import);
#   5. builds the bundled model's engines ON THIS DEVICE (an engine is tied to its TensorRT version and GPU):
#      FP16 from the FP32 ONNX, INT8 from the Q/DQ ONNX (.int8-tensorrt.onnx), into PREFIX/engines.
#
# Not run on a Jetson during this repository's development (none was available): read it before you run it.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/install-jetson.sh [--prefix DIR] [--config FILE] [--systemd] [--udev] [--no-engines] [--dry-run]

  --prefix DIR    where the runtime goes (default /opt/edge-runtime: src/, venv/, engines/)
  --config FILE   the config installed as /etc/edge-runtime/robot.yaml with --systemd, if none is there yet
                  (default deploy/configs/vehicle.yaml)
  --systemd       create the user `edge` (groups video, gpio), install deploy/edge-runtime.service, enable it
  --udev          install deploy/99-edge-runtime-camera.rules (edit its idVendor/idProduct first)
  --no-engines    do not build the TensorRT engines
  --dry-run       print the commands instead of running them (after the platform checks)
EOF
}

die() {
    echo "install-jetson: error: $*" >&2
    exit 1
}
say() { echo "install-jetson: $*"; }

DRY_RUN=0
run() {
    echo "+ $*"
    if [ "$DRY_RUN" = 0 ]; then "$@"; fi
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
PREFIX=/opt/edge-runtime
CONFIG="$REPO/deploy/configs/vehicle.yaml"
WITH_SYSTEMD=0
WITH_UDEV=0
BUILD_ENGINES=1
# where the L4T release is read from (a variable so that the checks can be tested off a Jetson)
NV_TEGRA_RELEASE=${NV_TEGRA_RELEASE:-/etc/nv_tegra_release}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
        --systemd) WITH_SYSTEMD=1; shift ;;
        --udev) WITH_UDEV=1; shift ;;
        --no-engines) BUILD_ENGINES=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# ---------------------------------------------------------------------------------------- 1. the platform
if [ ! -r "$NV_TEGRA_RELEASE" ]; then
    die "this is not a Jetson ($NV_TEGRA_RELEASE not found). This script installs edge-runtime on a Jetson with
JetPack 5.1 or newer. On a workstation: python3 -m venv .venv && .venv/bin/pip install -e '.[train,onnx,cv]'"
fi
release_line=$(head -n 1 "$NV_TEGRA_RELEASE")
re='R([0-9]+) \(release\), REVISION: ([0-9]+)\.([0-9]+)'
if [[ ! $release_line =~ $re ]]; then
    die "cannot read the L4T release from $NV_TEGRA_RELEASE: '$release_line'"
fi
L4T_MAJOR=${BASH_REMATCH[1]}
L4T_MINOR=${BASH_REMATCH[2]}
L4T="R$L4T_MAJOR.$L4T_MINOR.${BASH_REMATCH[3]}"
case "$L4T_MAJOR" in
    35)
        if [ "$L4T_MINOR" -lt 2 ]; then
            die "L4T $L4T is JetPack 5.0.x: edge-runtime needs JetPack 5.1 or newer (L4T R35.2.1+, TensorRT 8.5+). Upgrade JetPack."
        fi
        JETPACK=5.1 ;;
    36) JETPACK=6 ;;
    38) JETPACK=7 ;;
    *)
        if [ "$L4T_MAJOR" -lt 35 ]; then
            die "L4T $L4T (JetPack 4 or older) is not supported: edge-runtime needs JetPack 5.1 or newer (L4T R35.2.1+, TensorRT 8.5+, Python 3.8+)."
        fi
        say "warning: L4T $L4T is newer than what this script knows (JetPack 5.1, 6, 7); continuing"
        JETPACK="(L4T $L4T)" ;;
esac
MODEL=$({ tr -d '\0' </proc/device-tree/model; } 2>/dev/null || echo "unknown Jetson")
say "$MODEL, L4T $L4T (JetPack $JETPACK)"

command -v python3 >/dev/null || die "python3 not found (JetPack ships it: sudo apt install python3)"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' ||
    die "python3 is $(python3 -V 2>&1): edge-runtime needs Python 3.8+"

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || [ "$DRY_RUN" = 1 ] || die "not root and no sudo: run this as root or install sudo"
    SUDO=sudo
fi

# -------------------------------------------------------------------------------------- 2. JetPack packages
missing=()
for pkg in python3-venv python3-pip; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
python3 -c 'import tensorrt' 2>/dev/null || missing+=(python3-libnvinfer python3-libnvinfer-dev)
python3 -c 'import cv2' 2>/dev/null || missing+=(nvidia-opencv)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing from JetPack's apt repository: ${missing[*]}"
    run $SUDO apt-get update
    run $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# ------------------------------------------------------------------------------- 3. source, venv, package
SRC="$PREFIX/src"
VENV="$PREFIX/venv"
ENGINES="$PREFIX/engines"
if [ ! -d "$PREFIX" ] || [ ! -w "$PREFIX" ]; then
    run $SUDO mkdir -p "$PREFIX"
    run $SUDO chown "$(id -u):$(id -g)" "$PREFIX"
fi
run mkdir -p "$SRC/engines" "$SRC/deploy" "$ENGINES"
run rm -rf "$SRC/edge_runtime"  # no stale modules from an older checkout
run cp -a "$REPO/setup.py" "$REPO/setup.cfg" "$REPO/README.md" "$REPO/edge_runtime" "$SRC/"
run cp -a "$REPO/engines/bundled" "$SRC/engines/"
run cp -a "$REPO/deploy/configs" "$REPO/deploy/demo" "$SRC/deploy/"

if [ -x "$VENV/bin/python" ] && grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg"; then
    say "venv $VENV exists (with system site-packages)"
else
    run python3 -m venv --clear --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"

CUDA_MAJOR=""
if [ -r /usr/local/cuda/version.json ]; then
    CUDA_MAJOR=$(python3 -c 'import json; print(json.load(open("/usr/local/cuda/version.json"))["cuda"]["version"].split(".")[0])' 2>/dev/null || true)
fi
if [ -z "$CUDA_MAJOR" ]; then
    case "$L4T_MAJOR" in 35) CUDA_MAJOR=11 ;; 36) CUDA_MAJOR=12 ;; *) CUDA_MAJOR=13 ;; esac
fi
say "CUDA $CUDA_MAJOR: cuda-python>=$CUDA_MAJOR,<$((CUDA_MAJOR + 1))"
run "$PY" -m pip install --upgrade pip  # JetPack 5's pip 20.0 misses newer wheel tags
run "$PY" -m pip install -e "${SRC}[jetson,trt]" "numpy>=1.19,<2" "cuda-python>=$CUDA_MAJOR,<$((CUDA_MAJOR + 1))" "onnx>=1.14"
# pip's OpenCV (pulled in by something else) would shadow JetPack's, which has GStreamer
for wheel in opencv-python opencv-python-headless opencv-contrib-python opencv-contrib-python-headless; do
    if [ "$DRY_RUN" = 0 ] && "$PY" -m pip show -q "$wheel" >/dev/null 2>&1; then
        say "removing pip's $wheel from the venv: it has no GStreamer and shadows JetPack's OpenCV"
        run "$PY" -m pip uninstall -y "$wheel"
    fi
done

# ---------------------------------------------------------------------------------------------- 4. check
run "$VENV/bin/edge-runtime" info
if [ "$DRY_RUN" = 0 ]; then
    "$PY" -c 'import tensorrt; assert hasattr(tensorrt, "Builder")' 2>/dev/null ||
        die "TensorRT does not import in $VENV: sudo apt install python3-libnvinfer (see edge-runtime info above)"
    "$PY" -c 'import re, sys, cv2; sys.exit(0 if re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()) else 1)' ||
        say "warning: this OpenCV has no GStreamer: csi:// will not open (see edge-runtime info above)"
fi

# -------------------------------------------------------------------------------------- 5. engines, here
build_engine() {  # ONNX PRECISION: build unless this TensorRT/GPU's engine is already there
    local out rc=0
    echo "+ edge-runtime build-engine $1 --precision $2 --out $ENGINES"
    if [ "$DRY_RUN" = 1 ]; then return 0; fi
    out=$("$VENV/bin/edge-runtime" build-engine "$1" --precision "$2" --out "$ENGINES" \
        --timing-cache "$ENGINES/timing.cache" 2>&1) || rc=$?
    echo "$out"
    if [ "$rc" != 0 ]; then
        if grep -q "already exists" <<<"$out"; then
            say "the $2 engine for this TensorRT and GPU is already built"
        else
            die "build-engine $1 --precision $2 failed (exit $rc)"
        fi
    fi
}
if [ "$BUILD_ENGINES" = 1 ]; then
    build_engine "$SRC/engines/bundled/mobilenetv2_cifar_x0_5.onnx" fp16
    build_engine "$SRC/engines/bundled/mobilenetv2_cifar_x0_5.int8-tensorrt.onnx" int8
fi

# ------------------------------------------------------------------------------------ optional: systemd, udev
if [ "$WITH_SYSTEMD" = 1 ]; then
    run $SUDO groupadd -f gpio
    if id edge >/dev/null 2>&1; then
        run $SUDO usermod -a -G video,gpio edge
    else
        run $SUDO useradd --system --no-create-home --home-dir /var/lib/edge-runtime --shell /usr/sbin/nologin \
            --user-group --groups video,gpio edge
    fi
    run $SUDO chgrp -R edge "$ENGINES"  # the service may build a missing engine there
    run $SUDO chmod -R g+w "$ENGINES"
    run $SUDO install -d -m 0755 /etc/edge-runtime
    if [ -e /etc/edge-runtime/robot.yaml ]; then
        say "keeping the existing /etc/edge-runtime/robot.yaml"
    else
        run $SUDO install -m 0644 "$CONFIG" /etc/edge-runtime/robot.yaml
    fi
    # the unit's paths are /opt/edge-runtime's; another --prefix is written into the installed copy
    run $SUDO sh -c "sed 's#/opt/edge-runtime#$PREFIX#g' '$REPO/deploy/edge-runtime.service' > /etc/systemd/system/edge-runtime.service"
    run $SUDO systemctl daemon-reload
    run $SUDO systemctl enable edge-runtime.service
    say "installed edge-runtime.service (enabled). Edit /etc/edge-runtime/robot.yaml, then: sudo systemctl start edge-runtime && journalctl -u edge-runtime -f"
fi
if [ "$WITH_UDEV" = 1 ]; then
    run $SUDO install -m 0644 "$REPO/deploy/99-edge-runtime-camera.rules" /etc/udev/rules.d/99-edge-runtime-camera.rules
    run $SUDO udevadm control --reload-rules
    run $SUDO udevadm trigger --subsystem-match=video4linux
    say "udev rule installed: set its idVendor/idProduct (udevadm info --attribute-walk /dev/video0) for /dev/edge-camera"
fi
say "done. Try: $VENV/bin/edge-runtime run synthetic://?rate=30 --duration 10 --model $SRC/engines/bundled/mobilenetv2_cifar_x0_5.onnx --backend tensorrt --engines-dir $ENGINES"
