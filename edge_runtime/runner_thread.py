"""The runner's own thread: every call into the backend (activate, infer, deactivate) runs on one daemon thread, and
the caller waits for it in short slices, so a backend that never returns cannot hold the loop, ``Runtime.stop()``,
a signal handler or the exit of the process.

Why a thread of its own: Python runs signal handlers only in the main thread and only between bytecodes, so a main
thread stuck in a C call (``InferenceSession.run``, a CUDA sync) would not even see SIGTERM; and a hung call cannot
be cancelled. Here the caller (the loop) waits on a condition in slices of ``slice_s`` and gives up as soon as
``should_stop()`` is true: the call is *abandoned*. The backend keeps its daemon thread until it returns, if it ever
does; the runner is not deactivated (that would race with the call still inside it), nothing else is given to it,
and the process can still exit: daemon threads do not hold up the interpreter's exit (the CLI then leaves with
``os._exit`` after flushing, so the interpreter's finalizers do not tear the backend down under the hung call).

All of a runner's calls happen on this one thread, so backends with per-thread state (a CUDA context made current
by pycuda, PyTorch's thread-local settings) see one thread, as before. The hand-over costs two lock round trips
per frame.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Tuple

__all__ = ["RunnerThread", "Abandoned", "StopFlag"]


class Abandoned(RuntimeError):
    """The caller stopped waiting for a backend call (stop requested), or the backend is still inside a call that
    was abandoned earlier. The runtime turns it into a fail-safe STOP like any backend failure."""


class StopFlag:
    """``threading.Event``'s ``set``/``is_set`` without a lock: a signal handler may set it while the very thread it
    interrupted is inside ``set`` (an Event's internal lock would deadlock there). One way: it is never cleared."""

    __slots__ = ("_v",)

    def __init__(self) -> None:
        self._v = False

    def set(self) -> None:
        self._v = True

    def is_set(self) -> bool:
        return self._v


class RunnerThread:
    """One daemon thread that runs the calls given to :meth:`call`, one at a time."""

    def __init__(self, name: str = "edge-runtime:runner") -> None:
        self.name = name
        self._cv = threading.Condition(threading.Lock())
        self._job: Optional[Tuple[Callable[..., Any], Tuple[Any, ...]]] = None
        self._seq = 0  # jobs given
        self._done = 0  # jobs finished
        self._result: Any = None
        self._error: Optional[BaseException] = None
        #: ``time.monotonic()`` when the call now running began; None while idle
        self.busy_since: Optional[float] = None
        self.abandoned = 0  # calls given up on
        self._closing = False
        self._thread: Optional[threading.Thread] = None

    @property
    def busy(self) -> bool:
        """True while a call (maybe an abandoned one) is inside the backend."""
        return self.busy_since is not None

    def call(self, fn: Callable[..., Any], *args: Any, should_stop: Callable[[], bool] = lambda: False,
             slice_s: float = 0.02, what: str = "the backend") -> Any:
        """``fn(*args)`` on the thread; returns its result or raises its exception. Raises :class:`Abandoned` if
        ``should_stop()`` is true while the call has not returned, checked every ``slice_s`` seconds (a call made
        after a stop still runs: it is abandoned only if it outlasts a slice), or if an abandoned call is still
        running."""
        with self._cv:
            if self._closing:
                raise RuntimeError("%s: the runner thread is closed" % what)
            if self.busy_since is not None:
                raise Abandoned("%s has not returned from a call abandoned %.0f ms ago"
                                % (what, (time.monotonic() - self.busy_since) * 1e3))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._seq += 1
            seq = self._seq
            self._job = (fn, args)
            self.busy_since = time.monotonic()
            self._cv.notify_all()
            while self._done != seq:
                self._cv.wait(slice_s)  # a call that returns wakes this at once; a stop is seen within slice_s
                if self._done != seq and should_stop():
                    self.abandoned += 1
                    raise Abandoned("stop requested while %s had been running for %.0f ms; the call is abandoned on "
                                    "its daemon thread" % (what, (time.monotonic() - (self.busy_since or 0.0)) * 1e3))
            result, error = self._result, self._error
            self._result = self._error = None
        if error is not None:
            raise error
        return result

    def close(self) -> None:
        """Let the thread end: at once when idle, else when the call inside the backend returns (if it does)."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._job is None and not self._closing:
                    self._cv.wait()
                if self._job is None:
                    return
                fn, args = self._job
                self._job = None
            result: Any = None
            error: Optional[BaseException] = None
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
                error = exc
            with self._cv:
                self._result, self._error = result, error
                self._done += 1
                self.busy_since = None
                self._cv.notify_all()
            del fn, args, result, error
