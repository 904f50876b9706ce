"""The sink contract and its machinery: :class:`Sink` (what a sink implements), :class:`SinkEvent` (what it
receives), :class:`SinkWorker` (one sink behind a bounded queue and a thread) and :class:`SinkGroup` (all sinks of
a run). The policy of what is sent, what is dropped and why is in the package docstring (:mod:`edge_runtime.sinks`)."""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Sequence

from ..policy import Action, Decision

__all__ = ["SinkEvent", "Sink", "SinkStats", "SinkWorker", "SinkGroup"]

log = logging.getLogger("edge_runtime.sinks")  # the package's name: one logger for all sinks


@dataclasses.dataclass(frozen=True)
class SinkEvent:
    """One item for a sink: the decision, why it is sent (``change``, ``heartbeat`` or ``decision``), and the
    wall-clock time (``time.time()``) when the loop emitted it."""

    decision: Decision
    kind: str
    wall_time: float

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"event": self.kind, "wall_time": round(self.wall_time, 3)}
        d.update(self.decision.to_dict())
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)


class Sink:
    """Base class: implement :meth:`write` (called on the sink's own worker thread) and maybe :meth:`close`.

    ``heartbeat_s``: also send the current decision when this long has passed without one (None: never).
    ``every_decision``: receive every decision, not only changes and heartbeats.
    """

    name = "sink"
    heartbeat_s: Optional[float] = None
    every_decision = False

    def write(self, event: SinkEvent) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release what the sink holds; called once, on its worker thread, after the queue is drained."""


@dataclasses.dataclass
class SinkStats:
    """Counters per sink: ``sent`` (written without error), ``dropped`` (non-STOP items dropped from a full
    queue), ``dropped_stop`` (STOP items dropped past the hard limit), ``errors`` and the last one, ``queued``."""

    sent: int = 0
    dropped: int = 0
    dropped_stop: int = 0
    errors: int = 0
    last_error: str = ""
    queued: int = 0


class SinkWorker:
    """One sink behind a bounded queue and a daemon worker thread. :meth:`offer` never blocks."""

    def __init__(self, sink: Sink, queue_size: int = 64) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1, got %d" % queue_size)
        self.sink = sink
        self.queue_size = queue_size
        self.hard_limit = 4 * queue_size
        self._q: Deque[SinkEvent] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closing = False
        self._stats = SinkStats()
        self.last_t: Optional[float] = None  # decision time of the last item offered (for heartbeats)
        self._thread = threading.Thread(target=self._run, name="sink:%s" % sink.name[:40], daemon=True)
        self._thread.start()

    @property
    def stats(self) -> SinkStats:
        with self._cond:
            s = dataclasses.replace(self._stats)
            s.queued = len(self._q)
            return s

    def offer(self, event: SinkEvent) -> None:
        """Queue an event without blocking. When the queue is full: drop the oldest non-STOP item, else the oldest
        STOP heartbeat, else the incoming item if it is not a STOP change; a STOP change is always queued (the
        oldest STOP change goes only past the hard limit, counted in ``dropped_stop``)."""
        with self._cond:
            if self._closing:
                return
            if len(self._q) >= self.queue_size and not self._make_room(event):
                self._stats.dropped += 1
                return
            self._q.append(event)
            self._cond.notify_all()

    def _make_room(self, incoming: SinkEvent) -> bool:
        """Free a place for ``incoming``; False if ``incoming`` itself is the one to drop."""
        for i, item in enumerate(self._q):
            if item.decision.action is not Action.STOP:
                del self._q[i]
                self._stats.dropped += 1
                return True
        for i, item in enumerate(self._q):
            if item.kind != "change":
                del self._q[i]
                self._stats.dropped += 1
                return True
        # only STOP changes are queued: a non-STOP item waits for the next change or heartbeat (the sink's
        # last state stays STOP meanwhile, the safe side); a STOP change is kept
        if incoming.decision.action is not Action.STOP or incoming.kind != "change":
            return False
        if len(self._q) >= self.hard_limit:
            self._q.popleft()
            self._stats.dropped_stop += 1
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._q and not self._closing:
                    self._cond.wait()
                if not self._q:
                    break
                event = self._q.popleft()
                self._busy = True
            try:
                self.sink.write(event)
                ok, err = True, ""
            except Exception as exc:  # noqa: BLE001 - a sink's failure must never reach the loop
                ok, err = False, "%s: %s" % (type(exc).__name__, exc)
                self._log_error(err, exc)
            with self._cond:
                self._busy = False
                if ok:
                    self._stats.sent += 1
                else:
                    self._stats.errors += 1
                    self._stats.last_error = err
                self._cond.notify_all()
        try:
            self.sink.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("sink %s: close failed: %s: %s", self.sink.name, type(exc).__name__, exc)

    def _log_error(self, err: str, exc: BaseException) -> None:
        n = self._stats.errors + 1
        if n == 1:
            log.warning("sink %s failed (the loop goes on; later failures are logged every 100): %s",
                        self.sink.name, err, exc_info=exc)
        elif n % 100 == 0:
            log.warning("sink %s: %d failures so far, last: %s", self.sink.name, n, err)

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until the queue is empty and the sink idle; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._q or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def begin_close(self) -> None:
        """Accept no more events; the worker drains the queue, closes the sink and ends."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def close(self, timeout: float = 2.0) -> bool:
        """Deliver what is queued (up to ``timeout``), then close the sink. False if the worker is still busy."""
        self.begin_close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("sink %s did not finish within %.1f s (%d items left); abandoning it",
                        self.sink.name, timeout, len(self._q))
            return False
        return True


class SinkGroup:
    """All sinks of a run. The loop calls :meth:`emit` with every decision and :meth:`close` at the end."""

    def __init__(self, sinks: Sequence[Sink] = (), queue_size: int = 64) -> None:
        self.workers: List[SinkWorker] = []
        for s in sinks:
            self.add(s, queue_size)

    def add(self, sink: Sink, queue_size: int = 64) -> SinkWorker:
        w = SinkWorker(sink, queue_size)
        self.workers.append(w)
        return w

    def emit(self, decision: Decision) -> None:
        """Route one decision to each sink that wants it (change, heartbeat, every decision). Bounded time."""
        wall: Optional[float] = None
        for w in self.workers:
            sink = w.sink
            if decision.changed:
                kind = "change"
            elif sink.every_decision:
                kind = "decision"
            elif sink.heartbeat_s is not None and (w.last_t is None or decision.t - w.last_t >= sink.heartbeat_s):
                kind = "heartbeat"
            else:
                continue
            if wall is None:
                wall = time.time()
            w.last_t = decision.t
            w.offer(SinkEvent(decision, kind, wall))

    def flush(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(w.flush(max(0.0, deadline - time.monotonic())) for w in self.workers)

    def close(self, timeout: float = 2.0) -> None:
        """Drain and close every sink, together, within about ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.begin_close()
        for w in self.workers:
            w.close(max(0.05, deadline - time.monotonic()))

    def stats(self) -> Dict[str, SinkStats]:
        return {"%d:%s" % (i, w.sink.name): w.stats for i, w in enumerate(self.workers)}

    def __enter__(self) -> "SinkGroup":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
