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
by pycuda, PyTorch's thread-local settings) see one thread, as before. The hand-over costs two thread wake-ups
per frame (``benchmarks/runner_thread_ab.py``).
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
    """One daemon thread that runs the calls given to :meth:`call`, one at a time.

    The hand-over is two plain locks used as binary semaphores (``_go``: a job is waiting; ``_done``: it finished),
    cheaper than a ``Condition`` (``benchmarks/runner_thread_ab.py`` measures what it costs). :meth:`call` and
    :meth:`close` are for one thread (the loop's); only the runner thread runs the jobs."""

    def __init__(self, name: str = "edge-runtime:runner") -> None:
        self.name = name
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._job: Optional[Tuple[int, Callable[..., Any], Tuple[Any, ...]]] = None
        self._seq = 0  # jobs given
        self._done_seq = 0  # the last job finished
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
        return self._done_seq != self._seq

    def call(self, fn: Callable[..., Any], *args: Any, should_stop: Callable[[], bool] = lambda: False,
             slice_s: float = 0.02, what: str = "the backend") -> Any:
        """``fn(*args)`` on the thread; returns its result or raises its exception. Raises :class:`Abandoned` if
        ``should_stop()`` is true while the call has not returned, checked every ``slice_s`` seconds (a call made
        after a stop still runs: it is abandoned only if it outlasts a slice), or if an abandoned call is still
        running."""
        if self._closing:
            raise RuntimeError("%s: the runner thread is closed" % what)
        if self.busy:  # only an abandoned call can still be running here
            raise Abandoned("%s has not returned from a call abandoned %.0f ms ago"
                            % (what, (time.monotonic() - (self.busy_since or time.monotonic())) * 1e3))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._done.acquire(False)  # the completion an abandoned call left behind, if any: nothing else is in flight
        self._seq += 1
        seq = self._seq
        self._job = (seq, fn, args)
        self.busy_since = t0 = time.monotonic()
        self._go.release()
        while self._done_seq != seq:
            self._done.acquire(True, slice_s)  # a call that returns wakes this at once
            if self._done_seq == seq:
                break
            if should_stop():
                self.abandoned += 1
                raise Abandoned("stop requested while %s had been running for %.0f ms; the call is abandoned on its "
                                "daemon thread" % (what, (time.monotonic() - t0) * 1e3))
        result, error = self._result, self._error
        self._result = self._error = None
        if error is not None:
            raise error
        return result

    def close(self) -> None:
        """Let the thread end: at once when idle, else when the call inside the backend returns (if it does)."""
        if self._closing:
            return
        self._closing = True
        if self._thread is not None and not self.busy:
            self._job = None
            self._go.release()  # wake it with no job: it ends

    def _run(self) -> None:
        while True:
            self._go.acquire()
            job = self._job
            if job is None:  # close()
                return
            seq, fn, args = job
            self._job = None
            result: Any = None
            error: Optional[BaseException] = None
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
                error = exc
            self._result, self._error = result, error
            self.busy_since = None
            self._done_seq = seq  # what the caller checks; the release below only wakes it
            try:
                self._done.release()
            except RuntimeError:  # still released by an abandoned call's completion the caller has not drained yet
                pass
            del fn, args, result, error, job
            if self._closing:
                return
            if self._closing:
                return
