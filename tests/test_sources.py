"""Sources: files end or fail clearly, folders and globs, loop, newest-frame-only, stalls, reconnects, bad URIs."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import numpy as np
import pytest

from edge_runtime.config import SourceConfig
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.sources import (CaptureSource, Frame, ImageFolderSource, PushSource, SourceState, SyntheticSource,
                                  _flip, create_source, csi_pipeline, open_source, rtsp_pipeline)


@pytest.fixture
def cv2():
    """OpenCV, for the tests that write videos and images (the rest run without it)."""
    return pytest.importorskip("cv2")


def write_video(cv2, path: Path, n: int = 12, w: int = 64, h: int = 48) -> Path:
    """An MJPG AVI whose frame i is a flat grey of value 20*i mod 250 (the order is checkable after decoding)."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), (20 * i) % 250, np.uint8))
    vw.release()
    return path


def read_all(src, limit: int = 1000, timeout: float = 3.0) -> List[Frame]:
    frames: List[Frame] = []
    while len(frames) < limit:
        f = src.read(timeout)
        if f is None:
            break
        frames.append(f)
    return frames


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------------------------- files
def test_video_file_reads_to_the_end_then_signals_end(tmp_path, cv2):
    path = write_video(cv2, tmp_path / "clip.avi")
    with open_source(str(path)) as src:
        assert isinstance(src, CaptureSource) and not src.live  # lossless: every frame of a file
        frames = read_all(src)
        assert [f.index for f in frames] == list(range(12))
        means = [float(f.image.mean()) for f in frames]
        assert means == sorted(means) and frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
        assert src.finished and src.state is SourceState.ENDED and not src.failed
        t0 = time.monotonic()
        assert src.read(5.0) is None and time.monotonic() - t0 < 0.5  # at the end, read() does not wait
        assert src.stats.dropped == 0 and src.stats.delivered == 12


@pytest.mark.parametrize("threads", [1, 0])
def test_video_file_decoder_threads(tmp_path, cv2, monkeypatch, threads):
    """decode_threads N > 0 asks OpenCV's FFmpeg for N decoder threads (CAP_PROP_N_THREADS); 0 leaves its default."""
    path = write_video(cv2, tmp_path / "clip.avi")
    seen: List[Any] = []
    real = cv2.VideoCapture

    def spy(*args: Any) -> Any:
        seen.append(args)
        return real(*args)

    monkeypatch.setattr(cv2, "VideoCapture", spy)
    with open_source(str(path), SourceConfig(decode_threads=threads)) as src:
        assert len(read_all(src)) == 12
    params = seen[0][2] if len(seen[0]) > 2 else []
    pairs = dict(zip(params[::2], params[1::2]))
    assert pairs.get(cv2.CAP_PROP_N_THREADS) == (threads or None)


def test_truncated_file_fails(tmp_path, cv2):
    path = write_video(cv2, tmp_path / "clip.avi", n=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(str(cut)) as src:
        frames = read_all(src)
        assert len(frames) < 30
        assert src.finished and src.failed and src.state is SourceState.FAILED
        assert "truncated" in src.failure and "of its 30 frames" in src.failure


def test_truncated_mp4_does_not_open(tmp_path, cv2):
    mp4 = tmp_path / "clip.mp4"
    vw = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), 30, (64, 48))
    for i in range(10):
        vw.write(np.full((48, 64, 3), i, np.uint8))
    vw.release()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(mp4.read_bytes()[:-400])  # the index (moov) is at the end
    with pytest.raises(EdgeRuntimeError) as info:
        open_source(str(cut))
    assert one_line(info).startswith("cannot open video file %s" % cut)


def test_loop_replays_a_file(tmp_path, cv2):
    path = write_video(cv2, tmp_path / "clip.avi", n=5)
    with open_source(SourceConfig(uri="file://%s" % path, loop=True)) as src:
        frames = read_all(src, limit=13)
        assert [f.index for f in frames] == list(range(13))
        assert not src.finished and src.state is SourceState.RUNNING


def test_paced_file_behaves_like_a_camera(tmp_path, cv2):
    path = write_video(cv2, tmp_path / "clip.avi", n=12)
    with open_source(str(path), SourceConfig(rate=200.0)) as src:
        assert src.live
        time.sleep(0.15)  # the consumer is late: older frames are replaced, not queued
        f = src.read(1.0)
        assert f is not None and f.index > 0 and src.stats.dropped > 0


# -------------------------------------------------------------------------------------- images, globs
def _images(cv2, folder: Path) -> None:
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / ("img%d.png" % i)), np.full((8, 10, 3), 50 * i + 10, np.uint8))
    np.save(str(folder / "img3.npy"), np.full((8, 10, 3), 200, np.uint8))
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_in_name_order(tmp_path, cv2):
    _images(cv2, tmp_path / "imgs")
    with open_source(str(tmp_path / "imgs")) as src:
        assert isinstance(src, ImageFolderSource)
        frames = read_all(src)
        assert [int(f.image[0, 0, 0]) for f in frames] == [10, 60, 110, 200]
        assert src.finished and not src.failed


def test_image_glob(tmp_path, cv2):
    _images(cv2, tmp_path / "imgs")
    with open_source(str(tmp_path / "imgs" / "*.png")) as src:
        assert len(read_all(src)) == 3


def test_image_folder_loop_resize_and_flip(tmp_path, cv2):
    _images(cv2, tmp_path / "imgs")
    (tmp_path / "imgs" / "img1.png").write_bytes(b"\x89PNG garbage")  # unreadable: skipped, counted
    opts = SourceConfig(width=20, height=16, flip="horizontal", loop=True)
    with open_source(str(tmp_path / "imgs"), opts) as src:
        frames = read_all(src, limit=7)
        assert len(frames) == 7 and frames[0].image.shape == (16, 20, 3)
        assert [int(f.image[0, 0, 0]) for f in frames] == [10, 110, 200, 10, 110, 200, 10]
        assert src.stats.errors >= 2 and "img1.png" in src.stats.last_error


def test_unreadable_folder_fails(tmp_path, cv2):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"nope")
    with open_source(str(tmp_path / "bad")) as src:
        assert read_all(src) == [] and src.failed and "none of the 1 images" in src.failure


def test_npy_folder_needs_no_cv2(tmp_path, monkeypatch):
    (tmp_path / "n").mkdir()
    np.save(str(tmp_path / "n" / "a.npy"), np.zeros((4, 4, 3), np.uint8))
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with open_source(str(tmp_path / "n")) as src:
        assert len(read_all(src)) == 1
    (tmp_path / "n" / "b.png").write_bytes(b"x")
    with pytest.raises(EdgeRuntimeError) as info:
        open_source(str(tmp_path / "n"))
    assert "needs OpenCV (cv2)" in one_line(info) and "JetPack" in str(info.value)


# --------------------------------------------------------------------------------------- live behaviour
def test_newest_frame_only_for_a_slow_consumer():
    with SyntheticSource(rate=250.0, width=16, height=12) as src:
        seen = []
        ages = []
        for _ in range(6):
            time.sleep(0.03)  # a slow consumer: ~7 frames arrive per read
            f = src.read(1.0)
            assert f is not None
            seen.append(f.index)
            ages.append(time.monotonic() - f.t_capture)
        assert all(b > a + 1 for a, b in zip(seen, seen[1:])), seen  # increasing, with gaps
        assert src.stats.dropped >= 10
        assert max(ages) < 0.1  # the newest frame, never a backlog (a queue would hand out 0, 1, 2 ...)


def test_stalling_source_read_returns_none_after_timeout():
    with SyntheticSource(rate=200.0, stall_after=3) as src:
        got = read_all(src, timeout=0.3)
        assert [f.index for f in got][-1] == 2
        t0 = time.monotonic()
        assert src.read(0.1) is None
        waited = time.monotonic() - t0
        assert 0.09 <= waited < 0.5
        assert not src.finished and src.state is SourceState.RUNNING and src.stats.timeouts >= 2


def test_synthetic_end_and_failure():
    with SyntheticSource(frames=4) as src:
        assert len(read_all(src)) == 4 and src.finished and not src.failed
    with SyntheticSource(fail_after=2) as src:
        assert len(read_all(src)) == 2 and src.failed and "after 2 frames" in src.failure
    imgs = [np.full((4, 4, 3), v, np.uint8) for v in (1, 2, 3)]
    with SyntheticSource(images=imgs, loop=False) as src:
        assert [int(f.image[0, 0, 0]) for f in read_all(src)] == [1, 2, 3]


def test_synthetic_uri():
    src = create_source("synthetic://?width=32&height=24&frames=2&rate=500")
    assert isinstance(src, SyntheticSource) and src.rate == 500.0 and src.live
    with src:
        f = src.read(1.0)
        assert f is not None and f.image.shape == (24, 32, 3)
    with pytest.raises(EdgeRuntimeError, match="unknown option 'colour'"):
        create_source("synthetic://?colour=red")
    with pytest.raises(EdgeRuntimeError, match="rate='fast' is not a float"):
        create_source("synthetic://?rate=fast")


def test_push_source():
    src = PushSource().open()
    assert src.read(0.01) is None
    src.push(np.zeros((2, 2, 3), np.uint8), t_capture=5.0)
    src.push(np.ones((2, 2, 3), np.uint8))
    f = src.read(0.01)
    assert f is not None and f.index == 1 and int(f.image[0, 0, 0]) == 1 and src.stats.dropped == 1
    src.end()
    assert src.read(1.0) is None and src.finished
    with pytest.raises(RuntimeError, match="open"):
        PushSource().read(0.0)


class _FlakyCapture:
    """A fake cv2.VideoCapture: ``good`` frames, then read() fails (a camera unplugged)."""

    def __init__(self, good: int) -> None:
        self.good = good

    def isOpened(self) -> bool:
        return True

    def read(self):
        if self.good <= 0:
            time.sleep(0.001)
            return False, None
        self.good -= 1
        return True, np.zeros((6, 8, 3), np.uint8)

    def release(self) -> None:
        pass

    def get(self, prop: int) -> float:
        return 0.0


def test_camera_reconnects_with_backoff(monkeypatch):
    opens: List[float] = []

    def fake_make(self):
        opens.append(time.monotonic())
        return None if len(opens) == 2 else _FlakyCapture(good=3)  # the first reconnect attempt fails

    monkeypatch.setattr(CaptureSource, "_make_capture", fake_make)
    opts = SourceConfig(reconnect_initial_ms=20, reconnect_max_ms=40)
    with open_source("/dev/video0", opts) as src:
        frames = read_all(src, limit=6, timeout=2.0)
        assert len(frames) == 6  # frames keep coming across reconnects
        assert all(b > a for a, b in zip([f.index for f in frames], [f.index for f in frames][1:]))
        stats = src.stats
        assert stats.reconnects >= 2 and stats.errors >= 3
        assert not src.finished  # a camera never ends by itself
    gaps = [b - a for a, b in zip(opens, opens[1:])]
    assert gaps[0] >= 0.015 and gaps[1] >= 0.035  # 20 ms, then doubled to 40 ms


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("uri,expected", [
    ("foo://bar", "unknown source scheme 'foo' in foo://bar; supported sources: csi://N"),
    ("missing.mp4", "source not found: missing.mp4"),
    ("csi://front", "csi://front: expected csi://N"),
    ("v4l2://camera", "v4l2://camera: expected v4l2:///dev/videoN"),
    ("", "no source given"),
])
def test_bad_uris_are_one_line(uri, expected):
    with pytest.raises(EdgeRuntimeError) as info:
        create_source(uri)
    assert expected in one_line(info)


def test_empty_folder_and_glob(tmp_path):
    with pytest.raises(EdgeRuntimeError, match="is a folder without images"):
        create_source(str(tmp_path))
    with pytest.raises(EdgeRuntimeError, match="no files match"):
        create_source(str(tmp_path / "*.jpg"))


def test_camera_index_that_does_not_exist(cv2):
    index = 63
    if os.path.exists("/dev/video%d" % index):
        pytest.skip("/dev/video63 exists here")
    for uri in (str(index), "/dev/video%d" % index, "v4l2:///dev/video%d" % index):
        with pytest.raises(EdgeRuntimeError) as info:
            open_source(uri)
        assert one_line(info).startswith("cannot open camera %s" % uri)


def test_csi_without_gstreamer_says_so(cv2):
    from edge_runtime.sources import _has_gstreamer

    if _has_gstreamer(cv2):
        pytest.skip("this OpenCV has GStreamer: csi://0 would try the real camera")
    with pytest.raises(EdgeRuntimeError) as info:
        open_source("csi://0")
    assert "needs OpenCV built with GStreamer" in one_line(info)


def _capture(uri) -> CaptureSource:
    src = create_source(uri)
    assert isinstance(src, CaptureSource)
    return src


def test_uri_forms():
    assert (_capture(0).kind, _capture(0).target) == ("v4l2", 0)
    assert _capture("2").target == 2
    assert _capture("/dev/video1").target == 1
    assert _capture("v4l2:///dev/video3").target == 3
    rtsp = _capture("rtsp://cam.local:554/stream")
    assert rtsp.kind == "rtsp" and rtsp.live
    assert _capture("csi://1").target == 1


def test_pipelines():
    p = csi_pipeline(0, SourceConfig(flip="rotate-180", rate=60))
    assert p.startswith("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=1280, height=720, "
                        "framerate=60/1")
    assert "nvvidconv flip-method=2 ! video/x-raw, width=320, height=180" in p
    assert p.endswith("appsink drop=true max-buffers=1 sync=false")
    r = rtsp_pipeline("rtsp://h/s", SourceConfig(width=64, height=48))
    assert "rtspsrc location=rtsp://h/s latency=0 drop-on-latency=true" in r and "width=64, height=48" in r


def test_flip_methods():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert _flip(img, "none") is img
    assert np.array_equal(_flip(_flip(img, "rotate-180"), "rotate-180"), img)
    assert np.array_equal(_flip(_flip(img, "clockwise"), "counterclockwise"), img)
    assert np.array_equal(_flip(img, "horizontal")[:, 0], img[:, -1])
    assert np.array_equal(_flip(img, "vertical")[0], img[-1])
    assert _flip(img, "upper-left-diagonal").shape == (3, 2, 3)
    assert np.array_equal(_flip(img, "upper-left-diagonal")[2, 1], img[1, 2])
    assert np.array_equal(_flip(img, "upper-right-diagonal")[0, 0], img[1, 2])
    assert np.array_equal(_flip(img, "clockwise")[0, 0], img[1, 0])


@pytest.mark.camera
def test_real_camera_delivers_a_frame(cv2):
    if not os.path.exists("/dev/video0"):
        pytest.skip("no /dev/video0")
    with open_source("/dev/video0", SourceConfig(width=320, height=240)) as src:
        f: Optional[Frame] = src.read(5.0)
        assert f is not None and f.image.shape == (240, 320, 3)


def test_import_needs_only_numpy_and_yaml():
    import subprocess

    code = ("import sys, edge_runtime.policy, edge_runtime.config, edge_runtime.sources, edge_runtime.sinks; "
            "heavy = [m for m in ('cv2', 'torch', 'rclpy', 'Jetson', 'onnxruntime', 'tensorrt') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(Path(__file__).resolve().parents[1]),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------ the loop's contract, end to end
def _mini_loop(src, policy, sinks, infer, max_s: float = 3.0, frame_ts: Optional[list] = None) -> list:
    """The shape of the runtime loop (names no backend and no camera type). ``frame_ts`` collects the times
    of decisions made on frames."""
    from edge_runtime.policy import Reason

    out = [policy.tick(time.monotonic())]
    sinks.emit(out[-1])
    t_end = time.monotonic() + max_s
    while time.monotonic() < t_end:
        frame = src.read(policy.poll_interval_s)
        now = time.monotonic()
        if frame is None:
            if src.finished:
                reason = Reason.SOURCE_FAILED if src.failed else Reason.END_OF_STREAM
                out.append(policy.shutdown(now, reason, src.failure))
                sinks.emit(out[-1])
                break
            d = policy.tick(now)
        else:
            try:
                probs, err = infer(frame.image), None
            except Exception as exc:  # noqa: BLE001 - the policy turns it into a STOP
                probs, err = None, repr(exc)
            t = time.monotonic()
            d = policy.decide(probs, t, frame_age_s=now - frame.t_capture, latency_s=t - frame.t_capture, error=err)
            if frame_ts is not None:
                frame_ts.append(t)
        out.append(d)
        sinks.emit(d)
    return out


def _policy(source_timeout_ms: float = 200):
    from edge_runtime.config import parse_config
    from edge_runtime.policy import Policy

    cfg = parse_config({"policy": {"rules": [{"action": "STOP", "classes": ["b"], "min_confidence": 0.5}],
                                   "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
                                   "timeouts": {"source_timeout_ms": source_timeout_ms, "max_frame_age_ms": 500,
                                                "deadline_ms": 500}}})
    return Policy(cfg.policy, ["a", "b"])


def test_loop_contract_stalled_source_stops_in_time():
    from edge_runtime.policy import Action, Reason
    from edge_runtime.sinks import CallbackSink, SinkGroup

    got: list = []
    frame_ts: list = []
    sinks = SinkGroup([CallbackSink(got.append)])
    with SyntheticSource(rate=100.0, stall_after=10) as src:
        ds = _mini_loop(src, _policy(200), sinks, lambda img: np.array([0.9, 0.1]), max_s=0.8, frame_ts=frame_ts)
    sinks.close()
    assert ds[0].reason is Reason.STARTUP and ds[1].action is Action.GO and 5 <= len(frame_ts) <= 10  # live: may drop one
    stop = next(d for d in ds if d.reason is Reason.SOURCE_TIMEOUT)
    assert 0.2 < stop.t - frame_ts[-1] < 0.2 + 0.05 + 0.05  # source_timeout + poll interval + slack
    assert [d.reason for d in got if d.changed][:3] == [Reason.STARTUP, Reason.DEFAULT, Reason.SOURCE_TIMEOUT]


def test_loop_contract_end_and_failure():
    from edge_runtime.policy import Reason
    from edge_runtime.sinks import SinkGroup

    def flaky(img: np.ndarray) -> np.ndarray:
        if int(img[0, 0, 0]) == 2:
            raise RuntimeError("engine lost")
        return np.array([0.2, 0.8]) if int(img[0, 0, 0]) == 3 else np.array([0.9, 0.1])

    imgs = [np.full((4, 4, 3), v, np.uint8) for v in range(5)]
    with SyntheticSource(images=imgs, loop=False) as src:
        ds = _mini_loop(src, _policy(), SinkGroup(), flaky)
    assert [d.reason.value for d in ds] == ["startup", "default", "default", "inference_error", "rule", "default",
                                           "end_of_stream"]
    assert [d.action.name for d in ds] == ["STOP", "GO", "GO", "STOP", "STOP", "GO", "STOP"]
    with SyntheticSource(fail_after=2) as src:
        ds = _mini_loop(src, _policy(), SinkGroup(), lambda img: np.array([0.9, 0.1]))
    assert ds[-1].reason is Reason.SOURCE_FAILED and "after 2 frames" in ds[-1].detail
