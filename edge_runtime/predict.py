"""Classify single images: what ``edge-runtime predict`` does (like jetson-inference's ``imagenet.py img.jpg`` or
``yolo predict``), as a library.

Per image: the top class and its confidence, the top-k, and the action the config's rules give for that image alone
(:meth:`Policy.evaluate`: no debounce, no timing). The model, its preprocessing (from the manifest, as the loop does
with OpenCV's BGR frames) and the policy are the runtime's own, so a prediction here is what ``run`` would decide for
a frame that holds this image. Every image is reported: one that cannot be read gets an ``error`` and no class.
"""
from __future__ import annotations

import glob as _glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import EdgeRuntimeError
from .calibration import probabilities
from .policy import Policy
from .preprocess import Preprocessor
from .sources import IMAGE_EXTENSIONS

__all__ = ["Prediction", "find_images", "Predictor"]


@dataclass(frozen=True)
class Prediction:
    """One image's result. ``topk``: (class, probability), most probable first."""

    path: str
    class_name: Optional[str] = None
    confidence: Optional[float] = None
    topk: Tuple[Tuple[str, float], ...] = ()
    action: Optional[str] = None
    #: the rule behind ``action`` (None: the config's default action) and its probability mass
    rule: Optional[str] = None
    score: Optional[float] = None
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"path": self.path}
        if self.error is not None:
            d["error"] = self.error
            return d
        d.update(class_name=self.class_name, confidence=round(float(self.confidence or 0.0), 6),
                 topk=[[n, round(float(p), 6)] for n, p in self.topk], action=self.action, rule=self.rule,
                 score=None if self.score is None else round(float(self.score), 6))
        return d

    def summary(self) -> str:
        if self.error is not None:
            return "%s: error: %s" % (self.path, self.error)
        top = ", ".join("%s %.3f" % (n, p) for n, p in self.topk)
        why = "rule %s %.2f" % (self.rule, self.score or 0.0) if self.rule else "default action"
        return "%s: %s %.3f -> %s (%s) | top-%d: %s" % (self.path, self.class_name, self.confidence or 0.0,
                                                       self.action, why, len(self.topk), top)


def find_images(spec: Union[str, "os.PathLike[str]"]) -> List[str]:
    """The image files ``spec`` names: a file, a folder (its images, sorted; not recursive) or a glob (sorted).
    A spec that names no image is a one-line error."""
    s = str(spec)
    exts = " ".join(IMAGE_EXTENSIONS)
    if any(c in s for c in "*?["):
        paths = sorted(p for p in _glob.glob(os.path.expanduser(s)) if os.path.isfile(p))
        if not paths:
            raise EdgeRuntimeError("no files match %s; give an image, a folder of images or a glob (%s)" % (s, exts))
        return paths
    p = Path(os.path.expanduser(s))
    if p.is_dir():
        paths = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise EdgeRuntimeError("%s is a folder without images (%s)" % (s, exts))
        return paths
    if p.is_file():
        return [str(p)]
    raise EdgeRuntimeError("image not found: %s (no such file or folder); give an image, a folder of images or a "
                           "glob such as 'photos/*.jpg'" % s)


def _read(path: str) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """(BGR HxWx3 uint8, None) or (None, why): OpenCV for images, numpy for .npy (as image-folder sources read)."""
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            return None, "unreadable .npy (%s)" % exc
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            return None, "expected an HxWx3 uint8 (BGR) array, got %s %s" % (arr.dtype, arr.shape)
        return arr, None
    try:
        import cv2
    except ImportError:
        raise EdgeRuntimeError("reading %s needs OpenCV: pip install opencv-python-headless (on a Jetson: JetPack's "
                               "python3-opencv)" % path) from None
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return (None, "not a readable image") if img is None else (img, None)


class Predictor:
    """A model, its preprocessing and a policy, for one image at a time. Use as a context manager (the runner is
    activated inside), or call :meth:`close`."""

    def __init__(self, runner: Any, manifest: Mapping[str, Any], policy: Optional[Policy] = None, topk: int = 5,
                 rects: Sequence[Any] = ()) -> None:
        self.runner = runner
        self.manifest = dict(manifest)
        self.class_names: Sequence[str] = self.manifest["dataset"]["class_names"]
        if topk < 1:
            raise EdgeRuntimeError("--topk %d: expected 1 or more" % topk)
        self.topk = min(int(topk), len(self.class_names))
        self.policy = policy
        self._prep = Preprocessor(self.manifest["preprocess"], bgr=True)
        self._active = False
        #: regions of interest (``--regions``): each classified on its own, with its own rules
        self.rects = tuple(rects)
        if self.rects:
            from .regions import RegionCropper, region_policy_config

            self._crop = RegionCropper(self.manifest["preprocess"], self.rects)
            self._region_policies = [None if policy is None else Policy.from_manifest(
                region_policy_config(policy.config, r), self.manifest) for r in self.rects]

    @classmethod
    def from_files(cls, model: Union[str, "os.PathLike[str]"], config: Union[str, "os.PathLike[str]", None] = None,
                   backend: str = "auto", topk: int = 5, threads: Optional[int] = 1,
                   regions: bool = False) -> "Predictor":
        """Load ``model`` with the runtime's loader and ``config``'s policy (None: report no action). ``regions``: one
        prediction per region of the config's ``regions:`` (each with the rules it names)."""
        from .config import load_config
        from .runtime import load_model

        cfg = load_config(config) if config is not None else None
        runner, man = load_model(Path(model), backend, threads=threads)
        policy = None
        if cfg is not None:
            ds = man["dataset"]
            cfg.validate_against(ds["class_names"], (ds.get("superclasses") or {}).get("names"))
            policy = Policy.from_manifest(cfg.policy, man)
        rects: Tuple[Any, ...] = ()
        if regions:
            from .regions import expand

            rects = expand(cfg.regions) if cfg is not None else ()
            if not rects:
                raise EdgeRuntimeError("--regions: %s has no regions: (named rectangles or a grid; see "
                                       "deploy/configs/vehicle-regions.yaml)" % (config or "no config"))
        return cls(runner, man, policy, topk, rects)

    def __enter__(self) -> "Predictor":
        self.runner.activate()
        self._active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._active:
            self._active = False
            self.runner.deactivate()

    def predict_image(self, image: np.ndarray, path: str = "<array>") -> Prediction:
        """One BGR HxWx3 uint8 image (as OpenCV reads it)."""
        x = self._prep(image)
        # calibrated: softmax(logits / T) with the manifest's temperature (plain softmax without one)
        p = probabilities(np.reshape(np.asarray(self.runner.infer(x), np.float32), -1), self.manifest)
        if not np.all(np.isfinite(p)):
            return Prediction(path, error="the model's outputs are not finite (NaN or inf)")
        order = np.argsort(-p, kind="stable")[:self.topk]
        top = tuple((str(self.class_names[i]), float(p[i])) for i in order)
        action = rule = score = None
        if self.policy is not None:
            ev = self.policy.evaluate(p)
            action, rule, score = ev.action.name, ev.rule, ev.score
        return Prediction(path, top[0][0], top[0][1], top, action, rule, score)

    def predict_regions(self, image: np.ndarray, path: str = "<array>") -> List[Prediction]:
        """One BGR image, one :class:`Prediction` per region (``path#region``), all regions in one batched call."""
        x = self._crop(image)
        p = probabilities(np.asarray(self.runner.infer(x), np.float32).reshape(len(x), -1), self.manifest)
        out = []
        for i, rect in enumerate(self.rects):
            where = "%s#%s" % (path, rect.name)
            if not np.all(np.isfinite(p[i])):
                out.append(Prediction(where, error="the model's outputs are not finite (NaN or inf)"))
                continue
            order = np.argsort(-p[i], kind="stable")[:self.topk]
            top = tuple((str(self.class_names[j]), float(p[i][j])) for j in order)
            action = rule = score = None
            pol = self._region_policies[i]
            if pol is not None:
                ev = pol.evaluate(p[i])
                action, rule, score = ev.action.name, ev.rule, ev.score
            out.append(Prediction(where, top[0][0], top[0][1], top, action, rule, score))
        return out

    def predict_paths(self, paths: Sequence[str]) -> Iterator[Prediction]:
        """Each path's :class:`Prediction`, in order; an unreadable file gets ``error`` (every path is reported)."""
        for path in paths:
            img, why = _read(path)
            if img is None:
                yield Prediction(path, error=why)
                continue
            try:
                if self.rects:
                    yield from self.predict_regions(img, path)
                    continue
                yield self.predict_image(img, path)
            except EdgeRuntimeError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad image is reported, the others still are
                yield Prediction(path, error=" ".join(("%s: %s" % (type(exc).__name__, exc)).split()))
