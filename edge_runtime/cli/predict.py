"""Classify images one by one: class, confidence, top-k and the action the config's rules give for each.

IMAGE is an image file, a folder of images (sorted, not recursive) or a quoted glob ('photos/*.jpg');
several may be given. Every image is reported, in order: an unreadable one gets an error line and
makes the exit code 1. The action is what the policy's rules ask for that image alone (no debounce,
no timing), i.e. what `edge-runtime run` would decide for a frame holding it once the debounce agrees.

The model runs with the runtime's loader and its manifest's preprocessing, as in `run`. Defaults: the
bundled MobileNetV2 x0.5 build for the backend (ONNX Runtime: the INT8 CPU build) and the bundled
vehicle.yaml; both come with the package and work from any directory. Nothing is written.

Examples:
  edge-runtime predict photo.jpg
  edge-runtime predict photos/ --topk 3
  edge-runtime predict 'photos/*.png' --json > predictions.jsonl
  edge-runtime predict img.png --model engines/bundled/mobilenetv2_cifar_x0_5.onnx --config deploy/configs/vehicle.yaml
  edge-runtime predict wide.png --regions --config deploy/configs/vehicle-regions.yaml   # one line per region
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List

from .. import resources
from ..config import flag_type
from ..errors import EdgeRuntimeError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file, folder of images or quoted glob")
    p.add_argument("--model", default=None, help="artifact: .onnx, .engine or .pt (default: the bundled model's "
                   "build for the backend)")
    p.add_argument("--config", default=None, help="runtime YAML whose policy gives the action (default: the bundled "
                   "vehicle.yaml)")
    p.add_argument("--backend", choices=["auto", "onnxruntime", "tensorrt", "torch"], default="auto")
    p.add_argument("--topk", type=flag_type(int, lo=1), default=5, metavar="K", help="classes to list per image (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout (JSON lines)")
    p.add_argument("--threads", type=flag_type(int, lo=0), default=1, help="CPU threads for ONNX Runtime / PyTorch (default 1)")
    p.add_argument("--regions", action="store_true", help="classify each region of the config's regions: on its own "
                   "(one line per region, IMAGE#REGION, with the rules it names), as run does")


def run(args: argparse.Namespace) -> int:
    from ..predict import Predictor, find_images
    from .run import default_config, default_model

    if args.topk < 1:
        raise EdgeRuntimeError("--topk %d: expected 1 or more" % args.topk)
    paths: List[str] = []
    for spec in args.images:  # every spec is checked before the model loads
        paths.extend(find_images(spec))
    model = str(resources.resolve(args.model) if args.model else default_model(args.backend))
    config = resources.resolve(args.config) if args.config else default_config()
    pred = Predictor.from_files(model, config, args.backend, args.topk, args.threads, regions=args.regions)
    failed = 0
    if not args.json:
        print("edge-runtime predict: %d image(s), %s (%s), policy %s" % (
            len(paths), model, pred.runner.name, config), flush=True)
    with pred:
        for r in pred.predict_paths(paths):
            failed += r.error is not None
            print(json.dumps(r.to_dict()) if args.json else r.summary(), flush=True)
    if failed:
        sys.stderr.write("edge-runtime predict: %d of %d image(s) could not be classified\n" % (failed, len(paths)))
        return 1
    return 0
