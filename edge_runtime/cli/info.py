"""Show what this machine has for edge-runtime: Jetson/JetPack, TensorRT, CUDA, ONNX Runtime, OpenCV, backends.

Reports the platform, the Jetson model and its JetPack/L4T release (from /proc/device-tree/model and
/etc/nv_tegra_release, or dpkg's nvidia-l4t-core), Python, numpy, TensorRT, CUDA (cuda-python, pycuda,
nvcc, /usr/local/cuda/version.json), ONNX Runtime and its execution providers, OpenCV and whether it was
built with GStreamer (csi:// needs it), torch; then which backends (tensorrt, onnxruntime, torch), sinks
(console, jsonl, udp, gpio, ros2, callback) and sources are usable here, and for each missing one what to
install (the JetPack apt package on a Jetson, the pip extra elsewhere). A module that fails to import is
reported as broken, never a crash. Exit code 0 whatever is missing.

Examples:
  edge-runtime info                      # the report, as text
  edge-runtime info --format json        # the same as JSON (for scripts and bug reports)
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format (default text)")


def run(args: argparse.Namespace) -> int:
    from ..info import collect, format_json, format_text

    info = collect()
    print(format_json(info) if args.format == "json" else format_text(info))
    return 0
