#!/usr/bin/env python3
"""Make the bundled demo clip, deploy/demo/cifar10-demo.mp4, from CIFAR-10 TEST images 0-999.

    python deploy/make_demo_clip.py --data-dir data            # writes the .mp4 and its .json ground truth

The clip is 10 segments of 5 images; each segment shows one action group of deploy/configs/vehicle.yaml:

    GO   airplane, ship                              SLOW  automobile, truck
    STOP bird, cat, deer, dog, frog, horse

in the order GO SLOW STOP GO STOP SLOW STOP GO SLOW STOP. Within a segment the group's classes take turns,
and each class contributes its NEXT test image in index order (the first airplane of the test split,
then the second, ...): the images are fixed by this rule, not picked by what the model gets right, so
the demo shows the model's ordinary mistakes too. Each 32x32 image is upscaled 5x with nearest
neighbour (160x160: every CIFAR pixel is a 5x5 block, so the runtime's INTER_AREA resize back to 32x32
recovers it up to the codec's loss) and held for 15 frames (0.5 s) at 30 FPS: 750 frames, 25 s.

Beside the clip, cifar10-demo.json is a labelled scenario (edge_runtime/scenario.py; `edge-runtime score`
reads it): its segments, one per image, give the frame range [first, last + 1), the class, its test index and
the action vehicle.yaml's rules give that class; `images` lists the same per image. Needs numpy and OpenCV (cv2).
Scenarios with camera effects, cross-fades and unknown objects come from `edge-runtime scenario` (the same module).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUPS: Dict[str, List[str]] = {
    "GO": ["airplane", "ship"],
    "SLOW": ["automobile", "truck"],
    "STOP": ["bird", "cat", "deer", "dog", "frog", "horse"],
}
ORDER = ["GO", "SLOW", "STOP", "GO", "STOP", "SLOW", "STOP", "GO", "SLOW", "STOP"]
PER_SEGMENT = 5
FPS = 30
HOLD = 15
SCALE = 5
FIRST_N = 1000  # only test images 0-999


def plan(labels: np.ndarray, class_names: List[str]) -> List[Dict[str, object]]:
    """The clip's images, in order: (test index, label, expected action, segment)."""
    queues = {c: [int(i) for i in np.flatnonzero(labels[:FIRST_N] == class_names.index(c))] for c in class_names}
    turn = {g: 0 for g in GROUPS}
    out: List[Dict[str, object]] = []
    for seg, group in enumerate(ORDER):
        for _ in range(PER_SEGMENT):
            cls = GROUPS[group][turn[group] % len(GROUPS[group])]
            turn[group] += 1
            out.append({"index": queues[cls].pop(0), "label": cls, "expected_action": group, "segment": seg})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="folder with cifar-10-batches-py (default $EDGE_RUNTIME_DATA or data/)")
    ap.add_argument("--out", default=str(ROOT / "deploy" / "demo" / "cifar10-demo.mp4"))
    args = ap.parse_args()

    import cv2

    from edge_runtime.cifar import load_split

    split = load_split("cifar10", "test", args.data_dir)
    items = plan(split.labels, list(split.class_names))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    size = 32 * SCALE
    vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (size, size))
    if not vw.isOpened():
        print("OpenCV cannot write %s with the mp4v codec" % out, file=sys.stderr)
        return 1
    frame = 0
    for it in items:
        rgb = split.images[int(it["index"])]
        big = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (size, size), interpolation=cv2.INTER_NEAREST)
        for _ in range(HOLD):
            vw.write(big)
        it["frames"] = [frame, frame + HOLD]
        frame += HOLD
    vw.release()
    cap = cv2.VideoCapture(str(out))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if n != frame:
        print("wrote %s but it holds %d frames, expected %d" % (out, n, frame), file=sys.stderr)
        return 1
    from edge_runtime import scenario

    meta = {
        "format": scenario.FORMAT, "name": out.stem, "default_action": "SLOW",
        "segments": [{"start": it["frames"][0], "end": it["frames"][1], "expected": it["expected_action"],
                      "class": it["label"], "index": it["index"], "kind": "object"} for it in items],
        "clip": out.name, "fps": FPS, "size": [size, size], "frames": frame, "frames_per_image": HOLD,
        "upscale": "nearest x%d" % SCALE, "codec": "mp4v",
        "source": "CIFAR-10 test split, images 0-999 only (official python layout, data_batch order)",
        "rule": "segments %s of %d images; each class gives its next test image in index order" % (" ".join(ORDER),
                                                                                                   PER_SEGMENT),
        "actions": {"%s" % g: c for g, c in GROUPS.items()},
        "config": "deploy/configs/vehicle.yaml", "made_by": "python deploy/make_demo_clip.py",
        "images": items,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    scenario.load(out.with_suffix(".json"))  # it must read back as a scenario
    print("wrote %s (%d frames, %d images, %.1f s at %d FPS, %.0f kB) and %s" % (
        out, frame, len(items), frame / FPS, FPS, out.stat().st_size / 1024, out.with_suffix(".json").name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
