"""A tiny sd_notify client: tell systemd the service is ready, alive (watchdog) and stopping.

No dependency: one datagram per message to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or an
abstract-namespace name written with a leading ``@``), as ``sd_notify(3)`` does. Without ``$NOTIFY_SOCKET``
(not started by systemd, or a unit that is not ``Type=notify``/``NotifyAccess``) every call is a no-op.

The runtime sends:

- ``READY=1`` once, when the loop has made its first valid decision (a frame decided without a fault),
  so ``systemctl start`` returns only when the robot is really being driven by the model;
- ``WATCHDOG=1`` from the loop itself on every iteration (frame or empty poll), rate-limited to half of
  ``$WATCHDOG_USEC``: if the loop hangs (a stuck inference, a deadlock), the pings stop and systemd
  kills and restarts the service after ``WatchdogSec``. Never ping from a helper thread: that would hide
  a hung loop. Without ``$WATCHDOG_USEC`` (no ``WatchdogSec=``) no pings are sent;
- ``STOPPING=1`` when the final STOP has been emitted.

A failed send is logged once and never raised: the loop must not stop because systemd went away.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping, Optional

__all__ = ["Notifier", "notify"]

log = logging.getLogger(__name__)


def _address(value: str) -> str:
    """``$NOTIFY_SOCKET`` to a socket address: ``@name`` is the abstract namespace (a leading NUL byte)."""
    return "\0" + value[1:] if value.startswith("@") else value


def notify(state: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Send one message (e.g. ``"READY=1"``) to ``$NOTIFY_SOCKET``; True if it was sent, False if there is no
    socket or the send failed."""
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET", "")
    if not path or not hasattr(socket, "AF_UNIX"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(_address(path))
            s.sendall(state.encode("utf-8"))
        return True
    except OSError as exc:
        log.debug("sd_notify %r to %s failed: %s", state, path, exc)
        return False


class Notifier:
    """The runtime's systemd link: :meth:`ready` (once), :meth:`watchdog` (rate-limited), :meth:`stopping`.

    ``environ`` defaults to ``os.environ`` as it is when the Notifier is made. ``$WATCHDOG_PID``, when set,
    must be this process (as in ``sd_watchdog_enabled``); otherwise the watchdog is off.
    """

    def __init__(self, environ: Optional[Mapping[str, str]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if environ is None else environ
        self.socket_path = env.get("NOTIFY_SOCKET", "") or None
        self._env = {"NOTIFY_SOCKET": self.socket_path or ""}
        self._clock = clock
        self.watchdog_interval_s: Optional[float] = None  # half of WATCHDOG_USEC: the most time between pings
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        try:
            if self.socket_path and usec and int(usec) > 0 and (not pid or int(pid) == os.getpid()):
                self.watchdog_interval_s = int(usec) / 2e6
        except ValueError:
            log.warning("ignoring WATCHDOG_USEC=%r / WATCHDOG_PID=%r: not integers", usec, pid)
        self.is_ready = False
        self.sent = 0
        self.failed = 0
        self._last_ping: Optional[float] = None

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None

    def send(self, state: str) -> bool:
        if self.socket_path is None:
            return False
        ok = notify(state, self._env)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            if self.failed == 1:
                log.warning("sd_notify: cannot write %r to NOTIFY_SOCKET=%s (systemd will not see it)",
                            state, self.socket_path)
        return ok

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (with ``STATUS=``), once; later calls do nothing."""
        if self.is_ready or self.socket_path is None:
            return False
        self.is_ready = True
        msg = "READY=1" + ("\nSTATUS=%s" % status.replace("\n", " ") if status else "")
        return self.send(msg)

    def watchdog(self) -> bool:
        """``WATCHDOG=1`` if the watchdog is on and half of ``WATCHDOG_USEC`` has passed since the last one."""
        if self.watchdog_interval_s is None:
            return False
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self.watchdog_interval_s:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        """``STOPPING=1`` (with ``STATUS=``)."""
        if self.socket_path is None:
            return False
        return self.send("STOPPING=1" + ("\nSTATUS=%s" % status.replace("\n", " ") if status else ""))
