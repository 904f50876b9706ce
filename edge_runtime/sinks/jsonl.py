"""The JSONL event log sink: every change and a heartbeat as one JSON object per line, flushed per line, fsynced
on STOP, rotated by size."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import IO, Optional

from ..errors import EdgeRuntimeError
from ..policy import Action
from ..schema import opt
from .base import Sink, SinkEvent

__all__ = ["JsonlSinkOptions", "JsonlSink"]


@dataclasses.dataclass(frozen=True)
class JsonlSinkOptions:
    """Every change and a periodic heartbeat as one JSON object per line; flushed per line, fsynced on STOP,
    rotated by size (``path`` -> ``path.1`` ... ``path.<backups>``)."""

    path: str
    heartbeat_s: Optional[float] = opt(5.0, lo=0, lo_open=True)
    max_bytes: int = opt(10000000, lo=1024)
    backups: int = opt(5, lo=0)
    fsync_on_stop: bool = True


class JsonlSink(Sink):
    """One JSON object per line: every change and a heartbeat. Each line is written whole and flushed (a
    killed process loses no written line); on STOP the file is also ``os.fsync``'d (a power cut keeps it).
    Rotation by size: ``path`` -> ``path.1`` -> ... -> ``path.<backups>``, between lines."""

    def __init__(self, path: str, heartbeat_s: Optional[float] = 5.0, max_bytes: int = 10000000, backups: int = 5,
                 fsync_on_stop: bool = True) -> None:
        self.path = Path(path)
        self.name = "jsonl:%s" % path
        self.heartbeat_s = heartbeat_s
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync_on_stop = fsync_on_stop
        self._refuse_foreign(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: Optional[IO[bytes]] = open(str(self.path), "ab")
            self._size = self._fh.tell()
            if self._size > 0 and not self._ends_with_newline():
                self._fh.write(b"\n")  # a line cut by a crash or power loss stays alone: the next one parses
                self._size += 1
        except OSError as exc:
            raise EdgeRuntimeError("jsonl sink: cannot open %s for appending (%s); choose a writable path"
                                   % (path, exc.strerror or exc))

    #: how every line this sink writes begins (SinkEvent.to_json puts ``event`` first, without spaces)
    LINE_START = b'{"event":"'

    @classmethod
    def _refuse_foreign(cls, path: Path) -> None:
        """Append only to this sink's own log: an existing non-empty file must start with one of its events (a
        model, a CSV or another program's log would be corrupted by the lines appended to it)."""
        try:
            if path.is_dir():
                raise EdgeRuntimeError("jsonl sink: %s is a folder; give a file path (e.g. %s)" % (path, path / "events.jsonl"))
            if not path.is_file() or path.stat().st_size == 0:
                return
            with open(str(path), "rb") as fh:
                head = fh.read(len(cls.LINE_START))
        except OSError as exc:
            raise EdgeRuntimeError("jsonl sink: cannot read %s (%s); choose a readable, writable path" % (path, exc.strerror or exc))
        if head != cls.LINE_START:
            raise EdgeRuntimeError("jsonl sink: %s exists and is not an edge-runtime event log (its first line is not one "
                                   "of its events); appending would corrupt it: choose another path, or move the file away"
                                   % path)

    def _ends_with_newline(self) -> bool:
        with open(str(self.path), "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def write(self, event: SinkEvent) -> None:
        data = (event.to_json() + "\n").encode("utf-8")
        if self._size > 0 and self._size + len(data) > self.max_bytes:
            self._rotate()
        fh = self._fh
        assert fh is not None, "write after close"
        fh.write(data)
        fh.flush()
        self._size += len(data)
        if self.fsync_on_stop and event.decision.action is Action.STOP:
            os.fsync(fh.fileno())

    def _rotate(self) -> None:
        assert self._fh is not None
        os.fsync(self._fh.fileno())
        self._fh.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = Path("%s.%d" % (self.path, i))
                if older.exists():
                    os.replace(str(older), "%s.%d" % (self.path, i + 1))
            os.replace(str(self.path), "%s.1" % self.path)
        else:
            self.path.unlink()
        self._fh = open(str(self.path), "ab")
        self._size = 0

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
