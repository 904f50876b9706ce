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

from ..config import flag_type
from ._common import command_line


def _range(s: str) -> Tuple[int, int]:
    a, _, b = s.partition("-")
    try:
        first, last = int(a), int(b)
    except ValueError:
        first, last = -1, -1
    if not 0 <= first <= last <= 999:
        raise argparse.ArgumentTypeError("expected FIRST-LAST, two integers with 0 <= FIRST <= LAST <= 999 (the "
                                         "CIFAR-10 test images), got %r" % s)
    return first, last


def _frange(s: str) -> Tuple[float, float]:
    a, _, b = s.partition("-")
    try:
        lo, hi = float(a), float(b or a)
    except ValueError:
        lo, hi = float("nan"), float("nan")
    if not 0 < lo <= hi < float("inf"):
        raise argparse.ArgumentTypeError("expected MIN-MAX seconds (or one number), 0 < MIN <= MAX, got %r" % s)
    return lo, hi


_SHARE = flag_type(float, lo=0, hi=1)


def _share(s: str) -> float:
    """A share of segments in [0, 1): 1 would leave no CIFAR object to see."""
    try:
        v = float(_SHARE(s))
    except argparse.ArgumentTypeError:
        v = 1.0
    if v >= 1:
        raise argparse.ArgumentTypeError("expected a number in [0, 1), got %r" % s)
    return v


def _size(s: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected WxH, e.g. 160x120, got %r" % s) from None
    if w < h or h < 32:
        raise argparse.ArgumentTypeError("expected a landscape WxH at least 32 pixels high (e.g. 160x120), got %r" % s)
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="the video to write (.mp4); its .json goes beside it")
    p.add_argument("--seed", type=flag_type(int, lo=0), required=True)
    p.add_argument("--duration", type=flag_type(float, lo=0, lo_open=True), default=60.0, metavar="S")
    p.add_argument("--fps", type=flag_type(float, lo=0, lo_open=True), default=30.0)
    p.add_argument("--size", type=_size, default=(160, 120), metavar="WxH")
    p.add_argument("--images", type=_range, default=(0, 999), metavar="FIRST-LAST", help="test images (within 0-999)")
    p.add_argument("--preset", choices=["mild", "hard"], default="mild")
    p.add_argument("--hold", type=_frange, default=(0.5, 1.5), metavar="MIN-MAX", help="seconds per image")
    p.add_argument("--unknown-share", type=_share, default=0.15,
                   help="share of segments with no CIFAR object, in [0, 1)")
    p.add_argument("--config", type=Path, default=None, help="runtime YAML whose rules give the expected actions")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset root (default $EDGE_RUNTIME_DATA)")
    p.add_argument("--force", action="store_true", help="replace an existing scenario")


def run(args: argparse.Namespace) -> int:
    from ..errors import EdgeRuntimeError
    from ..fsio import check_writable
    from ..scenario import generate

    out = args.out.with_suffix(".mp4")
    for f in (out, out.with_suffix(".json")):
        if f.exists() and not args.force:
            raise EdgeRuntimeError("%s exists; pass --force to replace it, or choose another name" % f)
        check_writable(f, "OUT")
    w, h = args.size
    sc = generate(out, args.seed, args.duration, args.fps, (w, h), args.config, args.data_dir, args.images[0],
                  args.images[1], args.preset, args.hold, args.unknown_share, command=command_line(args))
    n = {a: sum(s.end - s.start for s in sc.segments if s.expected == a) for a in ("GO", "SLOW", "STOP")}
    print("wrote %s (%d frames, %.1f s at %g FPS, %.0f kB) and %s: %d segments; frames GO %d, SLOW %d, STOP %d; "
          "%d without a CIFAR object" % (out, sc.frames, sc.frames / sc.fps, sc.fps, out.stat().st_size / 1024,
                                         out.with_suffix(".json").name, len(sc.segments), n["GO"], n["SLOW"],
                                         n["STOP"], sum(1 for s in sc.segments if s.kind == "unknown")))
    return 0
