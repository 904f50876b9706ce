"""Signals for the command line, handled from the first moment of the process.

:func:`install` runs before any heavy import: first thing in ``python -m edge_runtime`` (``__main__``) and at
the top of the console script's :func:`edge_runtime.cli.main`. From then on:

- SIGTERM / SIGINT before a run is attached (imports, argument parsing, config, model load, a PyTorch checkpoint
  taking seconds): :class:`Interrupted` (a ``KeyboardInterrupt``) unwinds the start-up; :func:`edge_runtime.cli.main`
  answers with one line: ``run`` exits 0 on SIGTERM (the way a service is stopped) and 130 on SIGINT; other
  commands exit 128 + the signal number. No sink exists yet, so there is nothing to STOP.
- SIGTERM / SIGINT once ``run`` has attached its Runtime (:func:`attach`, as soon as the Runtime and its sinks
  exist): ``Runtime.stop()``: the loop ends with a final STOP (reason ``shutdown``, the signal in its detail),
  flushes the sinks and ``run`` exits 0, also during the warm-up or while the backend hangs.
- SIGUSR1: releases a latched STOP once attached (``Runtime.reset_latch``); before that it is ignored. It never
  ends the process.

Commands other than ``run`` get Python's defaults back after their arguments are parsed (:func:`restore`).
"""
from __future__ import annotations

import signal
import threading
from typing import Any, Callable, Dict, Optional

__all__ = ["Interrupted", "install", "attach", "detach", "restore", "exit_code"]

_SIGNALS = ("SIGINT", "SIGTERM", "SIGUSR1")
_saved: Dict[int, Any] = {}
_stop: Optional[Callable[[str], None]] = None
_reset: Optional[Callable[[], None]] = None
_raised = False  # one Interrupted per start-up: a second signal while it unwinds is not raised into the handler


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived before anything was running; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_stop(signum: int, _frame: Any) -> None:
    global _raised
    stop = _stop
    if stop is None:
        if _raised:
            return
        _raised = True
        raise Interrupted(signum)
    stop("%s received" % signal.Signals(signum).name)


def _on_usr1(_signum: int, _frame: Any) -> None:
    reset = _reset
    if reset is not None:
        reset()


def install() -> bool:
    """Install the handlers (main thread only; idempotent). True if this call installed them."""
    if _saved or threading.current_thread() is not threading.main_thread():
        return False
    for name in _SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            _saved[int(sig)] = signal.signal(sig, _on_usr1 if name == "SIGUSR1" else _on_stop)
    return True


def restore() -> None:
    """Put back the handlers that :func:`install` replaced (and forget any attached run)."""
    global _raised
    detach()
    _raised = False
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, old in list(_saved.items()):
        signal.signal(sig, old if old is not None else signal.SIG_DFL)
        del _saved[sig]


def attach(stop: Callable[[str], None], reset: Optional[Callable[[], None]] = None) -> None:
    """From now on SIGINT/SIGTERM call ``stop(detail)`` and SIGUSR1 ``reset()`` (both must be safe in a signal
    handler: ``Runtime.stop`` and ``Runtime.reset_latch`` are)."""
    global _stop, _reset
    _reset = reset
    _stop = stop


def detach() -> None:
    """Back to start-up behaviour (SIGINT/SIGTERM raise :class:`Interrupted`, SIGUSR1 is ignored)."""
    global _stop, _reset
    _stop = None
    _reset = None


def exit_code(command: Optional[str], signum: int) -> int:
    """The exit code for a start-up interrupted by ``signum``: ``run`` 0 on SIGTERM, 130 on SIGINT; others 128+n."""
    if command == "run" and signum == signal.SIGTERM:
        return 0
    return 128 + int(signum)
