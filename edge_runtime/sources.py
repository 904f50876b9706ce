"""Frame sources: cameras, streams, files and image folders behind one ``read(timeout)``.

URIs follow jetson-inference's ``videoSource``::

    csi://0                      MIPI CSI camera 0: GStreamer nvarguscamerasrc, scaled in hardware by
                                 nvvidconv to width x height (default 320x180), appsink drop=true max-buffers=1
    /dev/video0, v4l2:///dev/video0, 0
                                 a V4L2 (USB) camera by device path or index
    rtsp://user:pw@host:554/path a network stream: GStreamer rtspsrc latency=0 where OpenCV has GStreamer,
                                 else OpenCV's FFmpeg backend over TCP with no buffering
    clip.mp4, file:///data/clip.mp4
                                 a video file; ``loop`` plays it again; it ends with ``end_of_stream``
    frames/, 'frames/*.jpg'      an image folder or glob, sorted by name
    synthetic://?rate=30&stall_after=100
                                 frames made in memory (a test pattern): checks the wiring and the
                                 fail-safes on a robot without a camera (see :class:`SyntheticSource`)

One grabber thread per source keeps ONLY THE NEWEST frame: a slow consumer gets the latest picture and
a ``dropped`` count, never a backlog (the multi-second RTSP lag of players that queue every frame). Each
frame is stamped with ``time.monotonic()`` when grabbed, so the loop knows its age. Cameras and streams
reconnect by themselves with exponential backoff; files end (``finished``, ``state`` ENDED) or fail
(``failed``, e.g. a truncated file that stops before its container's frame count).

Files and image folders without a ``rate`` are handed over losslessly, one frame at a time (the grabber
decodes the next frame while the loop works on this one), so a benchmark or an evaluation sees every
frame. With a ``rate`` they are paced like a live camera and behave like one.

OpenCV is imported only when a source needs it (pip's opencv-python is not a dependency: on a Jetson
use JetPack's OpenCV, built with GStreamer). ``.npy`` images (HxWx3 uint8 BGR) and ``synthetic://``
need only numpy.

The loop's use::

    with open_source(cfg.source) as src:
        while True:
            frame = src.read(timeout=policy.poll_interval_s)
            if frame is None:
                if src.finished:
                    break                       # src.failed / src.failure tell why
                decision = policy.tick(time.monotonic())
                ...
"""
from __future__ import annotations

import dataclasses
import enum
import glob as _glob
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .config import FLIP_METHODS, SourceConfig
from .errors import EdgeRuntimeError

__all__ = ["Frame", "SourceState", "SourceStats", "Source", "CaptureSource", "ImageFolderSource",
           "SyntheticSource", "PushSource", "create_source", "open_source", "register_source_scheme",
           "SUPPORTED", "IMAGE_EXTENSIONS", "csi_pipeline", "rtsp_pipeline", "is_camera", "source_options"]

log = logging.getLogger(__name__)
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


# ------------------------------------------------------------------------------------- OpenCV captures
def csi_pipeline(sensor_id: int, opts: SourceConfig) -> str:
    """The GStreamer pipeline for ``csi://N``: the ISP delivers NV12 in NVMM memory, nvvidconv scales (and
    flips) in hardware, and only a small BGR frame ever reaches the CPU; appsink keeps one buffer and drops."""
    w, h = (opts.width, opts.height) if opts.width and opts.height else (320, 180)
    fps = int(round(opts.rate)) if opts.rate else 30
    flip = FLIP_METHODS.index(opts.flip)
    return ("nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM), width=%d, height=%d, framerate=%d/1, "
            "format=NV12 ! nvvidconv flip-method=%d ! video/x-raw, width=%d, height=%d, format=BGRx ! "
            "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false"
            % (sensor_id, opts.capture_width, opts.capture_height, fps, flip, w, h))


def rtsp_pipeline(uri: str, opts: SourceConfig) -> str:
    """GStreamer for RTSP: no jitter buffer beyond ``latency_ms``, late packets dropped, newest frame kept."""
    size = ", width=%d, height=%d" % (opts.width, opts.height) if opts.width and opts.height else ""
    return ("rtspsrc location=%s latency=%d drop-on-latency=true ! decodebin ! videoconvert ! videoscale ! "
            "video/x-raw, format=BGR%s ! appsink drop=true max-buffers=1 sync=false" % (uri, opts.latency_ms, size))


class CaptureSource(Source):
    """A ``cv2.VideoCapture``: ``kind`` is ``csi``, ``v4l2``, ``rtsp`` (live: newest frame, reconnect with
    backoff) or ``file`` (ends; lossless unless ``rate`` is set; ``loop`` replays it)."""

    def __init__(self, uri: str, kind: str, target: Union[str, int], opts: SourceConfig) -> None:
        super().__init__(uri)
        if kind not in ("csi", "v4l2", "rtsp", "file"):
            raise ValueError("unknown capture kind %r" % kind)
        self.kind = kind
        self.target = target
        self.opts = opts
        self.live = kind != "file" or opts.rate is not None
        self._cap: Any = None
        self._expected = 0
        self._media_fps = 0.0  # a file's frame rate, for each frame's media time

    def describe(self) -> str:
        size = " %dx%d" % (self.opts.width, self.opts.height) if self.opts.width and self.opts.height else ""
        rate = " @%g fps" % self.opts.rate if self.opts.rate else ""
        return "%s (%s%s%s)" % (self.uri, self.kind, size, rate)

    def _make_capture(self) -> Any:
        cv2 = _import_cv2(self.uri)
        timeouts: List[int] = []
        if hasattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC"):
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.opts.open_timeout_ms),
                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.opts.open_timeout_ms)]
        if self.kind == "csi":
            if not _has_gstreamer(cv2):
                raise EdgeRuntimeError("%s needs OpenCV built with GStreamer (JetPack's python3-opencv is; pip's "
                                       "opencv-python is not): this cv2 %s has no GStreamer" % (self.uri, cv2.__version__))
            return cv2.VideoCapture(csi_pipeline(int(self.target), self.opts), cv2.CAP_GSTREAMER)
        if self.kind == "rtsp":
            if _has_gstreamer(cv2):
                return cv2.VideoCapture(rtsp_pipeline(str(self.target), self.opts), cv2.CAP_GSTREAMER)
            # FFmpeg: TCP (no lost UDP packets smearing frames), no input buffering; only if the user set nothing
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay")
            return self._with_params(cv2, str(self.target), cv2.CAP_FFMPEG, timeouts)
        if self.kind == "v4l2":
            cap = cv2.VideoCapture(self.target, cv2.CAP_V4L2)
            if cap.isOpened():
                if self.opts.width and self.opts.height:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.opts.width)
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.opts.height)
                if self.opts.rate:
                    cap.set(cv2.CAP_PROP_FPS, self.opts.rate)
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return cap
        dec = self._decode_params(cv2)
        if dec:  # a backend that does not take the thread count may refuse to open: then open without it
            cap = self._with_params(cv2, str(self.target), cv2.CAP_ANY, timeouts + dec)
            if cap is not None and cap.isOpened():
                return cap
            if cap is not None:
                cap.release()
        return self._with_params(cv2, str(self.target), cv2.CAP_ANY, timeouts)

    def _decode_params(self, cv2: Any) -> List[int]:
        n = int(self.opts.decode_threads)
        return [cv2.CAP_PROP_N_THREADS, n] if n > 0 and hasattr(cv2, "CAP_PROP_N_THREADS") else []

    @staticmethod
    def _with_params(cv2: Any, target: str, api: int, params: List[int]) -> Any:
        if params:
            try:
                return cv2.VideoCapture(target, api, params)
            except TypeError:  # OpenCV < 4.5.2 has no params argument
                pass
        return cv2.VideoCapture(target, api)

    def _open_capture(self) -> Tuple[Any, str]:
        """A capture, or (None, why not)."""
        try:
            cap = self._make_capture()
        except EdgeRuntimeError:
            raise
        except Exception as exc:  # noqa: BLE001 - cv2.error and friends: report, do not crash the grabber
            return None, "%s: %s" % (type(exc).__name__, exc)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None, "OpenCV could not open it"
        return cap, ""

    def _connect(self) -> None:
        cap, why = self._open_capture()
        if cap is None:
            what = {"csi": "CSI camera", "v4l2": "camera", "rtsp": "stream", "file": "video file"}[self.kind]
            hint = {"csi": "is the camera connected and nvargus-daemon running?",
                    "v4l2": "is the camera connected (ls /dev/video*) and not in use by another process?",
                    "rtsp": "is the stream reachable, and the URL and credentials right?",
                    "file": "is it a complete video in a format OpenCV's FFmpeg reads (a truncated .mp4 "
                            "lacks its index)?"}[self.kind]
            raise EdgeRuntimeError("cannot open %s %s (%s): %s; supported sources: %s"
                                   % (what, self.uri, why, hint, SUPPORTED))
        self._cap = cap
        if self.kind == "file":
            cv2 = _import_cv2(self.uri)
            self._expected = int(max(0.0, cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0))
            self._media_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def _post(self, img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:  # a grey camera
            img = np.repeat(img[:, :, None], 3, axis=2)
        elif img.shape[2] == 4:
            img = img[:, :, :3]
        if self.kind != "csi":
            img = _flip(img, self.opts.flip)
            w, h = self.opts.width, self.opts.height
            if w and h and (img.shape[1] != w or img.shape[0] != h):
                cv2 = _import_cv2(self.uri)
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(img, dtype=np.uint8)

    def _run(self) -> None:
        opts = self.opts
        backoff = opts.reconnect_initial_ms / 1e3
        n_pass = 0  # frames read in this pass over a file
        next_t = time.monotonic()
        try:
            while not self._closing.is_set():
                try:
                    ok, img = self._cap.read() if self._cap is not None else (False, None)
                except Exception as exc:  # noqa: BLE001 - cv2.error: treat as a failed read
                    ok, img = False, None
                    self._error("read failed: %s" % exc)
                if ok and img is not None:
                    backoff = opts.reconnect_initial_ms / 1e3
                    n_pass += 1
                    media = (n_pass - 1) / self._media_fps if self._media_fps else None  # constant-rate files
                    if not self._publish(self._post(img), media_time_s=media):
                        break
                    if self.kind == "file":
                        next_t = self._pace(opts.rate, next_t)
                    continue
                if self.kind == "file":
                    if not self._file_ended(n_pass):
                        break
                    n_pass = 0
                    continue
                # a camera or stream stopped delivering: reconnect with exponential backoff, until closed
                self._error("no frame from %s; reconnecting" % self.uri)
                self._set_state(SourceState.RECONNECTING)
                log.warning("%s: no frame; reconnecting in %.2f s", self.uri, backoff)
                self._release()
                if self._closing.wait(backoff):
                    break
                backoff = min(backoff * 2.0, opts.reconnect_max_ms / 1e3)
                cap, why = self._open_capture()
                if cap is None:
                    self._error("reconnect failed: %s" % why)
                    continue
                self._cap = cap
                with self._cond:
                    self._stats.reconnects += 1
                self._set_state(SourceState.RUNNING)
                log.info("%s: reconnected", self.uri)
        finally:
            self._release()

    def _file_ended(self, n_pass: int) -> bool:
        """At the end of a pass over a file: fail if truncated, replay if looping. True to go on."""
        if n_pass == 0:
            self._finish(SourceState.FAILED, "no frame could be decoded from %s" % self.uri)
            return False
        short = self._expected > 0 and n_pass + max(2, int(0.02 * self._expected)) < self._expected
        if short:
            self._finish(SourceState.FAILED, "%s ended after %d of its %d frames: the file is truncated or corrupt"
                         % (self.uri, n_pass, self._expected))
            return False
        if not self.opts.loop:
            self._finish(SourceState.ENDED)
            return False
        self._release()
        cap, why = self._open_capture()
        if cap is None:
            self._finish(SourceState.FAILED, "cannot reopen %s to loop: %s" % (self.uri, why))
            return False
        self._cap = cap
        return True

    def _release(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            except Exception as exc:  # noqa: BLE001 - releasing a dead device must not mask the real error
                log.debug("%s: release failed: %s", self.uri, exc)
            self._cap = None


# ------------------------------------------------------------------------------------------ image folders
def _read_image(path: str, cv2: Any) -> Optional[np.ndarray]:
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); skipped", path, exc)
            return None
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            log.warning("%s: expected HxWx3 uint8 (BGR), got %s %s; skipped", path, arr.dtype, arr.shape)
            return None
        return arr
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        log.warning("%s: not a readable image; skipped", path)
    return img


class ImageFolderSource(Source):
    """Images from a sorted list of paths (a folder or a glob), as fast as consumed or at ``rate``.
    Unreadable images are skipped and counted as errors; a pass with no readable image fails."""

    def __init__(self, uri: str, paths: Sequence[str], opts: SourceConfig) -> None:
        super().__init__(uri)
        self.paths = list(paths)
        self.opts = opts
        self.live = opts.rate is not None
        self._cv2: Any = None

    def describe(self) -> str:
        return "%s (%d images%s)" % (self.uri, len(self.paths), ", loop" if self.opts.loop else "")

    def _connect(self) -> None:
        needs_cv2 = any(not p.lower().endswith(".npy") for p in self.paths) or bool(self.opts.width)
        if needs_cv2:
            self._cv2 = _import_cv2(self.uri)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._closing.is_set():
            good = 0
            for path in self.paths:
                if self._closing.is_set():
                    return
                img = _read_image(path, self._cv2)
                if img is None:
                    self._error("unreadable image %s" % path)
                    continue
                good += 1
                img = _flip(img, self.opts.flip)
                w, h = self.opts.width, self.opts.height
                if w and h and (img.shape[1] != w or img.shape[0] != h):
                    img = self._cv2.resize(img, (w, h), interpolation=self._cv2.INTER_AREA)
                if not self._publish(np.ascontiguousarray(img)):
                    return
                next_t = self._pace(self.opts.rate, next_t)
            if good == 0:
                self._finish(SourceState.FAILED, "none of the %d images in %s could be read" % (len(self.paths), self.uri))
                return
            if not self.opts.loop:
                self._finish(SourceState.ENDED)
                return


# ------------------------------------------------------------------------------------ in-memory sources
class SyntheticSource(Source):
    """Frames made in memory, for checking a deployment (and for tests) without a camera.

    Plays ``images`` (a list of HxWx3 uint8 BGR arrays) in turn, or a moving test pattern of
    ``width`` x ``height``. ``rate`` (fps) makes it live (newest frame only; drops when the consumer is
    slow); without it frames are handed over losslessly. ``frames``: end after that many (None: never).
    ``stall_after``: stop delivering after that many frames without ending (a hung camera: the policy
    must STOP with ``source_timeout``). ``fail_after``: fail after that many frames (a broken file).

    As a URI: ``synthetic://?width=64&height=48&rate=30&frames=300&stall_after=100&fail_after=200``.
    """

    def __init__(self, images: Optional[Sequence[np.ndarray]] = None, width: int = 64, height: int = 48,
                 rate: Optional[float] = None, frames: Optional[int] = None, stall_after: Optional[int] = None,
                 fail_after: Optional[int] = None, loop: bool = True, uri: str = "synthetic://") -> None:
        super().__init__(uri)
        self.images = [np.ascontiguousarray(i, dtype=np.uint8) for i in images] if images is not None else None
        if self.images is not None and not self.images:
            raise EdgeRuntimeError("%s: images is empty" % uri)
        self.width, self.height = width, height
        self.rate = rate
        self.frames = frames if (frames is not None or loop or self.images is None) else len(self.images)
        self.stall_after = stall_after
        self.fail_after = fail_after
        self.live = rate is not None

    def _image(self, i: int) -> np.ndarray:
        if self.images is not None:
            return self.images[i % len(self.images)]
        img = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        x = (i * 2) % self.width
        img[:, x:x + 4] = (0, 255, 255)  # a yellow bar sweeping right
        img[..., 0] = (i * 5) % 256
        return img

    def _run(self) -> None:
        i = 0
        next_t = time.monotonic()
        while not self._closing.is_set():
            if self.frames is not None and i >= self.frames:
                self._finish(SourceState.ENDED)
                return
            if self.fail_after is not None and i >= self.fail_after:
                self._finish(SourceState.FAILED, "synthetic failure after %d frames" % i)
                return
            if self.stall_after is not None and i >= self.stall_after:
                self._closing.wait()  # hung: deliver nothing, never end
                return
            if not self._publish(self._image(i)):
                return
            i += 1
            next_t = self._pace(self.rate, next_t)

    @classmethod
    def from_uri(cls, uri: str, opts: SourceConfig) -> "SyntheticSource":
        q = parse_qs(urlsplit(uri).query)
        known = ("width", "height", "rate", "frames", "stall_after", "fail_after")
        for key in q:
            if key not in known:
                raise EdgeRuntimeError("%s: unknown option %r; known: %s" % (uri, key, ", ".join(known)))

        def num(key: str, default: Any, kind: Callable[[str], Any]) -> Any:
            if key not in q:
                return default
            try:
                return kind(q[key][-1])
            except ValueError:
                raise EdgeRuntimeError("%s: %s=%r is not a %s" % (uri, key, q[key][-1], kind.__name__))

        src = cls(width=num("width", opts.width or 64, int), height=num("height", opts.height or 48, int),
                  rate=num("rate", opts.rate, float), frames=num("frames", None, int),
                  stall_after=num("stall_after", None, int), fail_after=num("fail_after", None, int), uri=uri)
        return src


class PushSource(Source):
    """Frames pushed by your own code (a ROS image callback, another camera stack): :meth:`push` from any
    thread, newest frame kept, :meth:`end` when there will be no more. No thread of its own."""

    def __init__(self, uri: str = "push://") -> None:
        super().__init__(uri)

    def open(self: S) -> S:
        if self._state is SourceState.CREATED:
            self._state = SourceState.RUNNING
        return self

    def push(self, image: np.ndarray, t_capture: Optional[float] = None) -> None:
        """Offer a frame (HxWx3 uint8 BGR); ``t_capture`` defaults to now (``time.monotonic()``). The runtime's
        preprocessing (:attr:`transform`) runs here, in the caller's thread."""
        if self._state is SourceState.CREATED:
            self.open()
        self._publish(np.ascontiguousarray(image, dtype=np.uint8), t_capture)

    def end(self, failure: str = "") -> None:
        """No more frames: the source ends (or fails, with a reason)."""
        self._finish(SourceState.FAILED if failure else SourceState.ENDED, failure)


# ------------------------------------------------------------------------------------------- URI parsing
SchemeFactory = Callable[[str, SourceConfig], Source]
_SCHEMES: Dict[str, SchemeFactory] = {}


def register_source_scheme(scheme: str, factory: SchemeFactory) -> None:
    """Add a URI scheme (``factory(uri, options) -> Source``); a duplicate raises."""
    if scheme in _SCHEMES:
        raise ValueError("source scheme %r is already registered" % scheme)
    _SCHEMES[scheme] = factory


def _csi(uri: str, opts: SourceConfig) -> Source:
    rest = uri[len("csi://"):]
    if not rest.isdigit():
        raise EdgeRuntimeError("%s: expected csi://N with N the sensor id (csi://0)" % uri)
    return CaptureSource(uri, "csi", int(rest), opts)


def _v4l2(uri: str, opts: SourceConfig) -> Source:
    rest = uri[len("v4l2://"):]
    if rest.isdigit():
        return CaptureSource(uri, "v4l2", int(rest), opts)
    if not rest.startswith("/dev/video"):
        raise EdgeRuntimeError("%s: expected v4l2:///dev/videoN (or an index)" % uri)
    return CaptureSource(uri, "v4l2", _dev_target(rest), opts)


def _dev_target(path: str) -> Union[str, int]:
    """``/dev/video3`` -> 3 (OpenCV's V4L2 backend opens indices on every version), other paths as given."""
    tail = path[len("/dev/video"):]
    return int(tail) if tail.isdigit() else path


def _rtsp(uri: str, opts: SourceConfig) -> Source:
    return CaptureSource(uri, "rtsp", uri, opts)


def _file(uri: str, opts: SourceConfig) -> Source:
    return _path_source(uri[len("file://"):], opts, uri)


for _scheme, _factory in (("csi", _csi), ("v4l2", _v4l2), ("rtsp", _rtsp), ("rtsps", _rtsp), ("file", _file),
                          ("synthetic", SyntheticSource.from_uri)):
    register_source_scheme(_scheme, _factory)


def _path_source(path: str, opts: SourceConfig, uri: str) -> Source:
    if any(c in path for c in "*?["):
        paths = sorted(p for p in _glob.glob(path) if os.path.isfile(p))
        if not paths:
            raise EdgeRuntimeError("no files match %s; supported sources: %s" % (uri, SUPPORTED))
        return ImageFolderSource(uri, paths, opts)
    p = Path(path)
    if p.is_dir():
        paths = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise EdgeRuntimeError("%s is a folder without images (%s); supported sources: %s"
                                   % (uri, " ".join(IMAGE_EXTENSIONS), SUPPORTED))
        return ImageFolderSource(uri, paths, opts)
    if p.is_file():
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageFolderSource(uri, [str(p)], opts)
        return CaptureSource(uri, "file", str(p), opts)
    if p.exists():  # /dev/null, a FIFO, a socket: it is there, but it is nothing frames come from
        raise EdgeRuntimeError("%s exists but is not a video file, an image folder or a camera (/dev/videoN); supported "
                               "sources: %s" % (uri, SUPPORTED))
    raise EdgeRuntimeError("source not found: %s (no such file or folder); supported sources: %s" % (uri, SUPPORTED))


def create_source(uri: Union[str, int, SourceConfig, None] = None, options: Optional[SourceConfig] = None) -> Source:
    """A Source for ``uri`` (default ``options.uri``), not yet opened. ``create_source(cfg.source)`` takes the
    URI and options from a config. Unknown schemes and missing files raise a one-line
    :class:`EdgeRuntimeError` naming the URI and what is supported."""
    if isinstance(uri, SourceConfig):
        uri, options = None, uri
    opts = options if options is not None else SourceConfig()
    target = opts.uri if uri is None else uri
    if target is None or (isinstance(target, str) and not target.strip()):
        raise EdgeRuntimeError("no source given: pass a SOURCE argument or set source.uri in the config; supported "
                               "sources: %s" % SUPPORTED)
    if isinstance(target, bool):
        raise EdgeRuntimeError("source %r: expected a URI, a path or a camera index" % target)
    if isinstance(target, int):
        return CaptureSource(str(target), "v4l2", target, opts)
    s = str(target).strip()
    if s.isdigit():
        return CaptureSource(s, "v4l2", int(s), opts)
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", s)
    if m:
        scheme = m.group(1).lower()
        if scheme not in _SCHEMES:
            raise EdgeRuntimeError("unknown source scheme %r in %s; supported sources: %s" % (scheme, s, SUPPORTED))
        return _SCHEMES[scheme](s, opts)
    if s.startswith("/dev/video"):
        return CaptureSource(s, "v4l2", _dev_target(s), opts)
    return _path_source(s, opts, s)


def open_source(uri: Union[str, int, SourceConfig, None] = None, options: Optional[SourceConfig] = None) -> Source:
    """:func:`create_source` then :meth:`Source.open`: use as ``with open_source(cfg.source) as src:``."""
    src = create_source(uri, options)
    src.open()
    return src


_CAMERA = re.compile(r"^(csi|v4l2|rtsps?)://|^/dev/video|^\d+$")


def is_camera(uri: Union[str, int]) -> bool:
    """A camera or stream (csi://, v4l2://, /dev/videoN, an index, rtsp://), as opposed to a file, folder or
    synthetic:// source."""
    return isinstance(uri, int) or bool(_CAMERA.match(str(uri).strip()))


def source_options(opts: SourceConfig, uri: Union[str, int, None] = None, explicit: Sequence[str] = ()) -> SourceConfig:
    """The options a source is opened with: the one rule ``edge-runtime run`` and ``Runtime.from_config`` share.

    The config's ``width``/``height``/``rate`` describe the camera in its ``source.uri``. With ``uri`` None (or the
    config's own) the config applies as written; a camera given instead gets the same options. A file, image folder,
    glob or synthetic:// given instead plays at its own size, a video file paced at the config's rate like a camera,
    an image folder reading every image (no rate). ``explicit``: the ``source.*`` keys the caller set (CLI flags,
    ``overrides``), which always apply (``rate`` 0: every frame, as fast as taken)."""
    if uri is None or str(uri) == str(opts.uri) or is_camera(uri):
        return opts
    keep = set(explicit)
    changes: Dict[str, Any] = {}
    if "width" not in keep and "height" not in keep:
        changes.update(width=None, height=None)
    if "rate" not in keep:
        s = str(uri)
        path = s[len("file://"):] if s.startswith("file://") else s
        if any(c in path for c in "*?[") or os.path.isdir(path) or path.lower().endswith(IMAGE_EXTENSIONS):
            changes["rate"] = None
    return dataclasses.replace(opts, **changes)
