#!/usr/bin/env python3
"""How many of the demo clip's images and frames each bundled build classifies right (the README's figures).

    python benchmarks/demo_clip_accuracy.py      # -> benchmarks/demo_clip_accuracy.json and .md

The clip is deploy/demo/cifar10-demo.mp4 with its ground truth deploy/demo/cifar10-demo.json (50 CIFAR-10 test
images, 15 frames each). Every frame is decoded, preprocessed as the runtime does and inferred once
(edge_runtime.score.model_outputs) by ONNX Runtime, 1 thread; a frame is right when its top-1 class is the image's
label, an image is right when most of its frames are. This is top-1 on upscaled, H.264-compressed video frames, not
the test-set accuracy in the manifests (that one is on the exact test images).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ("engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx", "engines/bundled/mobilenetv2_cifar_x0_5.onnx")
CLIP = "deploy/demo/cifar10-demo.json"


def measure(model: str) -> Dict[str, Any]:
    from edge_runtime.backends.onnxrt import OnnxRuntimeRunner
    from edge_runtime.manifest import for_artifact
    from edge_runtime.scenario import load
    from edge_runtime.score import model_outputs

    sc = load(ROOT / CLIP)
    man = for_artifact(ROOT / model)
    names: List[str] = list(man["dataset"]["class_names"])
    with OnnxRuntimeRunner(ROOT / model, threads=1) as runner:
        pred = model_outputs(sc, runner, man).argmax(1)
    images = []
    for im in sc.meta["images"]:
        a, b = im["frames"]
        right = int((pred[a:b] == names.index(im["label"])).sum())
        top = names[int(np.bincount(pred[a:b], minlength=len(names)).argmax())]
        images.append({"index": im["index"], "label": im["label"], "frames": b - a, "frames_right": right,
                       "right": right * 2 > (b - a), "most_frames_said": top})
    return {"model": model, "backend": "onnxruntime, 1 thread", "images": len(images),
            "images_right": sum(i["right"] for i in images),
            "frames": sum(i["frames"] for i in images), "frames_right": sum(i["frames_right"] for i in images),
            "wrong": [i for i in images if not i["right"]], "per_image": images}


def main() -> int:
    from edge_runtime.bench import evidence
    from edge_runtime.fsio import write_json_atomic, write_text_atomic

    res = {"command": "python benchmarks/demo_clip_accuracy.py", "clip": CLIP, "evidence": evidence(),
           "results": [measure(m) for m in MODELS]}
    write_json_atomic(ROOT / "benchmarks" / "demo_clip_accuracy.json", res)
    md = ["# The demo clip, classified frame by frame", "", "Command: `%s` (ONNX Runtime, 1 thread); JSON: "
          "`benchmarks/demo_clip_accuracy.json` (commit %s)." % (res["command"], (res["evidence"]["code"].get("commit")
                                                                                  or "?")[:12]), "",
          "| model | images right (majority of frames) | frames right | images wrong (label -> most frames said) |",
          "|---|---|---|---|"]
    for r in res["results"]:
        md.append("| `%s` | %d of %d | %d of %d | %s |" % (
            r["model"], r["images_right"], r["images"], r["frames_right"], r["frames"],
            ", ".join("%s (test %d) -> %s" % (w["label"], w["index"], w["most_frames_said"]) for w in r["wrong"]) or "-"))
        print("%s: %d of %d images, %d of %d frames" % (r["model"], r["images_right"], r["images"], r["frames_right"],
                                                        r["frames"]))
    write_text_atomic(ROOT / "benchmarks" / "demo_clip_accuracy.md", "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
