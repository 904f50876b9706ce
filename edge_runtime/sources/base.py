"""The contract every source keeps: :class:`Frame`, :class:`SourceState`, :class:`SourceStats` and :class:`Source`
(the one-slot mailbox between a grabber thread and ``read(timeout)``), and the helpers the sources share (the lazy
OpenCV import, nvvidconv's flip methods in numpy, the supported URI forms)."""
from __future__ import annotations

import dataclasses
import enum
import logging
import re
import threading
import time
from typing import Any, Callable, Optional, TypeVar

import numpy as np

from ..config import FLIP_METHODS
from ..errors import EdgeRuntimeError

log = logging.getLogger("edge_runtime.sources")  # the package's name: one logger for all sources
S = TypeVar("S", bound="Source")

SUPPORTED = ("csi://N, v4l2:///dev/videoN, /dev/videoN or a camera index N, rtsp://host[:port]/path, "
             "a video file (a path or file://path), an image folder or glob, synthetic://")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".npy")


@dataclasses.dataclass(frozen=True)
class Frame:
    """One picture: ``image`` HxWx3 uint8 BGR, ``t_capture`` (``time.monotonic()`` when grabbed), and
    ``index``, the source's count of grabbed frames (gaps between consecutive reads = dropped frames).

    With a :attr:`Source.transform` set, the producer thread also ran it on the image: ``tensor`` is its
    result (or None and ``error`` says why it raised) and ``transform_s`` how long it took."""

    image: np.ndarray
    t_capture: float
    index: int
    tensor: Any = None
    error: Optional[str] = None
    transform_s: float = 0.0
    #: a file's frames: the frame's time in the media (seconds from the start of the file; restarts on loop)
    media_time_s: Optional[float] = None
    #: the source's :attr:`Source.name` (the camera's name in a :class:`SourceGroup`; None for a single source)
    camera: Optional[str] = None


class SourceState(str, enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"
    CLOSED = "closed"

    def __str__(self) -> str:
        return str(self.value)


@dataclasses.dataclass
class SourceStats:
    """Counters since open: ``grabbed`` from the device, ``delivered`` to read(), ``dropped`` (replaced by a
    newer frame before anyone read them), ``stale`` (delivered older than ``stale_after_s``), ``timeouts``
    (reads that got nothing), ``reconnects``, ``errors`` and the last error's text."""

    grabbed: int = 0
    delivered: int = 0
    dropped: int = 0
    stale: int = 0
    timeouts: int = 0
    reconnects: int = 0
    errors: int = 0
    last_error: str = ""


def _import_cv2(what: str) -> Any:
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        raise EdgeRuntimeError("%s needs OpenCV (cv2), which is not importable (%s); on a Jetson install JetPack's "
                               "python3-opencv (it has GStreamer), elsewhere pip install opencv-python-headless"
                               % (what, exc))
    return cv2


def _has_gstreamer(cv2: Any) -> bool:
    try:
        info = cv2.getBuildInformation()
    except Exception:  # noqa: BLE001 - an odd cv2 build: treat as "no GStreamer"
        return False
    return re.search(r"GStreamer:\s*YES", info) is not None


def _flip(img: np.ndarray, method: str) -> np.ndarray:
    """nvvidconv's flip methods in numpy (for sources other than CSI, which flip in hardware)."""
    if method == "none":
        return img
    if method == "counterclockwise":
        out = np.rot90(img, 1)
    elif method == "rotate-180":
        out = img[::-1, ::-1]
    elif method == "clockwise":
        out = np.rot90(img, -1)
    elif method == "horizontal":
        out = img[:, ::-1]
    elif method == "vertical":
        out = img[::-1]
    elif method == "upper-left-diagonal":  # transpose: mirror across the top-left/bottom-right diagonal
        out = img.transpose(1, 0, 2)
    elif method == "upper-right-diagonal":
        out = img[::-1, ::-1].transpose(1, 0, 2)
    else:
        raise ValueError("unknown flip method %r; expected one of %s" % (method, ", ".join(FLIP_METHODS)))
    return np.ascontiguousarray(out)


class Source:
    """The contract, and a one-slot mailbox between a producer and :meth:`read`.

    Subclasses implement :meth:`_connect` (open the device; raise :class:`EdgeRuntimeError` if it cannot)
    and :meth:`_run` (the grabber thread: call :meth:`_publish` per frame, :meth:`_finish` at the end).
    ``live`` sources keep only the newest frame; others hand frames over losslessly.
    """

    live = True

    def __init__(self, uri: str, stale_after_s: Optional[float] = None) -> None:
        self.uri = uri
        #: read() counts delivered frames older than this as ``stale`` (the policy decides what to do).
        self.stale_after_s = stale_after_s
        self._cond = threading.Condition()
        self._slot: Optional[Frame] = None
        self._state = SourceState.CREATED
        self._failure = ""
        self._stats = SourceStats()
        self._index = 0
        self._closing = threading.Event()
        self._thread: Optional[threading.Thread] = None
        #: Run on every frame in the producer thread, before it is handed over (its result is
        #: ``Frame.tensor``). The runtime sets the model's preprocessing here when it starts, so a frame is
        #: prepared while the loop is still busy with the previous one. It must not keep or modify the image.
        self.transform: Optional[Callable[[np.ndarray], Any]] = None
        #: the camera's name in a run with several (copied into each Frame)
        self.name: Optional[str] = None
        #: set whenever a frame is published or the source ends (a :class:`SourceGroup` waits on it)
        self.listener: Optional[threading.Event] = None

    # ----------------------------------------------------------------------------------------- public
    def open(self: S) -> S:
        """Connect and start the grabber; a device that does not open raises a one-line error."""
        if self._state is not SourceState.CREATED:
            raise RuntimeError("%s: open() called twice" % self.uri)
        self._connect()
        self._state = SourceState.RUNNING
        self._thread = threading.Thread(target=self._guarded_run, name="source:%s" % self.uri[:40], daemon=True)
        self._thread.start()
        return self

    def read(self, timeout: float) -> Optional[Frame]:
        """The newest frame not yet read, waiting up to ``timeout`` seconds; None on timeout or at the end
        (then :attr:`finished` is True)."""
        if self._state is SourceState.CREATED:
            raise RuntimeError("%s: call open() (or use `with`) before read()" % self.uri)
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._slot is None and not self._done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stats.timeouts += 1
                    return None
                self._cond.wait(remaining)
            return self._take()

    def poll(self) -> Optional[Frame]:
        """The newest frame not yet read, or None at once (no waiting, no ``timeouts`` count)."""
        with self._cond:
            return self._take()

    def _take(self) -> Optional[Frame]:  # under self._cond
        frame, self._slot = self._slot, None
        if frame is not None:
            self._stats.delivered += 1
            if self.stale_after_s is not None and time.monotonic() - frame.t_capture > self.stale_after_s:
                self._stats.stale += 1
            self._cond.notify_all()  # a lossless producer waits for the empty slot
        return frame

    def close(self) -> None:
        """Stop the grabber and release the device (idempotent)."""
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=3.0)
            if self._thread.is_alive():
                log.warning("%s: the grabber thread did not stop within 3 s (a blocked device read); leaving it "
                            "as a daemon thread", self.uri)
        with self._cond:
            if self._state not in (SourceState.ENDED, SourceState.FAILED):
                self._state = SourceState.CLOSED
            self._cond.notify_all()

    def __enter__(self: S) -> S:
        if self._state is SourceState.CREATED:
            self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def finished(self) -> bool:
        """True once the source has ended, failed or been closed and no frame is left to read."""
        with self._cond:
            return self._slot is None and self._done()

    @property
    def failed(self) -> bool:
        return self._state is SourceState.FAILED

    @property
    def failure(self) -> str:
        """Why the source failed ('' unless :attr:`failed`)."""
        return self._failure

    @property
    def stats(self) -> SourceStats:
        with self._cond:
            return dataclasses.replace(self._stats)

    def describe(self) -> str:
        return self.uri

    # ---------------------------------------------------------------------------------- for subclasses
    def _connect(self) -> None:
        """Open the device or file; raise EdgeRuntimeError naming the URI if it cannot be opened."""

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _done(self) -> bool:
        return self._state in (SourceState.ENDED, SourceState.FAILED, SourceState.CLOSED)

    def _guarded_run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - the thread must end in a state the loop can see
            log.exception("%s: grabber thread crashed", self.uri)
            self._finish(SourceState.FAILED, "grabber crashed: %s: %s" % (type(exc).__name__, exc))

    def _publish(self, image: np.ndarray, t_capture: Optional[float] = None,
                 media_time_s: Optional[float] = None) -> bool:
        """Hand a frame to read(): replace an unread one (live) or wait for the slot (lossless).
        Returns False when the source is closing."""
        t = time.monotonic() if t_capture is None else t_capture
        tensor, error, spent = None, None, 0.0
        fn = self.transform
        if fn is not None:  # outside the lock: the reader is not held up, and a lossless source overlaps with it
            t0 = time.monotonic()
            try:
                tensor = fn(image)
            except Exception as exc:  # noqa: BLE001 - the loop turns it into a fail-safe STOP for this frame
                error = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())  # one line (cv2 errors have several)
            spent = time.monotonic() - t0
        with self._cond:
            frame = Frame(image=image, t_capture=t, index=self._index, tensor=tensor, error=error, transform_s=spent,
                          media_time_s=media_time_s, camera=self.name)
            self._index += 1
            self._stats.grabbed += 1
            if not self.live:
                while self._slot is not None and not self._closing.is_set():
                    self._cond.wait(0.1)
            if self._closing.is_set():
                return False
            if self._slot is not None:
                self._stats.dropped += 1
            self._slot = frame
            self._cond.notify_all()
        if self.listener is not None:
            self.listener.set()
        return True

    def _finish(self, state: SourceState, failure: str = "") -> None:
        with self._cond:
            if self._state in (SourceState.ENDED, SourceState.FAILED):
                return
            self._state = state
            if failure:
                self._failure = failure
                self._stats.errors += 1
                self._stats.last_error = failure
                log.error("%s: %s", self.uri, failure)
            self._cond.notify_all()
        if self.listener is not None:
            self.listener.set()

    def _set_state(self, state: SourceState) -> None:
        with self._cond:
            if not self._done():
                self._state = state

    def _error(self, message: str) -> None:
        with self._cond:
            self._stats.errors += 1
            self._stats.last_error = message

    def _pace(self, rate: Optional[float], next_t: float) -> float:
        """Sleep until ``next_t`` (frames at ``rate`` per second); returns the next due time."""
        if not rate:
            return next_t
        now = time.monotonic()
        if next_t > now:
            self._closing.wait(next_t - now)
            return next_t + 1.0 / rate
        return now + 1.0 / rate  # behind: do not try to catch up with a burst
