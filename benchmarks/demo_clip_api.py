"""Frames classified right on the bundled demo clip through the Python API, every frame (rate 0), per bundled build.

Checks issue #13's "the API squashes the clip": Runtime.from_config must play the 160x160 clip at its own size, as
`edge-runtime run` does (the config's 320x180 is its camera's). Run from any directory:

    python benchmarks/demo_clip_api.py --out benchmarks/demo_clip_api.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from edge_runtime import resources
from edge_runtime.fsio import write_json_atomic
from edge_runtime.runtime import Runtime

MODELS = ("mobilenetv2_cifar_x0_5.int8-cpu.onnx", "mobilenetv2_cifar_x0_5.onnx")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    truth = json.loads(resources.path("demo", "cifar10-demo.json").read_text())
    label = {f: im["label"] for im in truth["images"] for f in range(*im["frames"])}
    rows = []
    for name in MODELS:
        with Runtime.from_config(resources.path("configs", "vehicle.yaml"), model=resources.path("bundled", name),
                                 source=resources.path("demo", "cifar10-demo.mp4"),
                                 overrides={"source.rate": 0, "sinks": []}) as rt:
            ds = [d for d in rt.decisions() if d.class_name is not None and d.frame_index is not None]
            size = (rt.config.source.width, rt.config.source.height)
        right = sum(d.class_name == label.get(d.frame_index) for d in ds)
        rows.append({"model": name, "backend": "onnxruntime", "frames": len(ds), "frames_right": right,
                     "source_size_override": list(size)})
        print("%s: %d/%d frames right (config size override %s: the clip's own size)" % (name, right, len(ds), size))
    if args.out:
        write_json_atomic(args.out, {"command": "python benchmarks/demo_clip_api.py --out %s" % args.out,
                                     "host": platform.platform(), "python": sys.version.split()[0], "rows": rows,
                                     "note": "frames the runtime decided with the ground-truth class of "
                                             "deploy/demo/cifar10-demo.json; Python API, rate 0 (every frame)"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
