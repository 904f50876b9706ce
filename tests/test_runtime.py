"""The Runtime and `edge-runtime run`: fault behaviour, signals, bad input, and one contract over every backend.

Most tests inject a fake Runner through the Python API (fast, scripted faults); the CLI and backend tests use
the session's tiny lenet5 fixture model.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import yaml

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.policy import Action, Decision, Reason
from edge_runtime.runtime import Runtime, RingBuffer
from edge_runtime.sinks import CallbackSink
from edge_runtime.sources import SyntheticSource

from .helpers import CAT, CLASSES10, MANIFEST, SHIP, FakeRunner, images, logits_for, run_cli
from .helpers import runtime_config as config

ROOT = Path(__file__).resolve().parents[1]
def run_all(rt: Runtime, max_s: float = 10.0) -> List[Decision]:
    out: List[Decision] = []
    t_end = time.monotonic() + max_s
    with rt:
        for d in rt.decisions():
            out.append(d)
            if time.monotonic() > t_end:
                rt.stop("test time limit")
    return out


# ------------------------------------------------------------------------------------------------- faults
def test_source_that_stops_delivering_stops_within_timeout_plus_one_frame():
    got: List[Decision] = []
    rt = Runtime.from_config(config(source_timeout_ms=200), model=FakeRunner(lambda i: logits_for(SHIP)),
                             manifest=MANIFEST, source=SyntheticSource(rate=50.0, stall_after=8),
                             extra_sinks=[CallbackSink(got.append)])
    frame_ts: List[float] = []
    with rt:
        n = 0
        for d in rt.decisions():
            if rt.metrics.frames > n:  # a decision on a frame (a tick repeats the last one's fields)
                n = rt.metrics.frames
                frame_ts.append(d.t)
            if d.reason is Reason.SOURCE_TIMEOUT:
                stop = d
                rt.stop()
    assert rt.final is not None and rt.final.reason is Reason.SHUTDOWN
    # source_timeout_ms + one frame (20 ms at 50 FPS) + the poll interval (50 ms) the loop waits per read
    assert 0.2 <= stop.t - frame_ts[-1] <= 0.2 + 0.02 + 0.05 + 0.05
    assert [d.reason for d in got if d.changed][:3] == [Reason.STARTUP, Reason.DEFAULT, Reason.SOURCE_TIMEOUT]


def test_backend_that_raises_or_returns_nan_stops_with_its_reason_and_goes_on():
    def script(i: int) -> np.ndarray:
        if i == 1:
            raise RuntimeError("CUDA context lost")
        if i == 3:
            return np.full(10, np.nan, np.float32)
        return logits_for(SHIP)

    rt = Runtime.from_config(config(), model=FakeRunner(script), manifest=MANIFEST,
                             source=SyntheticSource(images=images(6), loop=False))
    ds = run_all(rt)
    assert [d.reason.value for d in ds] == ["startup", "default", "inference_error", "default", "non_finite", "default",
                                           "default", "end_of_stream"]
    err = next(d for d in ds if d.reason is Reason.INFERENCE_ERROR)
    assert err.action is Action.STOP and "CUDA context lost" in err.detail
    nan = next(d for d in ds if d.reason is Reason.NON_FINITE)
    assert nan.action is Action.STOP
    assert ds[-1].reason is Reason.END_OF_STREAM and rt.metrics.frames == 6  # the loop went on to the end


@pytest.mark.parametrize("action", ["STOP", "SLOW"])
def test_inference_slower_than_the_deadline_gets_the_configured_action(action):
    def slow(i: int) -> np.ndarray:
        time.sleep(0.06)
        return logits_for(SHIP)

    rt = Runtime.from_config(config(deadline_ms=30, deadline_action=action), model=FakeRunner(slow),
                             manifest=MANIFEST, source=SyntheticSource(images=images(3), loop=False))
    ds = run_all(rt)
    misses = [d for d in ds if d.reason is Reason.DEADLINE_MISS]
    assert misses and all(d.action is Action[action] for d in misses)
    assert "deadline_ms 30" in misses[0].detail and rt.report()["deadline_misses"] == len(misses)


def test_watchdog_stops_while_inference_hangs():
    got: List[Decision] = []

    def hang(i: int) -> np.ndarray:
        if i == 2:
            time.sleep(0.8)
        return logits_for(SHIP)

    rt = Runtime.from_config(config(source_timeout_ms=150), model=FakeRunner(hang), manifest=MANIFEST,
                             source=SyntheticSource(images=images(4), loop=False), extra_sinks=[CallbackSink(got.append)])
    ds = run_all(rt)
    last_frame_t = ds[2].t  # startup, frame 0, frame 1; frame 2 hangs (no read comes back empty: lossless source)
    wd = [d for d in got if d.reason is Reason.SOURCE_TIMEOUT]
    assert wd and "watchdog" in wd[0].detail and wd[0].action is Action.STOP
    assert wd[0].t - last_frame_t <= 0.15 + 0.05 + 0.05  # source_timeout + one watchdog period + slack
    assert wd[0].t < ds[3].t  # before the hung inference returned
    assert rt.metrics.watchdog_ticks > 0 and ds[-1].reason is Reason.END_OF_STREAM


def test_a_sink_that_raises_is_logged_and_the_loop_goes_on(caplog):
    def boom(d: Decision) -> None:
        raise ValueError("disk full")

    rt = Runtime.from_config(config(), model=FakeRunner(lambda i: logits_for(CAT if i % 2 else SHIP)),
                             manifest=MANIFEST, source=SyntheticSource(images=images(6), loop=False),
                             extra_sinks=[CallbackSink(boom, every_decision=True, name="boom")])
    with caplog.at_level("WARNING"):
        ds = run_all(rt)
    assert rt.metrics.frames == 6 and ds[-1].reason is Reason.END_OF_STREAM
    assert any("sink boom failed" in r.getMessage() and "the loop goes on" in r.getMessage() for r in caplog.records)
    assert rt.report()["sinks"]["0:boom"]["errors"] >= 6


def test_stop_from_another_thread_and_latch_reset():
    import threading

    rt = Runtime.from_config(config(latch=True), model=FakeRunner(lambda i: logits_for(CAT if i < 3 else SHIP)),
                             manifest=MANIFEST, source=SyntheticSource(images=images(1), rate=200.0))
    seen: List[Decision] = []
    with rt:
        for d in rt.decisions():
            seen.append(d)
            if rt.metrics.frames == 10:
                assert d.action is Action.STOP and d.reason is Reason.LATCHED  # frames say ship, the latch holds
                rt.reset_latch()
            if rt.metrics.frames == 14:
                threading.Thread(target=rt.stop, args=("operator",)).start()
    after = [d for d in seen if d.class_name and d.seq > 12]
    assert any(d.action is Action.GO for d in after)
    assert seen[-1].reason is Reason.SHUTDOWN and seen[-1].detail == "operator"


def test_ring_buffer_keeps_constant_memory():
    rb = RingBuffer(4)
    for x in range(10):
        rb.add(float(x))
    assert len(rb) == 4 and rb.total == 10 and sorted(rb.values().tolist()) == [6.0, 7.0, 8.0, 9.0]
    assert rb.summary(scale=1.0)["max_ms"] == 9.0 and rb.summary(scale=1.0)["p50_ms"] == 7.5


def test_ring_table_rows_and_column_views():
    from edge_runtime.runtime import RingTable

    t = RingTable(("a", "b"), capacity=3)
    for x in range(5):
        t.add((float(x), 10.0 * x))
    a, b = t.column("a"), t.column("b")
    assert len(t) == len(a) == 3 and a.total == 5
    assert sorted(a.values().tolist()) == [2.0, 3.0, 4.0] and b.summary(scale=1.0)["max_ms"] == 40.0
    with pytest.raises(TypeError):
        a.add(1.0)


# ---------------------------------------------------------------------------------------------------- CLI
def write_config(path: Path, tmp: Path, rules: Optional[list] = None, heartbeat_s: float = 0.01, **extra: Any) -> Path:
    data: Dict[str, Any] = {
        "policy": {"default_action": "GO", "rules": rules or [{"action": "STOP", "classes": CLASSES10, "min_confidence": 0.0}],
                   "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
                   "timeouts": {"source_timeout_ms": 500, "max_frame_age_ms": 1000, "deadline_ms": 1000}},
        "sinks": [{"type": "console"}, {"type": "jsonl", "path": str(tmp / "events.jsonl"), "heartbeat_s": heartbeat_s}],
    }
    data.update(extra)
    path.write_text(yaml.safe_dump(data))
    return path


def write_video(path: Path, n: int = 30) -> Path:
    cv2 = pytest.importorskip("cv2")
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(n):
        vw.write(np.full((48, 64, 3), (20 * i) % 250, np.uint8))
    vw.release()
    return path


def lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_cli_file_that_ends_or_is_truncated_stops_and_exits_cleanly(tmp_path, lenet_onnx, capsys):
    cfg = write_config(tmp_path / "c.yaml", tmp_path)
    clip = write_video(tmp_path / "clip.avi")
    rc, out, err = run_cli(["run", clip, "--model", lenet_onnx, "--config", cfg], capsys)
    assert rc == 0 and "Timing Report" in out and "STOP end_of_stream" in out, err
    ev = lines(tmp_path / "events.jsonl")
    assert ev[-1]["action"] == "STOP" and ev[-1]["reason"] == "end_of_stream"
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    rc, out, err = run_cli(["run", cut, "--model", lenet_onnx, "--config", cfg], capsys)
    assert rc == 1 and "STOP source_failed" in out and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("edge-runtime run: the source failed:") and "truncated" in err
    assert lines(tmp_path / "events.jsonl")[-1]["reason"] == "source_failed"


def test_cli_record_and_snapshots(tmp_path, lenet_onnx, capsys):
    cv2 = pytest.importorskip("cv2")
    cfg = write_config(tmp_path / "c.yaml", tmp_path)
    rc, out, err = run_cli(["run", "synthetic://?width=64&height=48", "--model", lenet_onnx, "--config", cfg,
                            "--max-frames", "20", "--record", tmp_path / "out.mp4", "--snapshots", tmp_path / "snaps",
                            "--quiet"], capsys)
    assert rc == 0, err
    assert "20 frames" in out and "final: STOP shutdown" in out
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 320
    cap.release()
    snaps = list((tmp_path / "snaps").glob("*.jpg"))
    assert len(snaps) == 1 and "_rule_" in snaps[0].name  # startup -> STOP rule on the first frame


def _spawn(args: List[str], cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "edge_runtime", "run"] + [str(a) for a in args], cwd=str(cwd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if path.is_file() and path.read_text().count("\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError("the run ended early: %s" % proc.communicate())
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no %d lines in %s within %g s" % (n, path, timeout))


def test_sigkill_leaves_every_jsonl_line_up_to_the_last_stop(tmp_path, lenet_onnx):
    cfg = write_config(tmp_path / "c.yaml", tmp_path, heartbeat_s=0.005)
    proc = _spawn(["synthetic://?rate=100", "--model", lenet_onnx, "--config", cfg, "--quiet"], tmp_path)
    _wait_lines(tmp_path / "events.jsonl", 30, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    raw = (tmp_path / "events.jsonl").read_bytes()
    text = raw.decode()
    body = text if text.endswith("\n") else text[: text.rfind("\n") + 1]  # only a line being written may be cut
    ev = [json.loads(x) for x in body.splitlines()]
    assert len(ev) >= 30 and ev[0]["reason"] == "startup"
    seqs = [e["seq"] for e in ev]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # a cut can only be the start of the line being written when the process died
    tail = text[len(body):]
    assert "\n" not in tail and (tail[:10] == '{"event":"'[:len(tail[:10])]), tail[:80]
    # no line lost in the middle: heartbeats every 5 ms (every decision is a STOP here) leave no long gap
    assert {e["event"] for e in ev} >= {"change", "heartbeat"}
    gaps = [b["wall_time"] - a["wall_time"] for a, b in zip(ev, ev[1:])]
    assert max(gaps) < 2.0, max(gaps)


def test_sigterm_emits_a_final_stop_and_exits_0(tmp_path, lenet_onnx):
    cfg = write_config(tmp_path / "c.yaml", tmp_path, heartbeat_s=0.05)
    proc = _spawn(["synthetic://?rate=50", "--model", lenet_onnx, "--config", cfg], tmp_path)
    _wait_lines(tmp_path / "events.jsonl", 3, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    last = lines(tmp_path / "events.jsonl")[-1]
    assert last["action"] == "STOP" and last["reason"] == "shutdown" and "SIGTERM" in last["detail"]
    assert "STOP shutdown" in out and "Timing Report" in out


# ----------------------------------------------------------------------------------------------- bad input
def _one_line_error(rc: int, err: str) -> str:
    assert rc == 2, err
    msgs = [x for x in err.strip().splitlines() if x]
    assert len(msgs) == 1 and msgs[0].startswith("edge-runtime run: error:"), err
    return msgs[0]


def test_bad_input_is_one_line_exit_2(tmp_path, lenet_onnx, capsys):
    good = write_config(tmp_path / "good.yaml", tmp_path)
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text(good.read_text().replace("default_action", "default_acton"))
    msg = _one_line_error(*run_cli(["run", "synthetic://", "--model", lenet_onnx, "--config", bad_key], capsys)[::2])
    assert "policy.default_acton: unknown key" in msg
    bad_class = write_config(tmp_path / "bad_class.yaml", tmp_path, rules=[{"action": "STOP", "classes": ["person"]}])
    msg = _one_line_error(*run_cli(["run", "synthetic://", "--model", lenet_onnx, "--config", bad_class], capsys)[::2])
    assert "unknown class 'person'" in msg and "airplane, automobile" in msg
    msg = _one_line_error(*run_cli(["run", "gopher://cam", "--model", lenet_onnx, "--config", good], capsys)[::2])
    assert "unknown source scheme 'gopher'" in msg
    onnx = pytest.importorskip("onnx")
    m = onnx.load(str(lenet_onnx))
    del m.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(m, str(bare))
    msg = _one_line_error(*run_cli(["run", "synthetic://", "--model", bare, "--config", good], capsys)[::2])
    assert "has no manifest" in msg and "--mean" in msg and "--labels" in msg and "edge-runtime export" in msg
    rc, out, err = run_cli(["run", "synthetic://", "--model", bare, "--config", good, "--max-frames", "3", "--quiet",
                            "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25", "--labels",
                            ",".join(CLASSES10)], capsys)
    assert rc == 0 and "3 frames" in out, err


def test_tensorrt_backend_without_tensorrt_is_one_line(tmp_path, lenet_onnx, capsys):
    from edge_runtime.engine.trt import import_tensorrt

    try:
        import_tensorrt()
    except EdgeRuntimeError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    good = write_config(tmp_path / "good.yaml", tmp_path)
    msg = _one_line_error(*run_cli(["run", "synthetic://", "--model", lenet_onnx, "--config", good, "--backend",
                                    "tensorrt", "--engines-dir", tmp_path / "engines"], capsys)[::2])
    assert "TensorRT is not installed" in msg and "pip install tensorrt" in msg


# ------------------------------------------------------------------------------------------------ contract
def _backends() -> List[str]:
    return ["onnxruntime", "torch", "tensorrt"]


@pytest.mark.parametrize("backend", _backends())
def test_every_backend_gives_the_same_decisions(backend, lenet_onnx, lenet_ckpt, tmp_path):
    """One contract over every backend on the tiny fixture model: same frames -> same classes, confidences
    (within 1e-4) and actions as ONNX Runtime. TensorRT is skipped where it is absent."""
    if backend == "tensorrt":
        from edge_runtime.engine.trt import import_tensorrt

        try:
            import_tensorrt()
        except EdgeRuntimeError as exc:
            pytest.skip(str(exc)[:80])
    if backend == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    cfg = config()

    def decide(model: Any, be: str) -> List[Decision]:
        rt = Runtime.from_config(cfg, model=str(model), backend=be, source=SyntheticSource(images=frames, loop=False),
                                 engines_dir=tmp_path / "engines")
        return [d for d in run_all(rt) if d.class_name is not None and not d.reason.failsafe]

    ref = decide(lenet_onnx, "onnxruntime")
    got = decide(lenet_ckpt if backend == "torch" else lenet_onnx, backend)
    assert len(ref) == len(got) == 6
    for a, b in zip(ref, got):
        assert (a.class_name, a.action, a.reason) == (b.class_name, b.action, b.reason)
        assert abs(a.confidence - b.confidence) < (1e-2 if backend == "tensorrt" else 1e-4)


# ----------------------------------------------------------------------------------------------- pipelining
def test_frames_are_preprocessed_in_the_grabber_thread_exactly_as_preprocess_does():
    from edge_runtime.preprocess import preprocess

    seen: List[Any] = []
    fed: List[np.ndarray] = []
    runner = FakeRunner(lambda i: logits_for(SHIP))
    real_infer = runner._infer
    runner._infer = lambda x: (fed.append(x.copy()), real_infer(x))[1]  # type: ignore[method-assign]
    imgs = [np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8) for i in range(5)]
    rt = Runtime.from_config(config(), model=runner, manifest=MANIFEST, source=SyntheticSource(images=imgs, loop=False))
    source_thread: List[str] = []
    rt.observers.append(lambda frame, d: seen.append(frame))
    with rt:
        prep = rt.source.transform
        assert prep is not None

        def spy(img: np.ndarray) -> Any:
            import threading

            source_thread.append(threading.current_thread().name)
            return prep(img)

        rt.source.transform = spy
        ds = list(rt.decisions())
    assert ds[-1].reason is Reason.END_OF_STREAM and len(seen) == 5
    assert source_thread and all(name.startswith("source:") for name in source_thread)  # not the loop's thread
    for frame, x in zip(seen, fed[-5:]):
        assert frame.tensor is not None and frame.error is None and frame.transform_s > 0
        np.testing.assert_array_equal(x, preprocess(frame.image, MANIFEST["preprocess"], bgr=True))
    rep = rt.report()["stages_ms"]
    assert rep["preprocess"]["n"] == 5 and rep["preprocess"]["mean_ms"] > 0 and rep["capture->read"]["mean_ms"] >= 0


def test_a_frame_that_cannot_be_preprocessed_stops_with_the_reason_and_the_loop_goes_on():
    from edge_runtime.sources import PushSource

    src = PushSource()
    rt = Runtime.from_config(config(), model=FakeRunner(lambda i: logits_for(SHIP)), manifest=MANIFEST, source=src)
    out: List[Decision] = []
    with rt:
        it = rt.decisions()
        out.append(next(it))  # startup
        for img in (images(1)[0] + 1, np.zeros((40, 48), np.uint8), images(1)[0] + 2):
            src.push(img)
            d = next(it)
            while rt.metrics.frames < len([x for x in out if x.reason is not Reason.STARTUP]) + 1:
                d = next(it)  # empty polls repeat the last decision; wait for this frame's
            out.append(d)
        src.end()
        out.extend(it)
    reasons = [d.reason for d in out]
    assert reasons[:4] == [Reason.STARTUP, Reason.DEFAULT, Reason.INFERENCE_ERROR, Reason.DEFAULT]
    assert "preprocessing failed" in out[2].detail and "(H, W, 3)" in out[2].detail and out[2].action is Action.STOP
    assert reasons[-1] is Reason.END_OF_STREAM
