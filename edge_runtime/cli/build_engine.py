"""Build a TensorRT engine from an exported ONNX (on the device), or the ONNX Runtime CPU artifacts.

  --precision fp32|fp16|int8
      fp16: the FP16 builder flag on TensorRT <= 10; on TensorRT 11 pass the FP16 ONNX (quantize --target fp16)
      int8: from the Q/DQ ONNX (quantize --target tensorrt; explicit quantization), or, on TensorRT <= 10,
            --calibrator entropy with the FP32 ONNX and a calibration set (--calib; default: the bundled
            calib/ sets, found from any working directory); the calibration cache lands in <--out>/calib-cache/,
            keyed to the ONNX sha256 and the TensorRT version
            (the CPU-layout .int8-cpu.onnx is refused before TensorRT is imported, naming the command that makes
            the TensorRT layout)
  --batch N  for a dynamic-batch ONNX: optimization profile min 1, opt N, max N (default: opt 1, max --max-batch)
  --workspace MB, --timing-cache PATH (reused and updated), --dla-core N (Jetson AGX/NX), --version-compatible (8.6+)

The engine lands in --out (default engines/) as
<model>.<precision>[-qdq|-calib][.b<min>-<opt>-<max>].trt<version>.<gpu>-sm<cc>.engine with a JSON manifest
(how INT8 was made and the batch profile are in the name and the manifest, so engines never collide). An engine only runs on the TensorRT version and GPU it was built with; the runtime refuses
others and prints the command to rebuild. Without TensorRT this fails in one line saying how to get it;
--backend onnxruntime makes the CPU artifacts instead (FP32 ONNX copy + INT8 cpu-layout or FP16 ONNX).

Examples:
  edge-runtime build-engine engines/bundled/mobilenetv2_cifar_x0_5.onnx --precision fp16 --timing-cache engines/timing.cache
  edge-runtime build-engine engines/bundled/mobilenetv2_cifar_x0_5.int8-tensorrt.onnx --precision int8
  edge-runtime build-engine engines/mnv2.onnx --precision int8 --calibrator entropy --calib calib/cifar10-train-1000.npz
  edge-runtime build-engine engines/bundled/mobilenetv2_cifar_x0_5.onnx --precision fp16 --batch 8
  edge-runtime build-engine engines/mnv2.onnx --precision int8 --backend onnxruntime --out engines/cpu
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help=".onnx written by edge-runtime export or quantize")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], required=True)
    p.add_argument("--calibrator", choices=["entropy"], default=None, help="implicit INT8 calibration (TensorRT <= 10)")
    p.add_argument("--calib", type=Path, default=None, help="calibration set .npz or folder (default: the bundled calib/ sets)")
    p.add_argument("--workspace", type=flag_type(int, lo=1), default=None, metavar="MB", help="builder workspace limit in MiB")
    p.add_argument("--timing-cache", type=Path, default=None, help="timing cache file to reuse and update")
    p.add_argument("--dla-core", type=flag_type(int, lo=0), default=None, help="build for this DLA core (GPU fallback on)")
    p.add_argument("--version-compatible", action="store_true", help="version-compatible engine (TensorRT 8.6+)")
    p.add_argument("--max-batch", type=flag_type(int, lo=1), default=8, help="profile max batch for a dynamic-batch ONNX (default 8)")
    p.add_argument("--batch", type=flag_type(int, lo=1), default=None, metavar="N",
                   help="optimization profile min 1 / opt N / max N for a dynamic-batch ONNX (tuned for batch N)")
    p.add_argument("--out", type=Path, default=Path("engines"), help="output folder (default engines/)")
    p.add_argument("--backend", choices=["tensorrt", "onnxruntime"], default="tensorrt")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset root for measuring CPU artifacts")
    p.add_argument("--force", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    from ..engine.build import build_engine
    from ..fsio import check_writable

    check_writable(args.out, "--out", directory=True)  # before building

    res = build_engine(args.model, args.precision, args.calibrator, args.calib, args.workspace, args.timing_cache,
                       args.dla_core, args.version_compatible, args.out, args.backend, args.force, args.max_batch,
                       args.data_dir, command_line(args), batch=args.batch)
    for path, m in zip(res.paths, res.manifests):
        print("wrote %s (%s, %s) and its manifest" % (path, m["kind"], m["precision"]))
    for n in res.notes:
        print(n)
    return 0
