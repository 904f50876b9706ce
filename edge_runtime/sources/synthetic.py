"""``synthetic://``: frames made in memory (:class:`SyntheticSource`), for checking a deployment without a camera."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..config import SourceConfig
from ..errors import EdgeRuntimeError
from .base import Source, SourceState


class SyntheticSource(Source):
    """Frames made in memory, for checking a deployment (and for tests) without a camera.

    Plays ``images`` (a list of HxWx3 uint8 BGR arrays) in turn, or a moving test pattern of
    ``width`` x ``height``. ``rate`` (fps) makes it live (newest frame only; drops when the consumer is
    slow); without it frames are handed over losslessly. ``frames``: end after that many (None: never).
    ``stall_after``: stop delivering after that many frames without ending (a hung camera: the policy
    must STOP with ``source_timeout``). ``fail_after``: fail after that many frames (a broken file).

    As a URI: ``synthetic://?width=64&height=48&rate=30&frames=300&stall_after=100&fail_after=200``.
    """

    def __init__(self, images: Optional[Sequence[np.ndarray]] = None, width: int = 64, height: int = 48,
                 rate: Optional[float] = None, frames: Optional[int] = None, stall_after: Optional[int] = None,
                 fail_after: Optional[int] = None, loop: bool = True, uri: str = "synthetic://") -> None:
        super().__init__(uri)
        self.images = [np.ascontiguousarray(i, dtype=np.uint8) for i in images] if images is not None else None
        if self.images is not None and not self.images:
            raise EdgeRuntimeError("%s: images is empty" % uri)
        self.width, self.height = width, height
        self.rate = rate
        self.frames = frames if (frames is not None or loop or self.images is None) else len(self.images)
        self.stall_after = stall_after
        self.fail_after = fail_after
        self.live = rate is not None

    def _image(self, i: int) -> np.ndarray:
        if self.images is not None:
            return self.images[i % len(self.images)]
        img = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        x = (i * 2) % self.width
        img[:, x:x + 4] = (0, 255, 255)  # a yellow bar sweeping right
        img[..., 0] = (i * 5) % 256
        return img

    def _run(self) -> None:
        i = 0
        next_t = time.monotonic()
        while not self._closing.is_set():
            if self.frames is not None and i >= self.frames:
                self._finish(SourceState.ENDED)
                return
            if self.fail_after is not None and i >= self.fail_after:
                self._finish(SourceState.FAILED, "synthetic failure after %d frames" % i)
                return
            if self.stall_after is not None and i >= self.stall_after:
                self._closing.wait()  # hung: deliver nothing, never end
                return
            if not self._publish(self._image(i)):
                return
            i += 1
            next_t = self._pace(self.rate, next_t)

    @classmethod
    def from_uri(cls, uri: str, opts: SourceConfig) -> "SyntheticSource":
        q = parse_qs(urlsplit(uri).query)
        known = ("width", "height", "rate", "frames", "stall_after", "fail_after")
        for key in q:
            if key not in known:
                raise EdgeRuntimeError("%s: unknown option %r; known: %s" % (uri, key, ", ".join(known)))

        def num(key: str, default: Any, kind: Callable[[str], Any]) -> Any:
            if key not in q:
                return default
            try:
                return kind(q[key][-1])
            except ValueError:
                raise EdgeRuntimeError("%s: %s=%r is not a %s" % (uri, key, q[key][-1], kind.__name__))

        src = cls(width=num("width", opts.width or 64, int), height=num("height", opts.height or 48, int),
                  rate=num("rate", opts.rate, float), frames=num("frames", None, int),
                  stall_after=num("stall_after", None, int), fail_after=num("fail_after", None, int), uri=uri)
        return src
