"""The inference transform, read from a manifest's ``preprocess`` block (numpy; OpenCV if present).

    frame (H, W, 3) uint8, RGB or OpenCV's BGR
      -> RGB -> resize per ``pp["resize"]`` to ``pp["size"]`` (H, W)
      -> * pp["scale"] (1/255) -> (x - mean) / std -> (1, 3, H, W) float32

Resize modes:
  center_crop  crop the largest centred region with the target's aspect ratio, then resize
               (default: the model never saw letterbox bars or stretched objects)
  letterbox    fit the whole frame, pad the rest with the dataset's mean colour (0 after normalizing)
  stretch      resize to the target, ignoring aspect ratio

Interpolation ``area`` (OpenCV INTER_AREA: a box filter when shrinking) or ``linear``. With
OpenCV missing, a numpy implementation of both is used (same box filter when shrinking; bilinear
with half-pixel centres, as OpenCV's INTER_LINEAR, otherwise). A frame already at the target
size is not resampled at all, so CIFAR images match torchvision's ToTensor + Normalize exactly.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeRuntimeError

_cv2: Any = None
_cv2_checked = False


def _opencv() -> Any:
    global _cv2, _cv2_checked
    if not _cv2_checked:
        _cv2_checked = True
        try:
            import cv2  # noqa: F401

            _cv2 = cv2
        except ImportError:
            _cv2 = None
    return _cv2


def _weights_1d(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """(n_out, n_in) resampling matrix, as OpenCV computes it.

    ``box``: the exact area average (INTER_AREA when shrinking both axes); ``area_up``: INTER_AREA's
    coefficients otherwise; ``linear``: bilinear with half-pixel centres (INTER_LINEAR).
    """
    w = np.zeros((n_out, n_in), np.float64)
    scale = n_in / float(n_out)
    for i in range(n_out):
        if mode == "box":
            lo, hi = i * scale, (i + 1) * scale
            for j in range(int(np.floor(lo)), min(int(np.ceil(hi)), n_in)):
                w[i, j] = min(hi, j + 1) - max(lo, j)
            w[i] /= w[i].sum()
            continue
        if mode == "area_up":
            j0 = int(np.floor(i * scale))
            f = (i + 1) - (j0 + 1) / scale
            f = 0.0 if f <= 0 else f - np.floor(f)
        else:
            src = (i + 0.5) * scale - 0.5
            j0 = int(np.floor(src))
            f = src - j0
            if j0 < 0:
                j0, f = 0, 0.0
        if j0 >= n_in - 1:
            j0, f = n_in - 1, 0.0
        w[i, j0] += 1.0 - f
        w[i, min(j0 + 1, n_in - 1)] += f
    return w


def resize(img: np.ndarray, size_hw: Tuple[int, int], interpolation: str = "area", use_opencv: Optional[bool] = None) -> np.ndarray:
    """Resize an (H, W, C) uint8 image to ``size_hw``; OpenCV when available (or asked), numpy otherwise."""
    h, w = img.shape[:2]
    th, tw = int(size_hw[0]), int(size_hw[1])
    if (h, w) == (th, tw):
        return img
    if interpolation not in ("area", "linear"):
        raise EdgeRuntimeError("preprocess.interpolation is %r, expected area or linear" % interpolation)
    cv2 = _opencv() if use_opencv is not False else None
    if use_opencv and cv2 is None:
        raise EdgeRuntimeError("OpenCV was asked for but cv2 is not installed; pip install opencv-python-headless")
    if cv2 is not None:
        flag = cv2.INTER_AREA if interpolation == "area" else cv2.INTER_LINEAR
        out = cv2.resize(np.ascontiguousarray(img), (tw, th), interpolation=flag)
        return out.reshape(th, tw, -1) if out.ndim == 2 else out
    if interpolation == "area":
        mode = "box" if th <= h and tw <= w else "area_up"
    else:
        mode = "linear"
    wy = _weights_1d(h, th, mode)
    wx = _weights_1d(w, tw, mode)
    out = np.einsum("ih,hwc,jw->ijc", wy, img.astype(np.float64), wx)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if img.dtype == np.uint8 else out.astype(img.dtype)


def _geometry(img: np.ndarray, pp: Dict[str, Any], use_opencv: Optional[bool]) -> np.ndarray:
    th, tw = int(pp["size"][0]), int(pp["size"][1])
    h, w = img.shape[:2]
    mode = pp.get("resize", "center_crop")
    interp = pp.get("interpolation", "area")
    if (h, w) == (th, tw):
        return img
    if mode == "center_crop":
        # the largest centred window with the target's aspect ratio
        if w * th > h * tw:
            cw, ch = max(1, int(round(h * tw / float(th)))), h
        else:
            cw, ch = w, max(1, int(round(w * th / float(tw))))
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return resize(img[y0:y0 + ch, x0:x0 + cw], (th, tw), interp, use_opencv)
    if mode == "stretch":
        return resize(img, (th, tw), interp, use_opencv)
    if mode == "letterbox":
        s = min(th / float(h), tw / float(w))
        nh, nw = max(1, int(round(h * s))), max(1, int(round(w * s)))
        inner = resize(img, (nh, nw), interp, use_opencv)
        fill = np.rint(np.asarray(pp["mean"], np.float64) / float(pp["scale"])).clip(0, 255).astype(img.dtype)
        out = np.empty((th, tw, img.shape[2]), img.dtype)
        out[...] = fill
        y0, x0 = (th - nh) // 2, (tw - nw) // 2
        out[y0:y0 + nh, x0:x0 + nw] = inner
        return out
    raise EdgeRuntimeError("preprocess.resize is %r, expected center_crop, letterbox or stretch" % mode)


def _check_frame(frame: Any) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise EdgeRuntimeError("expected a colour frame (H, W, 3); got an array of shape %s" % (arr.shape,))
    if arr.dtype != np.uint8:
        raise EdgeRuntimeError("expected a uint8 frame (0..255); got dtype %s" % arr.dtype)
    return arr


_AFFINE: Dict[Tuple[float, ...], Tuple[np.ndarray, np.ndarray]] = {}


def _affine(pp: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` of shape (3, 1, 1) with ``(x * scale - mean) / std == x * a + b`` per channel, cached per
    manifest (hot path)."""
    key = tuple(float(v) for v in list(pp["mean"]) + list(pp["std"]) + [pp["scale"]])
    ab = _AFFINE.get(key)
    if ab is None:
        mean = np.asarray(pp["mean"], np.float64)
        std = np.asarray(pp["std"], np.float64)
        ab = ((float(pp["scale"]) / std).astype(np.float32).reshape(3, 1, 1),
              (-mean / std).astype(np.float32).reshape(3, 1, 1))
        if len(_AFFINE) < 64:
            _AFFINE[key] = ab
    return ab


def _normalize(x: np.ndarray, pp: Dict[str, Any], flip: bool = False) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 normalized; ``flip`` reverses the channels (BGR -> RGB).

    One pass: the channel-first (and flipped) view is converted and scaled into a fresh array by a single
    ``np.multiply``, then shifted in place (fewer passes over the data than astype + moveaxis)."""
    a, b = _affine(pp)
    view = np.moveaxis(x, -1, -3)
    if flip:
        view = view[..., ::-1, :, :]
    out = np.empty(view.shape, np.float32)
    np.multiply(view, a, out=out, casting="unsafe")
    out += b
    return out


class Preprocessor:
    """:func:`preprocess` bound to one manifest block: ``Preprocessor(pp, bgr=True)(frame)``. The loop's
    grabber thread runs it on every frame it captures (pipelined with inference on the loop's thread).
    It reads nothing from ``pp`` per call but what :func:`preprocess` reads, and returns a new array each
    call, so a tensor handed to another thread is never overwritten."""

    def __init__(self, pp: Dict[str, Any], bgr: bool = True, use_opencv: Optional[bool] = None) -> None:
        self.pp = dict(pp)
        self.bgr = bool(bgr)
        self.use_opencv = use_opencv
        self.size = (int(self.pp["size"][0]), int(self.pp["size"][1]))
        _affine(self.pp)  # validates mean/std/scale now, not on the first frame

    def __call__(self, frame: Any) -> np.ndarray:
        return preprocess(frame, self.pp, self.bgr, self.use_opencv)


def preprocess(frame: Any, pp: Dict[str, Any], bgr: bool = False, use_opencv: Optional[bool] = None) -> np.ndarray:
    """One frame -> ``(1, 3, H, W)`` float32 per the manifest's preprocess block.

    ``bgr=True`` for frames from OpenCV (``cv2.imread``, ``VideoCapture``): they are flipped to RGB first.
    """
    img = _check_frame(frame)
    if bgr and pp.get("resize", "center_crop") == "letterbox":
        img = img[..., ::-1]  # the letterbox fill is an RGB colour: flip first
        bgr = False
    # crop and resize act on each channel alike: do them on the frame as it comes (contiguous for OpenCV)
    # and flip BGR -> RGB on the small result
    img = _geometry(img, pp, use_opencv)
    return _normalize(img[None], pp, flip=bgr)


def preprocess_batch(frames: Any, pp: Dict[str, Any], bgr: bool = False, use_opencv: Optional[bool] = None) -> np.ndarray:
    """Many frames -> ``(N, 3, H, W)`` float32 (calibration, evaluation). A uint8 ``(N, H, W, 3)`` array at the
    target size takes a vectorized path; anything else goes frame by frame."""
    size = tuple(int(s) for s in pp["size"])
    if isinstance(frames, np.ndarray) and frames.ndim == 4 and frames.shape[1:3] == size and frames.shape[3] == 3:
        if frames.dtype != np.uint8:
            raise EdgeRuntimeError("expected uint8 frames (0..255); got dtype %s" % frames.dtype)
        return _normalize(frames, pp, flip=bgr)
    out = [preprocess(f, pp, bgr, use_opencv)[0] for f in frames]
    if not out:
        return np.zeros((0, 3) + size, np.float32)
    return np.stack(out)


def input_size(pp: Dict[str, Any]) -> Sequence[int]:
    return [int(pp["size"][0]), int(pp["size"][1])]
