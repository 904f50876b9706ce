"""Frames pushed by your own code (:class:`PushSource`): no thread of its own."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .base import S, Source, SourceState


class PushSource(Source):
    """Frames pushed by your own code (a ROS image callback, another camera stack): :meth:`push` from any
    thread, newest frame kept, :meth:`end` when there will be no more. No thread of its own."""

    def __init__(self, uri: str = "push://") -> None:
        super().__init__(uri)

    def open(self: S) -> S:
        if self._state is SourceState.CREATED:
            self._state = SourceState.RUNNING
        return self

    def push(self, image: np.ndarray, t_capture: Optional[float] = None) -> None:
        """Offer a frame (HxWx3 uint8 BGR); ``t_capture`` defaults to now (``time.monotonic()``). The runtime's
        preprocessing (:attr:`transform`) runs here, in the caller's thread."""
        if self._state is SourceState.CREATED:
            self.open()
        self._publish(np.ascontiguousarray(image, dtype=np.uint8), t_capture)

    def end(self, failure: str = "") -> None:
        """No more frames: the source ends (or fails, with a reason)."""
        self._finish(SourceState.FAILED if failure else SourceState.ENDED, failure)
