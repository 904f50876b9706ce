"""Labelled scenarios: a video (or an image folder) plus a JSON of segments saying what the policy should do.

A scenario is ``NAME.json`` beside its frames (``NAME.mp4``, or a folder of images sorted by name)::

    {"format": "edge-runtime.scenario/1", "name": "...", "video": "NAME.mp4", "fps": 30, "frames": 2700,
     "size": [160, 120], "seed": 11, "default_action": "SLOW", "actions": {"airplane": "GO", ...},
     "segments": [{"start": 0, "end": 24, "expected": "GO", "class": "airplane", "index": 3, "kind": "object"},
                  {"start": 24, "end": 40, "expected": "SLOW", "class": null, "kind": "unknown", "pattern": "noise"},
                  ...]}

Frame ``start`` is the first frame of a segment, ``end`` one past its last; segments tile the clip. ``expected``
is the action the config's rules give the class (``actions``), or its ``default_action`` for ``unknown``
segments (frames that are no CIFAR object: blank road-grey, noise, textures, a blur). During a cross-fade the
frame belongs to the segment fading in.

:func:`generate` makes one from the CIFAR-10 TEST images 0-999 only (exact pixels; ``first``/``last`` choose a
sub-range, so tuning and measuring can use different images as well as different seeds). Camera effects per
image, drawn from the seed: the object scaled and offset in a larger road-grey frame, brightness, Gaussian blur,
sensor noise; cuts or cross-fades between images. OpenCV writes the video (mp4v); :func:`read_frames` reads a
scenario's frames back (BGR). The demo clip (``deploy/demo/cifar10-demo.json``) is a scenario too.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeRuntimeError
from .fsio import PathLike, write_json_atomic

__all__ = ["FORMAT", "Segment", "Scenario", "load", "actions_from_config", "generate", "read_frames", "truth"]

FORMAT = "edge-runtime.scenario/1"
ACTIONS = ("GO", "SLOW", "STOP")
ROAD_GREY = (112, 112, 108)  # BGR
UNKNOWN_PATTERNS = ("grey", "noise", "texture", "blur")


@dataclasses.dataclass(frozen=True)
class Segment:
    start: int
    end: int
    expected: str
    cls: Optional[str] = None
    kind: str = "object"


@dataclasses.dataclass
class Scenario:
    path: Path
    meta: Dict[str, Any]
    segments: List[Segment]

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.stem)

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def frames(self) -> int:
        return int(self.meta["frames"])

    @property
    def media(self) -> Path:
        """The video file or image folder, relative to the JSON."""
        rel = self.meta.get("video") or self.meta.get("clip") or self.meta.get("images_dir")
        return self.path.parent / str(rel)


def _bad(path: Any, what: str) -> EdgeRuntimeError:
    return EdgeRuntimeError("%s: not a usable scenario: %s; make one with edge-runtime scenario (or python "
                            "deploy/make_demo_clip.py)" % (path, what))


def load(path: PathLike) -> Scenario:
    """Read and check a scenario JSON (also the demo clip's JSON, whose ``images`` have ``frames`` ranges)."""
    p = Path(path)
    if p.suffix != ".json":
        p = p.with_suffix(".json") if p.with_suffix(".json").is_file() else p
    if not p.is_file():
        raise EdgeRuntimeError("scenario not found: %s; pass the scenario's .json (e.g. deploy/scenarios/*.json)" % path)
    try:
        meta = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(p, "invalid JSON (%s)" % exc)
    if not isinstance(meta, dict) or "fps" not in meta or "frames" not in meta:
        raise _bad(p, "expected a JSON object with fps, frames and segments")
    raw = meta.get("segments")
    if raw is None and isinstance(meta.get("images"), list):  # the demo clip's older layout
        raw = [{"start": it["frames"][0], "end": it["frames"][1], "expected": it["expected_action"],
                "class": it.get("label"), "index": it.get("index")} for it in meta["images"]]
    if not isinstance(raw, list) or not raw:
        raise _bad(p, "no segments")
    segs: List[Segment] = []
    pos = 0
    for i, s in enumerate(raw):
        try:
            seg = Segment(int(s["start"]), int(s["end"]), str(s["expected"]).upper(), s.get("class"),
                          str(s.get("kind", "object")))
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(p, "segments[%d] lacks start/end/expected (%s)" % (i, exc))
        if seg.expected not in ACTIONS:
            raise _bad(p, "segments[%d].expected is %r, expected one of %s" % (i, seg.expected, ", ".join(ACTIONS)))
        if seg.start != pos or seg.end <= seg.start:
            raise _bad(p, "segments[%d] covers frames [%d, %d); segments must tile the clip from frame 0 in order"
                       % (i, seg.start, seg.end))
        pos = seg.end
        segs.append(seg)
    if pos != int(meta["frames"]):
        raise _bad(p, "segments end at frame %d but the clip has %d frames" % (pos, int(meta["frames"])))
    return Scenario(p, meta, segs)


def truth(sc: Scenario) -> np.ndarray:
    """The expected action per frame (int8: 0 GO, 1 SLOW, 2 STOP)."""
    out = np.zeros(sc.frames, np.int8)
    for s in sc.segments:
        out[s.start:s.end] = ACTIONS.index(s.expected)
    return out


def read_frames(sc: Scenario) -> Iterator[np.ndarray]:
    """The scenario's frames in order, BGR uint8 (a video through OpenCV, or an image folder sorted by name)."""
    import cv2

    media = sc.media
    if media.is_dir():
        for f in sorted(x for x in media.iterdir() if x.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp")):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise EdgeRuntimeError("%s: not a readable image" % f)
            yield img
        return
    if not media.is_file():
        raise EdgeRuntimeError("%s: the scenario's frames (%s) are missing" % (sc.path, media))
    cap = cv2.VideoCapture(str(media))
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            yield img
    finally:
        cap.release()


def actions_from_config(policy: Any, class_names: Sequence[str]) -> Tuple[Dict[str, str], str]:
    """(class -> expected action, default action) from a PolicyConfig's rules: the strictest rule naming the class
    (thresholds ignored: this is what the class SHOULD cause), the default action for classes no rule names."""
    default = policy.default_action.name
    out: Dict[str, str] = {}
    for c in class_names:
        acts = [r.action for r in policy.rules if c in r.classes]
        out[c] = max(acts).name if acts else default
    return out, default


# -------------------------------------------------------------------------------------------- generator
@dataclasses.dataclass(frozen=True)
class Effects:
    """Ranges the generator draws from, per image (uniform)."""

    #: object size as a fraction of the frame's height
    scale: Tuple[float, float] = (0.8, 1.0)
    #: object centre offset, as a fraction of the free space on each side
    offset: float = 0.5
    brightness: Tuple[float, float] = (0.8, 1.2)
    #: Gaussian blur sigma in CIFAR pixels (0: none)
    blur: Tuple[float, float] = (0.0, 0.6)
    #: sensor noise, std in 0..255 units, per frame
    noise: Tuple[float, float] = (1.0, 4.0)
    #: share of image changes that cross-fade (the rest cut), and the fade length in frames
    crossfade: float = 0.3
    fade_frames: Tuple[int, int] = (4, 10)


PRESETS = {"mild": Effects(), "hard": Effects(scale=(0.55, 0.9), offset=0.8, brightness=(0.6, 1.35), blur=(0.0, 1.0),
                                              noise=(2.0, 8.0), crossfade=0.5)}


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # stripes
        a = rng.uniform(0, np.pi)
        f = rng.uniform(0.08, 0.4)
        v = 127 + 80 * np.sin(f * (xx * np.cos(a) + yy * np.sin(a)))
    elif kind == 1:  # checkerboard
        s = int(rng.integers(4, 16))
        v = np.where(((yy // s) + (xx // s)) % 2 == 0, 70.0, 180.0)
    else:  # smooth blobs
        small = rng.uniform(40, 215, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        import cv2

        v = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    tint = rng.uniform(0.7, 1.1, 3).astype(np.float32)
    return np.clip(v[..., None] * tint, 0, 255).astype(np.float32)


def _unknown(pattern: str, rng: np.random.Generator, h: int, w: int, images: np.ndarray) -> np.ndarray:
    import cv2

    if pattern == "grey":
        return np.broadcast_to(np.array(ROAD_GREY, np.float32) * rng.uniform(0.8, 1.2), (h, w, 3)).copy()
    if pattern == "noise":
        return rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    if pattern == "texture":
        return _texture(rng, h, w)
    # blur: a CIFAR image blurred past recognition (sigma of 1/4 of the frame)
    img = images[int(rng.integers(len(images)))][..., ::-1].astype(np.float32)
    big = cv2.resize(img, (h, h), interpolation=cv2.INTER_LINEAR)
    big = cv2.GaussianBlur(big, (0, 0), h / 4.0)
    canvas = np.broadcast_to(np.array(ROAD_GREY, np.float32), (h, w, 3)).copy()
    x0 = (w - h) // 2
    canvas[:, x0:x0 + h] = big
    return canvas


def _place(rgb: np.ndarray, rng: np.random.Generator, h: int, w: int, fx: Effects) -> np.ndarray:
    import cv2

    side = max(8, int(round(h * rng.uniform(*fx.scale))))
    obj: np.ndarray = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (side, side),
                                 interpolation=cv2.INTER_NEAREST).astype(np.float32)
    sigma = rng.uniform(*fx.blur) * side / 32.0
    if sigma > 0.05:
        obj = cv2.GaussianBlur(obj, (0, 0), sigma)
    canvas = np.broadcast_to(np.array(ROAD_GREY, np.float32), (h, w, 3)).copy()
    cy, cx = (h - side) / 2.0, (w - side) / 2.0
    y0 = int(round(cy + rng.uniform(-1, 1) * fx.offset * cy))
    x0 = int(round(cx + rng.uniform(-1, 1) * fx.offset * min(cx, cy + (w - h) / 2.0)))
    canvas[y0:y0 + side, x0:x0 + side] = obj
    return canvas * rng.uniform(*fx.brightness)


def plan(seed: int, duration_s: float, fps: float, labels: np.ndarray, class_names: Sequence[str],
         actions: Mapping[str, str], default: str, first: int, last: int, hold_s: Tuple[float, float],
         unknown_share: float, per_segment: Tuple[int, int]) -> List[Dict[str, Any]]:
    """The image sequence: action segments of 1-4 images of that action's classes (each image its own entry)."""
    rng = np.random.default_rng(seed)
    by_action: Dict[str, List[int]] = {a: [] for a in ACTIONS}
    for i in range(first, last + 1):
        by_action[actions[class_names[int(labels[i])]]].append(i)
    usable = [a for a in ACTIONS if by_action[a]]
    total = int(round(duration_s * fps))
    items: List[Dict[str, Any]] = []
    n, prev = 0, None
    while n < total:
        if rng.random() < unknown_share:
            act, kind = default, "unknown"
        else:
            act = str(rng.choice([a for a in usable if a != prev] or usable))
            kind = "object"
        prev = act if kind == "object" else prev
        for _ in range(int(rng.integers(per_segment[0], per_segment[1] + 1)) if kind == "object" else 1):
            hold = int(round(rng.uniform(*hold_s) * fps))
            hold = max(1, min(hold, total - n))
            if kind == "object":
                idx = int(rng.choice(by_action[act]))
                items.append({"kind": kind, "index": idx, "class": class_names[int(labels[idx])], "expected": act,
                              "frames": hold})
            else:
                items.append({"kind": kind, "pattern": str(rng.choice(UNKNOWN_PATTERNS)), "class": None,
                              "expected": act, "frames": hold})
            n += hold
            if n >= total:
                break
    return items


def generate(out: PathLike, seed: int, duration_s: float = 60.0, fps: float = 30.0, size: Tuple[int, int] = (160, 120),
             config: Optional[PathLike] = None, data_dir: Optional[PathLike] = None, first: int = 0, last: int = 999,
             preset: str = "mild", hold_s: Tuple[float, float] = (0.5, 1.5), unknown_share: float = 0.15,
             per_segment: Tuple[int, int] = (1, 3), command: str = "") -> Scenario:
    """Write ``out`` (.mp4) and its ``.json``; returns the loaded scenario. Images: CIFAR-10 test ``first``..``last``
    (within 0-999, the exact official pixels). Expected actions from ``config``'s rules (default vehicle.yaml)."""
    import cv2

    from .cifar import load_split
    from .config import load_config

    if not (0 <= first <= last <= 999):
        raise EdgeRuntimeError("images %d-%d: scenarios use only CIFAR-10 test images 0-999 (the exact pixels); "
                               "pass a range within 0-999" % (first, last))
    if preset not in PRESETS:
        raise EdgeRuntimeError("preset %r: expected one of %s" % (preset, ", ".join(PRESETS)))
    if duration_s <= 0 or fps <= 0:
        raise EdgeRuntimeError("duration and fps must be > 0, got %g s at %g FPS" % (duration_s, fps))
    fx = PRESETS[preset]
    cfg_path = Path(config) if config is not None else Path(__file__).resolve().parents[1] / "deploy/configs/vehicle.yaml"
    cfg = load_config(cfg_path)
    split = load_split("cifar10", "test", data_dir)
    if last >= len(split):
        raise EdgeRuntimeError("images %d-%d: the test split at hand has only %d images" % (first, last, len(split)))
    names = list(split.class_names)
    actions, default = actions_from_config(cfg.policy, names)
    items = plan(seed, duration_s, fps, split.labels, names, actions, default, first, last, hold_s, unknown_share,
                 per_segment)
    rng = np.random.default_rng(seed + 1_000_003)
    w, h = int(size[0]), int(size[1])
    out_p = Path(out).with_suffix(".mp4")
    out_p.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_p.with_name(out_p.stem + ".tmp.mp4")
    vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))  # type: ignore[attr-defined]
    if not vw.isOpened():
        raise EdgeRuntimeError("OpenCV cannot write %s with the mp4v codec" % tmp)
    segments: List[Dict[str, Any]] = []
    frame, prev_img = 0, None
    try:
        for it in items:
            if it["kind"] == "object":
                img = _place(split.images[it["index"]], rng, h, w, fx)
            else:
                img = _unknown(it["pattern"], rng, h, w, split.images[first:last + 1])
            fade = 0
            if prev_img is not None and rng.random() < fx.crossfade:
                fade = min(int(rng.integers(fx.fade_frames[0], fx.fade_frames[1] + 1)), it["frames"])
            noise = rng.uniform(*fx.noise)
            for j in range(it["frames"]):
                f = img if j >= fade else prev_img + (img - prev_img) * ((j + 1) / (fade + 1.0))
                f = f + rng.normal(0.0, noise, f.shape).astype(np.float32)
                vw.write(np.clip(f, 0, 255).astype(np.uint8))
            seg = {"start": frame, "end": frame + it["frames"], "expected": it["expected"], "class": it["class"],
                   "kind": it["kind"]}
            seg.update({k: it[k] for k in ("index", "pattern") if k in it})
            if fade:
                seg["crossfade_frames"] = fade
            segments.append(seg)
            frame += it["frames"]
            prev_img = img
    finally:
        vw.release()
    tmp.replace(out_p)
    meta = {
        "format": FORMAT, "name": out_p.stem, "video": out_p.name, "fps": fps, "frames": frame, "size": [w, h],
        "seed": seed, "preset": preset, "effects": dataclasses.asdict(fx), "images": "CIFAR-10 test %d-%d" % (first, last),
        "source": "CIFAR-10 test split, images 0-999 only (official python layout, exact pixels)",
        "config": str(cfg_path), "default_action": default, "actions": actions, "hold_s": list(hold_s),
        "unknown_share": unknown_share, "codec": "mp4v", "made_by": command, "segments": segments,
    }
    write_json_atomic(out_p.with_suffix(".json"), meta)
    return load(out_p.with_suffix(".json"))
