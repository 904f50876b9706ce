"""Image folders and globs (:class:`ImageFolderSource`): sorted paths, read with OpenCV (``.npy`` with numpy only)."""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

from ..config import SourceConfig
from .base import Source, SourceState, _flip, _import_cv2, log


def _read_image(path: str, cv2: Any) -> Optional[np.ndarray]:
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); skipped", path, exc)
            return None
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            log.warning("%s: expected HxWx3 uint8 (BGR), got %s %s; skipped", path, arr.dtype, arr.shape)
            return None
        return arr
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        log.warning("%s: not a readable image; skipped", path)
    return img


class ImageFolderSource(Source):
    """Images from a sorted list of paths (a folder or a glob), as fast as consumed or at ``rate``.
    Unreadable images are skipped and counted as errors; a pass with no readable image fails."""

    def __init__(self, uri: str, paths: Sequence[str], opts: SourceConfig) -> None:
        super().__init__(uri)
        self.paths = list(paths)
        self.opts = opts
        self.live = opts.rate is not None
        self._cv2: Any = None

    def describe(self) -> str:
        return "%s (%d images%s)" % (self.uri, len(self.paths), ", loop" if self.opts.loop else "")

    def _connect(self) -> None:
        needs_cv2 = any(not p.lower().endswith(".npy") for p in self.paths) or bool(self.opts.width)
        if needs_cv2:
            self._cv2 = _import_cv2(self.uri)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._closing.is_set():
            good = 0
            for path in self.paths:
                if self._closing.is_set():
                    return
                img = _read_image(path, self._cv2)
                if img is None:
                    self._error("unreadable image %s" % path)
                    continue
                good += 1
                img = _flip(img, self.opts.flip)
                w, h = self.opts.width, self.opts.height
                if w and h and (img.shape[1] != w or img.shape[0] != h):
                    img = self._cv2.resize(img, (w, h), interpolation=self._cv2.INTER_AREA)
                if not self._publish(np.ascontiguousarray(img)):
                    return
                next_t = self._pace(self.opts.rate, next_t)
            if good == 0:
                self._finish(SourceState.FAILED, "none of the %d images in %s could be read" % (len(self.paths), self.uri))
                return
            if not self.opts.loop:
                self._finish(SourceState.ENDED)
                return
