"""Regions of interest: where in a frame the classifier looks, one batch per frame, one policy per region.

A CIFAR classifier given a whole 320x180 frame sees a small animal in the vehicle's path as a few pixels of
its 32x32 input. ``regions:`` in the runtime config names the parts of the frame that matter, in normalized
coordinates (0..1 of the frame's width and height), each classified on its own::

    regions:
      - {name: path,  x: 0.35, y: 0.45, w: 0.30, h: 0.55, rules: [animals_stop]}
      - {name: left,  x: 0.00, y: 0.40, w: 0.35, h: 0.60, rules: [animals_slow]}
      - grid: {rows: 2, cols: 3, overlap: 0.1}          # cells named r0c0 .. r1c2

``rules`` (optional) names the policy rules that apply in a region (``policy.rules[].name``); without it every
rule applies. Without ``regions:`` the whole frame is the one region, exactly as before.

Three parts, used by :class:`~edge_runtime.runtime.Runtime`:

- :class:`Region` / :class:`Grid`: the config schema; :func:`expand` turns them into named rectangles and
  :func:`pixel_boxes` into pixel boxes for a frame size.
- :class:`RegionCropper`: the transform a camera's grabber thread runs on every frame: it crops every region,
  resizes each to the model's input per the manifest (same geometry as :mod:`edge_runtime.preprocess`) and
  normalizes all of them in one vectorized pass into a ``(R, 3, H, W)`` batch.
- :class:`RegionPolicies`: one pure :class:`~edge_runtime.policy.Policy` per (camera, region), each with its own
  debounce state, and the merge: the output is the most severe of their decisions and names the camera and
  region that decided, with every region's result in ``Decision.regions``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeRuntimeError
from .policy import Action, Decision, Policy, Reason
from .preprocess import Preprocessor, _check_frame, _geometry, _normalize

__all__ = ["Region", "Grid", "Rect", "WHOLE", "expand", "pixel_boxes", "RegionCropper", "RegionPolicies", "Camera",
           "region_policy_config", "check_rule_names", "regions_as_list"]


def _meta(lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False) -> Dict[str, Any]:
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "choices": None}


def _config_error(key: str, message: str) -> Exception:
    from .config import ConfigError  # config imports this module: import it when an error is raised

    return ConfigError(key, message)


@dataclasses.dataclass(frozen=True)
class Grid:
    """``rows`` x ``cols`` cells over the whole frame; neighbouring cells share ``overlap`` of a cell's size."""

    rows: int = dataclasses.field(default=2, metadata=_meta(lo=1, hi=16))
    cols: int = dataclasses.field(default=3, metadata=_meta(lo=1, hi=16))
    overlap: float = dataclasses.field(default=0.0, metadata=_meta(lo=0, hi=0.9))


@dataclasses.dataclass(frozen=True)
class Region:
    """One entry of ``regions:``: a named rectangle (``x``, ``y``, ``w``, ``h`` in 0..1 of the frame), or a ``grid``
    (cells named ``<name>r<i>c<j>``, ``name`` empty by default). ``rules``: the policy rules that apply here
    (by name; default all); ``default_action``: when none of them fires (default: the policy's)."""

    name: Optional[str] = None
    x: Optional[float] = dataclasses.field(default=None, metadata=_meta(lo=0, hi=1))
    y: Optional[float] = dataclasses.field(default=None, metadata=_meta(lo=0, hi=1))
    w: Optional[float] = dataclasses.field(default=None, metadata=_meta(lo=0, hi=1, lo_open=True))
    h: Optional[float] = dataclasses.field(default=None, metadata=_meta(lo=0, hi=1, lo_open=True))
    grid: Optional[Grid] = None
    rules: Optional[Tuple[str, ...]] = None
    #: the action when none of its rules fires (default: ``policy.default_action``)
    default_action: Optional[Action] = None

    def __post_init__(self) -> None:
        box = (self.x, self.y, self.w, self.h)
        if self.grid is not None:
            if any(v is not None for v in box):
                raise _config_error("grid", "a grid covers the whole frame: give grid or x/y/w/h, not both")
            return
        if any(v is None for v in box):
            missing = [k for k, v in zip("xywh", box) if v is None]
            raise _config_error(missing[0], "missing: a region needs x, y, w and h (0..1 of the frame) or a grid, "
                                            "e.g. {name: path, x: 0.35, y: 0.45, w: 0.3, h: 0.55}")
        if not self.name:
            raise _config_error("name", "missing: every rectangle needs a name (path, left, ...)")
        assert self.x is not None and self.y is not None and self.w is not None and self.h is not None
        if self.x + self.w > 1.0 + 1e-9:
            raise _config_error("w", "x + w is %g: the region leaves the frame (at most 1)" % (self.x + self.w))
        if self.y + self.h > 1.0 + 1e-9:
            raise _config_error("h", "y + h is %g: the region leaves the frame (at most 1)" % (self.y + self.h))


@dataclasses.dataclass(frozen=True)
class Rect:
    """A named rectangle in normalized coordinates, and the policy rules that apply in it (None: all)."""

    name: str
    x: float
    y: float
    w: float
    h: float
    rules: Optional[Tuple[str, ...]] = None
    default_action: Optional[Action] = None


#: the implicit region when a config has no ``regions:`` (the whole frame, through the manifest's preprocessing)
WHOLE = Rect("frame", 0.0, 0.0, 1.0, 1.0)


def _grid_cells(g: Grid, prefix: str, rules: Optional[Tuple[str, ...]], default: Optional[Action]) -> List[Rect]:
    out: List[Rect] = []
    # cell size s with n cells overlapping by o*s: n*s - (n-1)*o*s = 1
    sw = 1.0 / (g.cols - (g.cols - 1) * g.overlap)
    sh = 1.0 / (g.rows - (g.rows - 1) * g.overlap)
    for i in range(g.rows):
        for j in range(g.cols):
            x, y = j * sw * (1 - g.overlap), i * sh * (1 - g.overlap)
            out.append(Rect("%sr%dc%d" % (prefix, i, j), x, y, min(sw, 1.0 - x), min(sh, 1.0 - y), rules, default))
    return out


def regions_as_list(data: Any) -> Any:
    """YAML data with ``regions: {grid: {...}}`` (a single grid written as a mapping, as in the issue's spelling) turned
    into the list form ``regions: [{grid: {...}}]``, at the top level and in every ``sources`` entry; else unchanged."""
    if not isinstance(data, Mapping):
        return data

    def fix(d: Any) -> Any:
        if isinstance(d, Mapping) and isinstance(d.get("regions"), Mapping):
            return dict(d, regions=[dict(d["regions"])])
        return d

    out = fix(data)
    if isinstance(out.get("sources"), list):
        out = dict(out, sources=[fix(c) for c in out["sources"]])
    return out


def expand(regions: Sequence[Region], where: str = "regions") -> Tuple[Rect, ...]:
    """The config's regions as named rectangles (grids expanded); () stays () (the whole frame). Duplicate names
    raise one line."""
    out: List[Rect] = []
    for r in regions:
        if r.grid is not None:
            out.extend(_grid_cells(r.grid, r.name or "", r.rules, r.default_action))
        else:
            assert r.name is not None and r.x is not None and r.y is not None and r.w is not None and r.h is not None
            out.append(Rect(r.name, r.x, r.y, r.w, r.h, r.rules, r.default_action))
    seen = set()
    for rect in out:
        if rect.name in seen:
            raise EdgeRuntimeError("%s: region name %r is used twice; give every region its own name" % (where, rect.name))
        seen.add(rect.name)
    return tuple(out)


def pixel_boxes(rects: Sequence[Rect], width: int, height: int) -> np.ndarray:
    """``(R, 4)`` int boxes ``x0, y0, x1, y1`` (exclusive ends) of each rectangle in a ``width`` x ``height`` frame,
    at least one pixel each."""
    a = np.array([[r.x, r.y, r.x + r.w, r.y + r.h] for r in rects], np.float64).reshape(-1, 4)
    a *= np.array([width, height, width, height], np.float64)
    b = np.rint(a).astype(np.int64)
    b[:, 0] = np.clip(b[:, 0], 0, width - 1)
    b[:, 1] = np.clip(b[:, 1], 0, height - 1)
    b[:, 2] = np.clip(np.maximum(b[:, 2], b[:, 0] + 1), 1, width)
    b[:, 3] = np.clip(np.maximum(b[:, 3], b[:, 1] + 1), 1, height)
    return b


class RegionCropper:
    """The grabber-thread transform for one camera: frame (H, W, 3) uint8 -> ``(R, 3, h, w)`` float32, one row per
    region in order. Each crop goes through the manifest's resize (``center_crop`` etc., as
    :func:`~edge_runtime.preprocess.preprocess`, one OpenCV call per region); the colour flip, scaling and
    normalization of all regions are one vectorized pass. With only :data:`WHOLE` it is the plain
    :class:`~edge_runtime.preprocess.Preprocessor` (the same tensor as without regions). Boxes are cached per
    frame size. A new array per call: a tensor handed to the loop is never overwritten."""

    def __init__(self, pp: Dict[str, Any], rects: Sequence[Rect] = (WHOLE,), bgr: bool = True,
                 use_opencv: Optional[bool] = None) -> None:
        self.rects = tuple(rects) or (WHOLE,)
        self.whole = self.rects == (WHOLE,)
        self._prep = Preprocessor(pp, bgr=bgr, use_opencv=use_opencv)
        self.pp, self.bgr, self.use_opencv = self._prep.pp, bgr, use_opencv
        self.size = self._prep.size
        self._boxes: Dict[Tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rects)

    def boxes(self, width: int, height: int) -> np.ndarray:
        key = (int(width), int(height))
        b = self._boxes.get(key)
        if b is None:
            b = pixel_boxes(self.rects, key[0], key[1])
            if len(self._boxes) < 8:
                self._boxes[key] = b
        return b

    def __call__(self, frame: Any) -> np.ndarray:
        if self.whole:
            return self._prep(frame)
        img = _check_frame(frame)
        bgr = self.bgr
        if bgr and self.pp.get("resize", "center_crop") == "letterbox":
            img, bgr = img[..., ::-1], False  # the letterbox fill is an RGB colour: flip first (as preprocess)
        h, w = self.size
        stack = np.empty((len(self.rects), h, w, 3), np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(self.boxes(img.shape[1], img.shape[0]).tolist()):
            stack[i] = _geometry(img[y0:y1, x0:x1], self.pp, self.use_opencv)
        return _normalize(stack, self.pp, flip=bgr)


@dataclasses.dataclass(frozen=True)
class Camera:
    """One camera of a run: its name (None for the single unnamed ``source:``) and its regions."""

    name: Optional[str]
    rects: Tuple[Rect, ...] = (WHOLE,)


def region_policy_config(policy_cfg: Any, rect: Rect) -> Any:
    """The policy config for one region: the rules it names (all when it names none), its default action."""
    changes: Dict[str, Any] = {}
    if rect.rules is not None:
        changes["rules"] = tuple(r for r in policy_cfg.rules if r.name in rect.rules)
    if rect.default_action is not None:
        changes["default_action"] = rect.default_action
    return dataclasses.replace(policy_cfg, **changes) if changes else policy_cfg


def check_rule_names(policy_cfg: Any, regions: Sequence[Region], where: str) -> None:
    """Every name in a region's ``rules`` must be a policy rule's ``name``; one line listing them otherwise."""
    names = [r.name for r in policy_cfg.rules if r.name]
    for i, reg in enumerate(regions):
        for n in reg.rules or ():
            if n not in names:
                raise EdgeRuntimeError("%s[%d].rules: no policy rule is named %r; the named rules are: %s (give the rule "
                                       "a name: in policy.rules)" % (where, i, n, ", ".join(names) or "none"))


class RegionPolicies:
    """One :class:`Policy` per (camera, region), and their merge into one output decision.

    Each policy is the ordinary pure policy (own debounce, latch and timeouts); this class only routes rows of
    probabilities to them and merges. The merge: the most severe action wins (STOP > SLOW > GO); among equals a
    fail-safe reason before a rule, then the first camera and region in config order. The output is that
    decision with ``camera``/``region`` set, its own ``seq`` and ``changed`` (action, latch, or fail-safe reason
    and who has it changed) and ``regions`` = every (camera, region)'s latest decision. With one camera and the
    whole frame, decisions pass through untouched (the output is the policy's own decision).
    """

    def __init__(self, cameras: Sequence[Camera], policy_cfg: Any, manifest: Mapping[str, Any]) -> None:
        self.cameras = list(cameras)
        self.policies: List[List[Policy]] = [[Policy.from_manifest(region_policy_config(policy_cfg, r), manifest)
                                              for r in cam.rects] for cam in self.cameras]
        self.single = len(self.cameras) == 1 and self.cameras[0].rects == (WHOLE,)
        self.first = self.policies[0][0]
        self._latest: List[List[Optional[Decision]]] = [[None] * len(c.rects) for c in self.cameras]
        self._last: Optional[Decision] = None
        self._final: Optional[Decision] = None
        self._seq = 0
        self._counts: Dict[str, int] = {}
        self._names = [[(c.name, None if r is WHOLE else r.name) for r in c.rects] for c in self.cameras]

    @property
    def batch(self) -> int:
        """Regions of all cameras: the batch of a step where every camera has a frame."""
        return sum(len(c.rects) for c in self.cameras)

    @property
    def poll_interval_s(self) -> float:
        return self.first.poll_interval_s

    @property
    def latched(self) -> bool:
        return any(p.latched for row in self.policies for p in row)

    def reset(self) -> None:
        for row in self.policies:
            for p in row:
                p.reset()

    def stats(self) -> Dict[str, int]:
        """Output decisions by reason and in total (the single policy's own counts with one region)."""
        if self.single:
            return self.first.stats()
        out = dict(self._counts)
        out["decisions"] = self._seq
        return out

    # ---------------------------------------------------------------------------------------------- inputs
    def decide(self, cam: int, probs: Optional[np.ndarray], t: float, frame_age_s: Optional[float] = None,
               latency_s: Optional[float] = None, error: Optional[str] = None, **frame: Any) -> None:
        """Camera ``cam``'s frame: ``probs`` one row per region (None with ``error``)."""
        row = self.policies[cam]
        for j, p in enumerate(row):
            self._latest[cam][j] = p.decide(None if probs is None else probs[j], t, frame_age_s=frame_age_s,
                                            latency_s=latency_s, error=error, **frame)

    def tick(self, cam: int, t: float) -> None:
        """Camera ``cam`` gave no frame this step: its policies turn STOP (``source_timeout``) when it stays silent."""
        for j, p in enumerate(self.policies[cam]):
            self._latest[cam][j] = p.tick(t)

    def tick_all(self, t: float) -> Decision:
        for c in range(len(self.cameras)):
            self.tick(c, t)
        return self.output(t)

    def shutdown(self, t: float, reason: Reason, detail: str = "") -> Decision:
        if self.single:
            return self.first.shutdown(t, reason, detail)
        for row in self.policies:
            for p in row:
                p.shutdown(t, reason, detail)
        if self._final is None:
            self._final = self._emit(Decision(Action.STOP, reason, t, 0, detail=detail), t, ())
            return self._final
        self._seq += 1
        self._counts[self._final.reason.value] = self._counts.get(self._final.reason.value, 0) + 1
        return dataclasses.replace(self._final, t=t, seq=self._seq, changed=False)

    # ----------------------------------------------------------------------------------------------- merge
    def output(self, t: float) -> Decision:
        """The merged decision from every (camera, region)'s latest one."""
        if self.single:
            d = self._latest[0][0]
            assert d is not None
            return d
        best: Optional[Decision] = None
        best_key: Tuple[int, int] = (-1, -1)
        parts: List[Decision] = []
        for i, row in enumerate(self._latest):
            for j, d in enumerate(row):
                if d is None:
                    continue
                cam, reg = self._names[i][j]
                d = dataclasses.replace(d, camera=cam, region=reg)
                parts.append(d)
                key = (int(d.action), 1 if d.reason.failsafe else 0)
                if key > best_key:
                    best, best_key = d, key
        assert best is not None, "output() before any decide() or tick()"
        if best.reason.failsafe and best.detail and best.camera is not None and best.reason is not Reason.STARTUP:
            best = dataclasses.replace(best, detail="camera %s: %s" % (best.camera, best.detail))
        return self._emit(best, t, tuple(parts))

    def _emit(self, d: Decision, t: float, parts: Tuple[Decision, ...]) -> Decision:
        prev = self._last
        fs = d.reason if d.reason.failsafe else None
        key = (d.action, d.latched, fs, d.camera if fs is not None else None)
        changed = prev is None or key != (prev.action, prev.latched, prev.reason if prev.reason.failsafe else None,
                                          prev.camera if prev.reason.failsafe else None)
        self._seq += 1
        out = dataclasses.replace(d, t=t, seq=self._seq, changed=changed, regions=parts)
        self._counts[d.reason.value] = self._counts.get(d.reason.value, 0) + 1
        self._last = out
        return out
