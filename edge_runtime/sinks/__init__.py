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

Layout: the contract and its queues in :mod:`.base`, one module per sink (:mod:`.console`, :mod:`.jsonl`,
:mod:`.udp`, :mod:`.gpio`, :mod:`.ros2`, :mod:`.callback`) with its options dataclass, the registry here.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

from .. import config as _config
from ..config import SinkConfig
from ..errors import EdgeRuntimeError
from .base import Sink, SinkEvent, SinkGroup, SinkStats, SinkWorker
from .callback import CallbackSink, CallbackSinkOptions, import_target
from .console import ConsoleSink, ConsoleSinkOptions
from .gpio import GpioSink, GpioSinkOptions
from .jsonl import JsonlSink, JsonlSinkOptions
from .ros2 import Ros2Sink, Ros2SinkOptions
from .udp import UdpSink, UdpSinkOptions

__all__ = ["SinkEvent", "Sink", "SinkStats", "SinkWorker", "SinkGroup", "ConsoleSink", "JsonlSink", "UdpSink",
           "GpioSink", "Ros2Sink", "CallbackSink", "register_sink", "create_sink", "build_sinks", "sink_types",
           "ConsoleSinkOptions", "JsonlSinkOptions", "UdpSinkOptions", "GpioSinkOptions", "Ros2SinkOptions",
           "CallbackSinkOptions"]

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
register_sink("callback", lambda o: CallbackSink(import_target(o.target), o.every_decision, o.heartbeat_s,
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
