"""The overlay and recorder: decisions drawn on frames (OpenCV, imported when used), for ``run --display/--record/
--snapshots`` and for your own code::

    from edge_runtime.overlay import FrameOutputs

    out = FrameOutputs(display=False, record="runs/out.mp4", snapshots=None, fps=30, stop=rt.stop,
                       regions=rt.region_boxes())
    rt.observers.append(out)          # called with (frame, decision) for every frame the loop decides
    with rt:
        rt.run()
    out.close()

The banner shows the action, reason, class, confidence, FPS and latency; the border is the action's colour
(STOP red, SLOW orange, GO green). With ``regions:`` each region is drawn in the colour of ITS OWN action, with its
name; with several cameras each camera gets its own window and its own video (``out.mp4`` -> ``out.front.mp4``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from .errors import EdgeRuntimeError

__all__ = ["FrameOutputs", "COLORS", "draw_decision", "draw_regions", "record_path"]

#: BGR colour per action
COLORS = {"STOP": (0, 0, 255), "SLOW": (0, 165, 255), "GO": (0, 190, 0)}
_WHITE = (255, 255, 255)


def _cv2(what: str = "--display, --record and --snapshots") -> Any:
    try:
        import cv2
    except ImportError:
        raise EdgeRuntimeError("%s need OpenCV: pip install opencv-python-headless (on a Jetson: JetPack's "
                               "python3-opencv)" % what) from None
    return cv2


def _upscale(img: Any) -> Any:
    """A copy at least 320 pixels wide (CIFAR-sized frames are enlarged, nearest neighbour)."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    k = max(1, 320 // max(1, w))
    return cv2.resize(img, (w * k, h * k), interpolation=cv2.INTER_NEAREST) if k > 1 else img.copy()


def draw_regions(out: Any, rects: Sequence[Any], parts: Sequence[Any], camera: Optional[str] = None) -> Any:
    """Draw each region of ``rects`` (:class:`~edge_runtime.regions.Rect`, normalized) on ``out`` in the colour of its
    decision in ``parts`` (decisions with ``camera``/``region``, e.g. ``Decision.regions``); a region without a
    decision is white. In place; returns ``out``."""
    cv2 = _cv2()
    h, w = out.shape[:2]
    by_name = {d.region: d for d in parts if d.camera == camera}
    for r in rects:
        d = by_name.get(r.name)
        color = COLORS.get(d.action.name, _WHITE) if d is not None else _WHITE
        x0, y0 = int(round(r.x * w)), int(round(r.y * h))
        x1, y1 = int(round((r.x + r.w) * w)) - 1, int(round((r.y + r.h) * h)) - 1
        cv2.rectangle(out, (x0, y0), (x1, y1), color, 2)
        label = r.name if d is None else "%s %s %s" % (r.name, d.action.name, d.class_name or "")
        cv2.putText(out, label.strip(), (x0 + 3, min(y1 - 4, y0 + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1)
    return out


def draw_decision(img: Any, d: Any, fps: float = 0.0, rects: Sequence[Any] = (), camera: Optional[str] = None) -> Any:
    """A copy of ``img`` with the banner (action, reason, class, FPS, latency), the action-coloured border and, with
    ``rects``, every region in its own action's colour."""
    cv2 = _cv2()
    out = _upscale(img)
    if rects:
        draw_regions(out, rects, d.regions, camera)
    color = COLORS.get(d.action.name, _WHITE)
    cv2.rectangle(out, (0, 0), (out.shape[1], 44), (0, 0, 0), -1)
    who = "/".join(x for x in (d.camera, d.region) if x)
    cv2.putText(out, "%s  %s%s" % (d.action.name, d.reason.value, "  [%s]" % who if who else ""), (6, 18),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2)
    info = "%s %.2f | %.1f FPS | %.1f ms" % (d.class_name or "-", d.confidence or 0.0, fps, (d.latency_s or 0.0) * 1e3)
    cv2.putText(out, info, (6, 38), cv2.FONT_HERSHEY_SIMPLEX, 0.45, _WHITE, 1)
    cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), color, 3)
    return out


def record_path(record: str, camera: Optional[str]) -> str:
    """The video ``--record`` writes for ``camera``: ``record`` itself for the single source (None), else
    ``out.mp4`` -> ``out.<camera>.mp4`` (one per camera in a run with several; checked by ``run`` before it starts)."""
    if camera is None:
        return record
    p = Path(record)
    return str(p.with_name("%s.%s%s" % (p.stem, camera, p.suffix)))


class FrameOutputs:
    """The optional per-frame outputs of a run: overlay window, recording, STOP snapshots. A frame observer
    (``Runtime.observers``): called with each decided frame and the decision.

    ``regions``: camera name (None for the single source) -> its regions (:meth:`Runtime.region_boxes`); the
    whole frame alone draws no box. ``stop``: called when q or Esc is pressed in the window."""

    COLORS = COLORS

    def __init__(self, display: bool, record: Optional[str], snapshots: Optional[str], fps: float,
                 stop: Any = None, regions: Optional[Mapping[Optional[str], Sequence[Any]]] = None) -> None:
        cv2 = _cv2()
        self.cv2 = cv2
        self.display, self.record, self.snapshots, self.rate, self.stop = display, record, snapshots, fps, stop
        self.regions = {k: [r for r in v if r.name != "frame" or len(v) > 1] for k, v in (regions or {}).items()}
        self.several = len(self.regions) > 1
        self.writers: Dict[Optional[str], Any] = {}
        self.saved = 0
        self._fps: Dict[Optional[str], float] = {}
        self._t_prev: Dict[Optional[str], float] = {}
        if display:
            try:
                cv2.namedWindow("edge-runtime", cv2.WINDOW_NORMAL)
            except cv2.error as exc:
                raise EdgeRuntimeError("--display needs a desktop and OpenCV with GUI support (this one has none: %s); "
                                       "use --record OUT.mp4 on a headless machine" % str(exc).strip()[:120]) from None
        if snapshots:
            Path(snapshots).mkdir(parents=True, exist_ok=True)

    @property
    def writer(self) -> Any:
        """The single source's video writer (None before the first frame)."""
        return next(iter(self.writers.values()), None)

    def overlay(self, img: Any, d: Any, camera: Optional[str] = None) -> Any:
        return draw_decision(img, d, self._fps.get(camera, 0.0), self.regions.get(camera, ()), camera)

    def _path(self, camera: Optional[str]) -> str:
        assert self.record is not None
        return record_path(self.record, camera if self.several else None)

    def __call__(self, frame: Any, d: Any) -> None:
        cam = getattr(frame, "camera", None)
        prev = self._t_prev.get(cam)
        if prev is not None and frame.t_capture > prev:
            inst = 1.0 / (frame.t_capture - prev)
            f = self._fps.get(cam, 0.0)
            self._fps[cam] = inst if f == 0 else 0.9 * f + 0.1 * inst
        self._t_prev[cam] = frame.t_capture
        cv2 = self.cv2
        if self.snapshots and d.changed and d.action.name == "STOP" and (d.camera is None or d.camera == cam):
            name = "%06d_%s_%s%s.jpg" % (d.seq, d.reason.value, "%s_" % cam if cam else "", d.class_name or "none")
            cv2.imwrite(str(Path(self.snapshots) / name), frame.image)
            self.saved += 1
        if not (self.display or self.record):
            return
        img = self.overlay(frame.image, d, cam)
        if self.record:
            w = self.writers.get(cam)
            if w is None:
                path = self._path(cam)
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), self.rate, (img.shape[1], img.shape[0]))
                if not w.isOpened():
                    raise EdgeRuntimeError("cannot write %s (OpenCV mp4v)" % path)
                self.writers[cam] = w
            w.write(img)
        if self.display:
            cv2.imshow("edge-runtime" if cam is None else "edge-runtime: %s" % cam, img)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27) and self.stop is not None:
                self.stop("q pressed in the display window")

    def close(self) -> None:
        for w in self.writers.values():
            w.release()
        if self.display:
            self.cv2.destroyAllWindows()
