"""Make a labelled scenario: a video of CIFAR-10 test images 0-999 with camera effects, and its segments JSON.

The expected action of each image comes from the config's rules (default vehicle.yaml: animals STOP, road
vehicles SLOW, airplane/ship GO); frames that are no CIFAR object (road-grey, noise, textures, a heavy blur)
expect the config's default action. Each image is held --hold seconds (a range), placed in a larger road-grey
frame, scaled, offset, brightened or darkened, blurred and noised (--preset mild or hard), with cuts or
cross-fades between images; everything is drawn from --seed, so the same command makes the same scenario.
--images FIRST-LAST picks the test images (within 0-999), so tuning and measuring can use disjoint images.

Examples:
  edge-runtime scenario deploy/scenarios/tune-s1.mp4 --seed 1 --duration 60 --images 0-499
  edge-runtime scenario runs/sc/eval-s101.mp4 --seed 101 --duration 300 --images 500-999 --preset hard
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Tuple

from ._common import command_line


def _range(s: str) -> Tuple[int, int]:
    a, _, b = s.partition("-")
    return int(a), int(b)


def _frange(s: str) -> Tuple[float, float]:
    a, _, b = s.partition("-")
    return float(a), float(b or a)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="the video to write (.mp4); its .json goes beside it")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--duration", type=float, default=60.0, metavar="S")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--size", default="160x120", metavar="WxH")
    p.add_argument("--images", type=_range, default=(0, 999), metavar="FIRST-LAST", help="test images (within 0-999)")
    p.add_argument("--preset", choices=["mild", "hard"], default="mild")
    p.add_argument("--hold", type=_frange, default=(0.5, 1.5), metavar="MIN-MAX", help="seconds per image")
    p.add_argument("--unknown-share", type=float, default=0.15, help="share of segments with no CIFAR object")
    p.add_argument("--config", type=Path, default=None, help="runtime YAML whose rules give the expected actions")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset root (default $EDGE_RUNTIME_DATA)")
    p.add_argument("--force", action="store_true", help="replace an existing scenario")


def run(args: argparse.Namespace) -> int:
    from ..errors import EdgeRuntimeError
    from ..scenario import generate

    out = args.out.with_suffix(".mp4")
    if (out.exists() or out.with_suffix(".json").exists()) and not args.force:
        raise EdgeRuntimeError("%s exists; pass --force to replace it, or choose another name" % out)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise EdgeRuntimeError("--size %r: expected WxH, e.g. 160x120" % args.size) from None
    if w < h or h < 32:
        raise EdgeRuntimeError("--size %s: expected a landscape frame at least 32 pixels high" % args.size)
    if not 0 <= args.unknown_share < 1 or not 0 < args.hold[0] <= args.hold[1]:
        raise EdgeRuntimeError("--unknown-share must be in [0, 1) and --hold MIN-MAX positive with MIN <= MAX")
    sc = generate(out, args.seed, args.duration, args.fps, (w, h), args.config, args.data_dir, args.images[0],
                  args.images[1], args.preset, args.hold, args.unknown_share, command=command_line(args))
    n = {a: sum(s.end - s.start for s in sc.segments if s.expected == a) for a in ("GO", "SLOW", "STOP")}
    print("wrote %s (%d frames, %.1f s at %g FPS, %.0f kB) and %s: %d segments; frames GO %d, SLOW %d, STOP %d; "
          "%d without a CIFAR object" % (out, sc.frames, sc.frames / sc.fps, sc.fps, out.stat().st_size / 1024,
                                         out.with_suffix(".json").name, len(sc.segments), n["GO"], n["SLOW"],
                                         n["STOP"], sum(1 for s in sc.segments if s.kind == "unknown")))
    return 0
