"""Several cameras: a group of named sources read together, and the cameras of a run from config + SOURCE arguments.

``sources:`` in the runtime config lists named cameras (:class:`~edge_runtime.config.CameraConfig`: a source's options
plus a ``name`` and its ``regions``); ``edge-runtime run front=csi://0 rear=/dev/video1`` names them on the command
line. :class:`SourceGroup` is what the loop reads: the newest frame of every camera that has one, so one step batches
all of them (:mod:`edge_runtime.regions`, :class:`~edge_runtime.runtime.Runtime`).
"""
from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

from .errors import EdgeRuntimeError
from .sources import Frame, Source, source_options

__all__ = ["SourceGroup", "camera_configs", "split_named"]


class SourceGroup:
    """Several named sources read together (``sources:`` in the config): :meth:`read` waits up to ``timeout`` for
    the first new frame of ANY camera, then takes, without waiting, the newest frame every other camera has, so
    one step of the loop batches all of them. Each source keeps its own grabber thread, reconnects by itself and
    keeps only its newest frame. With one source it is that source's :meth:`Source.read`, nothing more."""

    def __init__(self, sources: Sequence[Source]) -> None:
        if not sources:
            raise EdgeRuntimeError("no source given: pass a SOURCE argument or set source.uri (or sources) in the config")
        self.sources = list(sources)
        self._wake = threading.Event()
        if len(self.sources) > 1:
            for s in self.sources:
                s.listener = self._wake
        #: reads that found no new frame from any camera
        self.timeouts = 0

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def names(self) -> List[Optional[str]]:
        return [s.name for s in self.sources]

    def open(self) -> "SourceGroup":
        opened: List[Source] = []
        try:
            for s in self.sources:
                s.__enter__()
                opened.append(s)
        except BaseException:
            for s in opened:
                s.close()
            raise
        return self

    def __enter__(self) -> "SourceGroup":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for s in self.sources:
            s.close()

    def read(self, timeout: float, window_s: float = 0.0) -> List[Tuple[int, Frame]]:
        """``[(camera index, frame), ...]`` for every camera with a new frame; [] after ``timeout`` with none, or
        when every source has finished (then :attr:`finished`). ``window_s``: once one camera has a frame, wait up to
        this long for the cameras still without one (that have not finished), so they join the same batch."""
        if len(self.sources) == 1:
            f = self.sources[0].read(timeout)
            return [] if f is None else [(0, f)]
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            self._wake.clear()  # before polling: a frame published after the poll sets it again
            out = [(i, f) for i, f in enumerate(s.poll() for s in self.sources) if f is not None]
            if out or self.finished:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timeouts += 1
                return []
            self._wake.wait(remaining)
        if out and window_s > 0 and len(out) < len(self.sources):
            t_stop = time.monotonic() + window_s
            have = {i for i, _ in out}
            missing = [i for i, s in enumerate(self.sources) if i not in have and not s.finished]
            while missing:
                self._wake.clear()
                for i in list(missing):
                    f = self.sources[i].poll()
                    if f is not None:
                        out.append((i, f))
                        missing.remove(i)
                left = t_stop - time.monotonic()
                if not missing or left <= 0:
                    break
                self._wake.wait(left)
            out.sort(key=lambda x: x[0])
        return out

    @property
    def finished(self) -> bool:
        """Every source has ended, failed or been closed (a run with several cameras goes on while one is left)."""
        return all(s.finished for s in self.sources)

    @property
    def failed(self) -> bool:
        return any(s.failed for s in self.sources)

    @property
    def failure(self) -> str:
        if len(self.sources) == 1:
            return self.sources[0].failure
        return "; ".join("camera %s: %s" % (s.name, s.failure) for s in self.sources if s.failed)

    def describe(self) -> str:
        if len(self.sources) == 1:
            return self.sources[0].describe()
        return ", ".join("%s=%s" % (s.name, s.describe()) for s in self.sources)


_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=(.+)$")


def split_named(arg: str) -> Tuple[Optional[str], str]:
    """``front=csi://0`` -> ("front", "csi://0"); a plain URI (also ``synthetic://?rate=30``) -> (None, uri)."""
    m = _NAMED.match(str(arg))
    return (m.group(1), m.group(2)) if m else (None, str(arg))


def camera_configs(cfg: Any, args: Sequence[str] = ()) -> List[Any]:
    """The cameras of a run: :class:`~edge_runtime.config.CameraConfig` each, or the one unnamed ``source:`` (a plain
    :class:`~edge_runtime.config.SourceConfig`; read ``name``/``regions`` with getattr).

    From the config's ``sources:`` (or its single ``source:``), with SOURCE arguments laid over it: ``name=uri``
    replaces that camera's URI (keeping its size, rate and regions), a plain URI replaces the camera at its
    position. Without ``sources:`` in the config, several arguments (or one ``name=uri``) make one camera each,
    named as given or ``cam0``, ``cam1``...; each takes ``source:``'s options and the top-level ``regions:``."""
    from .config import CameraConfig

    parsed = [split_named(a) for a in args]
    if not cfg.sources:
        if len(parsed) <= 1 and all(n is None for n, _ in parsed):
            if not parsed:
                return [cfg.source]
            return [dataclasses.replace(source_options(cfg.source, parsed[0][1]), uri=parsed[0][1])]
        made = []
        for i, (name, uri) in enumerate(parsed):
            opts = dataclasses.replace(source_options(cfg.source, uri), uri=uri)
            made.append(CameraConfig(**dict({f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)},
                                            name=name or "cam%d" % i, regions=None)))
        names = [c.name for c in made]
        dup = [n for n in names if names.count(n) > 1]
        if dup:
            raise EdgeRuntimeError("SOURCE %s=...: the camera name %r is given twice" % (dup[0], dup[0]))
        return made
    cams: List[Any] = list(cfg.sources)
    known = [str(c.name) for c in cams]
    pos = 0
    for name, uri in parsed:
        if name is None:
            if pos >= len(cams):
                raise EdgeRuntimeError("%d SOURCE arguments for the %d cameras of %s (%s); name them: NAME=URI"
                                       % (len(parsed), len(cams), cfg.origin, ", ".join(known)))
            cams[pos] = dataclasses.replace(source_options(cams[pos], uri), uri=uri)
            pos += 1
        elif name in known:
            i = known.index(name)
            cams[i] = dataclasses.replace(source_options(cams[i], uri), uri=uri)
        else:
            raise EdgeRuntimeError("SOURCE %s=%s: %s has no camera named %r; its cameras: %s"
                                   % (name, uri, cfg.origin, name, ", ".join(known)))
    return cams
