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

from .base import IMAGE_EXTENSIONS, SUPPORTED, Frame, Source, SourceState, SourceStats
from .base import _flip, _has_gstreamer, _import_cv2  # noqa: F401 - the helpers' old address (tests import them)
from .capture import CaptureSource, csi_pipeline, rtsp_pipeline
from .images import ImageFolderSource
from .push import PushSource
from .synthetic import SyntheticSource
from .uri import SchemeFactory  # noqa: F401 - public, not in __all__ (as before)
from .uri import create_source, is_camera, open_source, register_source_scheme, source_options

__all__ = ["Frame", "SourceState", "SourceStats", "Source", "CaptureSource", "ImageFolderSource",
           "SyntheticSource", "PushSource", "create_source", "open_source", "register_source_scheme",
           "SUPPORTED", "IMAGE_EXTENSIONS", "csi_pipeline", "rtsp_pipeline", "is_camera", "source_options"]
