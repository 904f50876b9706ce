"""OpenCV captures (:class:`CaptureSource`): CSI and V4L2 cameras, RTSP streams and video files, and the GStreamer
pipelines for CSI cameras and RTSP streams. Cameras and streams reconnect with exponential backoff; files end, fail
when truncated, or loop."""
from __future__ import annotations

import os
import time
from typing import Any, List, Tuple, Union

import numpy as np

from ..config import FLIP_METHODS, SourceConfig
from ..errors import EdgeRuntimeError
from .base import SUPPORTED, Source, SourceState, _flip, _has_gstreamer, _import_cv2, log


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
