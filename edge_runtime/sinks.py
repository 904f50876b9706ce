"""Sinks: where decisions go (console, JSONL log, UDP, GPIO, ROS 2, a Python callback).

A slow or failing sink never stalls the loop. Every sink runs behind its own small bounded queue and
worker thread (:class:`SinkWorker`); :meth:`SinkGroup.emit` only appends to those queues, so the loop
spends microseconds per decision whatever the sinks do. When a queue is full the oldest item that is
not a STOP is dropped (and counted); a STOP change is never dropped (a queue may grow past its size for
STOP changes only, up to 4x, which only a stuck sink under a flapping policy could reach; beyond that
the oldest is dropped and counted in ``dropped_stop``). Under that pressure a sink may miss a GO, never
a STOP: its last state errs on the safe side. A sink's exceptions are logged (the first with its
traceback, then one line every 100) and counted, never raised into the loop.

What each sink receives (:class:`SinkEvent`), decided in the loop thread by :meth:`SinkGroup.emit`:
``change`` for every decision whose ``changed`` is True, ``heartbeat`` when the sink has
``heartbeat_s`` and that long has passed (on the decisions' clock) since it last got anything, and
``decision`` for every other decision if the sink asks for ``every_decision``. Heartbeats come from the
loop's decisions, not from a timer: when the process hangs or dies, heartbeats stop, and a receiver that
watches them (UDP, ROS 2, a GPIO watchdog line) stops the machine. That is their point. While only the
inference hangs, the runtime's watchdog emits nothing until the policy turns STOP (``source_timeout``),
then that STOP and its heartbeats: never a stale GO (:mod:`edge_runtime.runtime`, "Watchdog").

Sink types are registered by name (:func:`register_sink`), so a config picks them::

    sinks:
      - {type: console}
      - {type: jsonl, path: /var/log/edge-runtime/events.jsonl}
      - {type: udp, host: 127.0.0.1, port: 5005, heartbeat_s: 0.2}

Optional stacks (Jetson.GPIO, rclpy) are imported when such a sink is created; a missing one is a
one-line error at startup, never later.
"""
from __future__ import annotations

import collections
import dataclasses
import importlib
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import config as _config
from .config import SinkConfig
from .errors import EdgeRuntimeError
from .policy import Action, Decision
from .schema import opt

__all__ = ["SinkEvent", "Sink", "SinkStats", "SinkWorker", "SinkGroup", "ConsoleSink", "JsonlSink", "UdpSink",
           "GpioSink", "Ros2Sink", "CallbackSink", "register_sink", "create_sink", "build_sinks", "sink_types",
           "ConsoleSinkOptions", "JsonlSinkOptions", "UdpSinkOptions", "GpioSinkOptions", "Ros2SinkOptions",
           "CallbackSinkOptions"]

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------------- sinks
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


@dataclasses.dataclass(frozen=True)
class UdpSinkOptions:
    """JSON datagrams to ``host:port``: every change and a heartbeat; a receiver should stop the machine
    when datagrams cease for a few heartbeat periods. Sends only: opens no listening socket."""

    port: int = opt(dataclasses.MISSING, lo=1, hi=65535)
    host: str = "127.0.0.1"
    heartbeat_s: Optional[float] = opt(0.2, lo=0, lo_open=True)


class UdpSink(Sink):
    """JSON datagrams (the JSONL record plus ``heartbeat_s``) to ``host:port``: every change and a heartbeat.

    A receiver on the machine's controller should STOP when no datagram arrived for a few heartbeat periods
    (the loop hung, the process died, the network broke). Sends only; binds no listening socket."""

    def __init__(self, port: int, host: str = "127.0.0.1", heartbeat_s: Optional[float] = 0.2) -> None:
        self.name = "udp:%s:%d" % (host, port)
        self.heartbeat_s = heartbeat_s
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise EdgeRuntimeError("udp sink: cannot resolve host %r (%s)" % (host, exc))
        family, _, _, _, addr = infos[0]
        self._addr = addr
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.settimeout(0.5)

    def write(self, event: SinkEvent) -> None:
        rec = event.to_dict()
        rec["heartbeat_s"] = self.heartbeat_s
        self._sock.sendto(json.dumps(rec, separators=(",", ":"), allow_nan=False).encode("utf-8"), self._addr)

    def close(self) -> None:
        self._sock.close()


@dataclasses.dataclass(frozen=True)
class GpioSinkOptions:
    """A Jetson GPIO line, energized only while motion is allowed (de-energized = STOP): ``pin`` is
    energized for GO and SLOW, ``slow_pin`` (optional) only for GO. Pins are ``mode`` numbers.
    ``heartbeat_s`` applies only with a ``watchdog_pin``."""

    pin: int = opt(dataclasses.MISSING, lo=0)
    slow_pin: Optional[int] = opt(None, lo=0)
    mode: str = opt("BOARD", choices=("BOARD", "BCM", "CVM", "TEGRA_SOC"))
    active_high: bool = True
    #: toggled on every heartbeat, for an external watchdog relay that drops out when the toggling stops
    watchdog_pin: Optional[int] = opt(None, lo=0)
    heartbeat_s: Optional[float] = opt(0.1, lo=0, lo_open=True)


class GpioSink(Sink):
    """A Jetson GPIO output energized only while motion is allowed: de-energized = STOP.

    ``pin`` is energized for GO and SLOW, ``slow_pin`` (optional) only for GO. Lines are driven to STOP at
    start and on close, then released (``GPIO.cleanup``): wire a pull-down (a pull-up when ``active_high``
    is false) so a released line reads STOP. A process killed with SIGKILL leaves a line as it was: for a
    machine that must stop then too, add ``watchdog_pin``, toggled on every heartbeat, driving an external
    watchdog relay that drops out when the toggling stops.
    """

    def __init__(self, pin: int, slow_pin: Optional[int] = None, mode: str = "BOARD", active_high: bool = True,
                 watchdog_pin: Optional[int] = None, heartbeat_s: Optional[float] = 0.1) -> None:
        try:
            import Jetson.GPIO as GPIO  # type: ignore[import-not-found]
        except ImportError as exc:
            raise EdgeRuntimeError("gpio sink needs Jetson.GPIO (%s): pip install Jetson.GPIO on the Jetson, or remove "
                                   "the gpio sink from the config" % exc)
        self._gpio = GPIO
        self.name = "gpio:%s%d" % (mode, pin)
        self.pins = [p for p in (pin, slow_pin) if p is not None]
        self.pin, self.slow_pin, self.watchdog_pin = pin, slow_pin, watchdog_pin
        self.active_high = active_high
        self.heartbeat_s = heartbeat_s if watchdog_pin is not None else None
        self._toggle = False
        try:
            GPIO.setmode(getattr(GPIO, mode))
            for p in self.pins + ([watchdog_pin] if watchdog_pin is not None else []):
                GPIO.setup(p, GPIO.OUT, initial=self._level(False))
        except (ValueError, RuntimeError) as exc:  # Jetson.GPIO's errors for bad pins, modes and permissions
            raise EdgeRuntimeError("gpio sink: cannot set up %s pin(s) %s as outputs (%s); check the pin numbers for "
                                   "this board and that the user is in the gpio group" % (mode, self.pins, exc))

    def _level(self, energized: bool) -> Any:
        on = energized == self.active_high
        return self._gpio.HIGH if on else self._gpio.LOW

    def _drive(self, action: Action) -> None:
        self._gpio.output(self.pin, self._level(action is not Action.STOP))
        if self.slow_pin is not None:
            self._gpio.output(self.slow_pin, self._level(action is Action.GO))

    def write(self, event: SinkEvent) -> None:
        self._drive(event.decision.action)
        if self.watchdog_pin is not None:
            self._toggle = not self._toggle
            self._gpio.output(self.watchdog_pin, self._level(self._toggle))

    def close(self) -> None:
        self._drive(Action.STOP)
        pins = self.pins + ([self.watchdog_pin] if self.watchdog_pin is not None else [])
        self._gpio.cleanup(pins)


@dataclasses.dataclass(frozen=True)
class Ros2SinkOptions:
    """A std_msgs/String (JSON) on ``topic`` for every change and a heartbeat."""

    topic: str = "/edge_runtime/decision"
    node_name: str = "edge_runtime"
    heartbeat_s: Optional[float] = opt(1.0, lo=0, lo_open=True)
    qos_depth: int = opt(10, lo=1)


class Ros2Sink(Sink):
    """std_msgs/String messages (the JSONL record) on a ROS 2 topic: every change and a heartbeat."""

    def __init__(self, topic: str = "/edge_runtime/decision", node_name: str = "edge_runtime",
                 heartbeat_s: Optional[float] = 1.0, qos_depth: int = 10) -> None:
        try:
            import rclpy  # type: ignore[import-not-found]
            from std_msgs.msg import String  # type: ignore[import-not-found]
        except ImportError as exc:
            raise EdgeRuntimeError("ros2 sink needs rclpy and std_msgs (%s): source your ROS 2 setup.bash before "
                                   "starting edge-runtime, or remove the ros2 sink from the config" % exc)
        self.name = "ros2:%s" % topic
        self.heartbeat_s = heartbeat_s
        self._rclpy = rclpy
        self._String = String
        self._own_init = not rclpy.ok()
        if self._own_init:
            rclpy.init()
        self._node = rclpy.create_node(node_name)
        self._pub = self._node.create_publisher(String, topic, qos_depth)

    def write(self, event: SinkEvent) -> None:
        msg = self._String()
        msg.data = event.to_json()
        self._pub.publish(msg)

    def close(self) -> None:
        self._node.destroy_node()
        if self._own_init and self._rclpy.ok():
            self._rclpy.shutdown()


@dataclasses.dataclass(frozen=True)
class CallbackSinkOptions:
    """A Python callable ``module:function`` taking a Decision; every decision or only changes."""

    target: str
    every_decision: bool = False
    heartbeat_s: Optional[float] = opt(None, lo=0, lo_open=True)


class CallbackSink(Sink):
    """Calls ``fn(decision)`` on the sink's worker thread (so a slow callback cannot stall the loop)."""

    def __init__(self, fn: Callable[[Decision], Any], every_decision: bool = False,
                 heartbeat_s: Optional[float] = None, name: Optional[str] = None) -> None:
        if not callable(fn):
            raise TypeError("CallbackSink needs a callable, got %r" % (fn,))
        self.fn = fn
        self.every_decision = every_decision
        self.heartbeat_s = heartbeat_s
        self.name = name or "callback:%s" % getattr(fn, "__name__", type(fn).__name__)

    def write(self, event: SinkEvent) -> None:
        self.fn(event.decision)


def _import_target(target: str) -> Callable[[Decision], Any]:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise EdgeRuntimeError("callback sink: target %r must be 'module:function'" % target)
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise EdgeRuntimeError("callback sink: cannot import %s (%s)" % (target, exc))
    if not callable(obj):
        raise EdgeRuntimeError("callback sink: %s is not callable" % target)
    return obj  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- registry
SinkFactory = Callable[[Any], Sink]
_REGISTRY: Dict[str, Tuple[SinkFactory, type]] = {}


def register_sink(name: str, factory: SinkFactory, options_type: type) -> None:
    """Register a sink type: ``factory(options) -> Sink``, with ``options_type`` the dataclass its YAML keys
    are checked against. A duplicate name raises."""
    if name in _REGISTRY:
        raise ValueError("sink type %r is already registered" % name)
    _config.register_sink_options(name, options_type)
    _REGISTRY[name] = (factory, options_type)


def sink_types() -> List[str]:
    return sorted(_REGISTRY)


register_sink("console", lambda o: ConsoleSink(heartbeat_s=o.heartbeat_s, stream_name=o.stream), ConsoleSinkOptions)
register_sink("jsonl", lambda o: JsonlSink(o.path, o.heartbeat_s, o.max_bytes, o.backups, o.fsync_on_stop),
              JsonlSinkOptions)
register_sink("udp", lambda o: UdpSink(o.port, o.host, o.heartbeat_s), UdpSinkOptions)
register_sink("gpio", lambda o: GpioSink(o.pin, o.slow_pin, o.mode, o.active_high, o.watchdog_pin, o.heartbeat_s),
              GpioSinkOptions)
register_sink("ros2", lambda o: Ros2Sink(o.topic, o.node_name, o.heartbeat_s, o.qos_depth), Ros2SinkOptions)
register_sink("callback", lambda o: CallbackSink(_import_target(o.target), o.every_decision, o.heartbeat_s,
                                                 name="callback:%s" % o.target), CallbackSinkOptions)


def create_sink(cfg: SinkConfig) -> Sink:
    """One sink from its config; an unknown type lists the known ones."""
    if cfg.type not in _REGISTRY:
        raise EdgeRuntimeError("unknown sink type %r; known: %s" % (cfg.type, ", ".join(sink_types())))
    factory, options_type = _REGISTRY[cfg.type]
    options = cfg.options if cfg.options is not None else options_type()
    return factory(options)


def build_sinks(configs: Sequence[SinkConfig]) -> SinkGroup:
    """A :class:`SinkGroup` from the config's ``sinks``. If one cannot be created, those already made are
    closed and the error (one line) is raised."""
    group = SinkGroup()
    try:
        for i, cfg in enumerate(configs):
            try:
                group.add(create_sink(cfg), cfg.queue_size)
            except EdgeRuntimeError as exc:
                raise EdgeRuntimeError("sinks[%d]: %s" % (i, exc))
    except BaseException:
        group.close(timeout=1.0)
        raise
    return group
