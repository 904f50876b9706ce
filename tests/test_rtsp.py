"""A real camera stream: `edge-runtime run rtsp://127.0.0.1:PORT/test` against a local RTSP server (GStreamer's
rtsp-server, tests/rtsp_server.py, run by the system python3). The server is killed mid-stream and restarted, or
stalls without closing; the run must turn STOP (source_timeout) within the timeout, then resume deciding through
its reconnect with backoff, in the same process.

Needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{base,good} (`.ci/run` installs
them) and OpenCV with FFmpeg (pip's has it); skips with the reason elsewhere. Every server is bound to 127.0.0.1 and
ends by itself (--max-seconds).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
TIMEOUT_MS = 300  # the policy's source_timeout_ms in these tests
FRAME_S = 1 / 30.0

_PROBE = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
          "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
          "missing = [e for e in ('videotestsrc', 'valve', 'jpegenc', 'rtpjpegpay') if Gst.ElementFactory.find(e) is None]; "
          "print(' '.join(missing))")


@pytest.fixture(scope="module")
def rtsp_ok() -> None:
    why = None
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        why = "no %s" % SYSTEM_PYTHON
    else:
        p = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            why = "the system python3 cannot import GStreamer's RTSP server (%s)" % (p.stderr.strip().splitlines() or
                                                                                   ["?"])[-1]
        elif p.stdout.strip():
            why = "GStreamer elements missing: %s" % p.stdout.strip()
    if why is None:
        cv2 = pytest.importorskip("cv2")
        if not re.search(r"FFMPEG:\s*YES", cv2.getBuildInformation()):
            why = "this OpenCV has no FFmpeg backend to read RTSP"
    if why is not None:
        pytest.skip("RTSP tests need a local GStreamer RTSP server: %s; install python3-gi gir1.2-gst-rtsp-server-1.0 "
                    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good (as .ci/run does)" % why)


class Server:
    """tests/rtsp_server.py in a subprocess, bounded in time."""

    def __init__(self, port: int = 0, max_seconds: float = 60.0, **opts: float) -> None:
        cmd = [SYSTEM_PYTHON, str(SERVER), "--port", str(port), "--max-seconds", str(max_seconds)]
        for k, v in opts.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # READY <port> (or nothing if it died)
        if not line.startswith("READY"):
            self.kill()
            raise AssertionError("the RTSP server did not start: %r" % line)
        self.port = int(line.split()[1])
        self.url = "rtsp://127.0.0.1:%d/test" % self.port

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def _config(tmp: Path) -> Path:
    path = tmp / "rtsp.yaml"
    path.write_text(yaml.safe_dump({
        "source": {"open_timeout_ms": 2000, "reconnect_initial_ms": 100, "reconnect_max_ms": 800},
        "policy": {"default_action": "GO", "rules": [{"action": "STOP", "classes": ["cat"], "min_confidence": 0.99}],
                   "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
                   "timeouts": {"source_timeout_ms": TIMEOUT_MS, "max_frame_age_ms": 1000, "deadline_ms": 2000}},
        "sinks": [{"type": "jsonl", "path": str(tmp / "events.jsonl"), "heartbeat_s": 0.001}]}))  # ~every decision
    return path


def _events(path: Path) -> List[Dict[str, Any]]:
    if not path.is_file():
        return []
    text = path.read_text()
    return [json.loads(x) for x in text[: text.rfind("\n") + 1].splitlines() if x.strip()]


def _run(url: str, tmp: Path, model: Path, seconds: float) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edge_runtime", "run", url, "--model", str(model), "--config", str(_config(tmp)),
           "--duration", str(seconds), "--quiet"]
    return subprocess.Popen(cmd, cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def _wait_for(path: Path, proc: subprocess.Popen, pred: Any, after: int = 0, timeout: float = 20.0) -> int:
    """Index of the first event after index ``after`` for which ``pred(event, newest frame index before it)``."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        ev = _events(path)
        seen = max([e["frame"] for e in ev[:after + 1] if e["frame"] is not None], default=-1)
        for i in range(after + 1, len(ev)):
            if pred(ev[i], seen):
                return i
            if ev[i]["frame"] is not None:
                seen = max(seen, ev[i]["frame"])
        if proc.poll() is not None:
            raise AssertionError("the run ended: %s" % (proc.communicate(),))
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no such event within %g s; last: %s" % (timeout, _events(path)[-3:]))


def _new_go(e: Dict[str, Any], seen: int) -> bool:
    """A GO decided on a frame newer than any before (not a repeat of the last decision)."""
    return e["action"] == "GO" and e["frame"] is not None and e["frame"] > seen


def _timeout(e: Dict[str, Any], _seen: int) -> bool:
    return e["reason"] == "source_timeout"


def _deciding(path: Path, proc: subprocess.Popen, after: int, frames: int, timeout: float = 20.0) -> int:
    """Wait for ``frames`` new frames decided GO after index ``after``; the index of the last."""
    i = after
    for _ in range(frames):
        i = _wait_for(path, proc, _new_go, after=i, timeout=timeout)
    return i


def _check_timeout_stop(ev: List[Dict[str, Any]], i_stop: int) -> float:
    """The STOP (source_timeout) came within the timeout plus one frame (and one poll of the loop) of the decision on
    the last frame before it; returns that delay in seconds."""
    stop = ev[i_stop]
    assert stop["action"] == "STOP" and stop["reason"] == "source_timeout", stop
    last_frame = max(e["frame"] for e in ev[:i_stop] if e["frame"] is not None)
    t_last = min(e["t"] for e in ev[:i_stop] if e["frame"] == last_frame)  # its decision, not a repeat of it
    delay = stop["t"] - t_last
    poll = min(TIMEOUT_MS / 4e3, 0.05)
    print("STOP (source_timeout) %.0f ms after the last frame's decision" % (delay * 1e3))
    assert TIMEOUT_MS / 1e3 <= delay <= TIMEOUT_MS / 1e3 + FRAME_S + poll + 0.05, delay
    return delay


def _finish(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_server_killed_then_restarted_stops_then_resumes_in_the_same_process(rtsp_ok, tmp_path, lenet_onnx):
    server = Server(max_seconds=30)
    proc = _run(server.url, tmp_path, lenet_onnx, 40)
    try:
        path = tmp_path / "events.jsonl"
        i_go = _deciding(path, proc, -1, 30, timeout=30)  # a second of frames
        server.kill()  # mid-stream: the TCP session drops
        i_stop = _wait_for(path, proc, _timeout, after=i_go)
        _check_timeout_stop(_events(path), i_stop)
        time.sleep(1.0)  # the run retries with backoff meanwhile
        assert all(e["action"] == "STOP" for e in _events(path)[i_stop:])
        server = Server(port=server.port, max_seconds=30)  # the same address again
        _deciding(path, proc, i_stop, 15)
        assert proc.poll() is None  # resumed without restarting the process
    finally:
        server.kill()
    err = _finish(proc)
    assert "reconnecting" in err  # the source's warning, one per failed read/attempt


def test_stream_that_stalls_without_closing_stops_then_resumes(rtsp_ok, tmp_path, lenet_onnx):
    server = Server(max_seconds=30, stall_after=2.5, stall_for=3)
    proc = _run(server.url, tmp_path, lenet_onnx, 30)
    try:
        path = tmp_path / "events.jsonl"
        i_go = _deciding(path, proc, -1, 10, timeout=30)
        i_stop = _wait_for(path, proc, _timeout, after=i_go)
        _check_timeout_stop(_events(path), i_stop)
        assert server.proc.poll() is None  # the server never closed
        _deciding(path, proc, i_stop, 15)
    finally:
        server.kill()
    _finish(proc)
