"""The UDP sink: JSON datagrams to ``host:port`` (every change and a heartbeat); sends only, opens no listening
socket."""
from __future__ import annotations

import dataclasses
import json
import socket
from typing import Optional

from ..errors import EdgeRuntimeError
from ..schema import opt
from .base import Sink, SinkEvent

__all__ = ["UdpSinkOptions", "UdpSink"]


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
