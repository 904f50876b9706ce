"""The console sink: one line per change of action to stdout (or stderr)."""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import IO, Optional

from ..schema import opt
from .base import Sink, SinkEvent

__all__ = ["ConsoleSinkOptions", "ConsoleSink"]


@dataclasses.dataclass(frozen=True)
class ConsoleSinkOptions:
    """One line per change of action to stdout (or stderr)."""

    stream: str = opt("stdout", choices=("stdout", "stderr"))
    heartbeat_s: Optional[float] = opt(None, lo=0, lo_open=True)


class ConsoleSink(Sink):
    """One line per change (``HH:MM:SS STOP rule animals 0.83 | dog 0.61 | 2.1 ms``)."""

    def __init__(self, stream: Optional[IO[str]] = None, heartbeat_s: Optional[float] = None,
                 stream_name: str = "stdout") -> None:
        self.name = "console"
        self._stream = stream
        self._stream_name = stream_name
        self.heartbeat_s = heartbeat_s

    def write(self, event: SinkEvent) -> None:
        stream = self._stream if self._stream is not None else getattr(sys, self._stream_name)
        mark = "" if event.kind == "change" else " (%s)" % event.kind
        stream.write("%s %s%s\n" % (time.strftime("%H:%M:%S", time.localtime(event.wall_time)),
                                    event.decision.summary(), mark))
        stream.flush()
