"""Progress of long work (calibration, accuracy passes, evaluation): tqdm on a terminal, plain lines otherwise.

A robot may have no tqdm, and a log file or CI output has no use for carriage returns: then one line every few
seconds (``eval onnxruntime: 2500/10000 images (25 %), 3.1 s, about 9 s left``) and one at the end. Stdlib only,
written to stderr so stdout keeps the command's results.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Any, Optional

__all__ = ["Progress"]


class Progress:
    """``total`` steps of ``unit``; :meth:`update` after each chunk, :meth:`close` (or ``with``) at the end.
    ``enabled=False`` is silent. ``tty``: force the terminal (tqdm) or the plain mode; default: ``stream.isatty()``."""

    def __init__(self, total: int, desc: str, unit: str = "images", enabled: bool = True,
                 stream: Optional[IO[str]] = None, tty: Optional[bool] = None, every_s: float = 5.0) -> None:
        self.total, self.desc, self.unit, self.enabled = int(total), desc, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.every_s = every_s
        self._t0 = time.monotonic()
        self._last = self._t0
        self._closed = False
        self._bar: Any = None
        if enabled and (tty if tty is not None else bool(getattr(self.stream, "isatty", lambda: False)())):
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=self.stream, leave=False,
                                 dynamic_ncols=True)
            except ImportError:  # the robot has no tqdm: plain lines
                self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(ok=exc[0] is None)

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.every_s and self.n < self.total:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        spent = now - self._t0
        pct = 100.0 * self.n / self.total if self.total else 100.0
        left = spent / self.n * (self.total - self.n) if self.n else float("nan")
        self.stream.write("%s: %d/%d %s (%.0f %%), %.1f s, about %.0f s left\n"
                          % (self.desc, self.n, self.total, self.unit, pct, spent, left))
        self.stream.flush()

    def close(self, ok: bool = True) -> None:
        """The closing line (plain mode): how many steps in how long."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        if ok:
            self.stream.write("%s: %d %s in %.1f s\n" % (self.desc, self.n, self.unit, time.monotonic() - self._t0))
            self.stream.flush()
