"""Signals and stop: SIGTERM/SIGINT/SIGUSR1 at every point of `edge-runtime run`'s life (subprocesses), and
`Runtime.stop()` while the backend hangs (a fake runner that blocks), through the API and the CLI."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest
import yaml

from edge_runtime.policy import Action, Decision, Reason
from edge_runtime.runtime import Runtime
from edge_runtime.sinks import CallbackSink
from edge_runtime.sources import SyntheticSource

from .blocking_runner import MANIFEST, BlockingRunner, config

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ stop during a hang
def test_stop_returns_at_once_and_the_loop_ends_with_stop_while_the_backend_hangs():
    runner = BlockingRunner(good=5)
    seen: List[Tuple[float, Decision]] = []
    sink = CallbackSink(lambda d: seen.append((time.monotonic(), d)), heartbeat_s=0.02, name="beats")
    rt = Runtime.from_config(config(), model=runner, manifest=MANIFEST, extra_sinks=[sink],
                             source=SyntheticSource(width=48, height=40, rate=50))
    got: List[Decision] = []
    stop_took: List[float] = []
    stop_at: List[float] = []

    def stopper() -> None:
        while runner.hung_at is None:
            time.sleep(0.005)
        time.sleep(0.5)  # well past source_timeout_ms (200): the watchdog has turned the output STOP
        t0 = time.monotonic()
        rt.stop("test stop")
        stop_took.append(time.monotonic() - t0)
        stop_at.append(t0)

    th = threading.Thread(target=stopper, daemon=True)
    th.start()
    t_stop_end = None
    try:
        with rt:
            for d in rt.decisions():
                got.append(d)
            t_stop_end = time.monotonic()
            assert rt.backend_hung  # the hung call is abandoned on its daemon thread, still inside infer
        t_closed = time.monotonic()
    finally:
        runner.release.set()
    th.join(5)
    assert stop_took and stop_took[0] < 0.1
    hung_at = runner.hung_at
    assert hung_at is not None and t_stop_end is not None
    t_stop = stop_at[0]
    assert t_stop_end - t_stop < 0.1, "the loop ended %.0f ms after stop()" % ((t_stop_end - t_stop) * 1e3)
    assert t_closed - t_stop < 1.0  # close() did not wait for the hung backend either
    final = got[-1]
    assert final.action is Action.STOP and final.reason is Reason.SHUTDOWN and final.detail == "test stop"
    assert got[-2].action is Action.STOP and "abandoned" in got[-2].detail  # the frame whose inference never came back
    assert any(d.action is Action.GO for d in got[:-2])  # it was GO before the hang
    # what the sinks got while inference hung: nothing that is not fail-safe (no stale GO heartbeat), and the
    # watchdog's STOP (source_timeout) with heartbeats of it
    during = [d for t, d in seen if t > hung_at + 0.005]
    assert during and all(d.action is Action.STOP and d.reason.failsafe for d in during), \
        [(d.action.name, d.reason.value) for d in during]
    timeouts = [d for d in during if d.reason is Reason.SOURCE_TIMEOUT]
    assert len(timeouts) >= 3 and "watchdog" in timeouts[0].detail
    assert runner.returned.wait(5)  # released: the abandoned call ends on its own


def test_a_process_whose_backend_hangs_exits_after_stop(tmp_path):
    """`Runtime.stop()` from another thread; the main thread leaves the `with` block and the interpreter exits
    although the abandoned infer() would block 20 s more (its thread is a daemon)."""
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent("""
        import threading, time, sys
        sys.path.insert(0, %r)
        from tests.blocking_runner import BlockingRunner, config, MANIFEST
        from edge_runtime.runtime import Runtime
        from edge_runtime.sources import SyntheticSource
        runner = BlockingRunner(good=3)
        rt = Runtime.from_config(config(), model=runner, manifest=MANIFEST,
                                 source=SyntheticSource(width=48, height=40, rate=50))
        def stopper():
            while runner.hung_at is None:
                time.sleep(0.005)
            time.sleep(0.1)
            rt.stop("stop from a thread")
        threading.Thread(target=stopper, daemon=True).start()
        with rt:
            final = rt.run()
        print("final", final.action.name, final.reason.value, "hung", rt.backend_hung, flush=True)
    """ % str(ROOT)))
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert "final STOP shutdown hung True" in p.stdout
    assert took < 15, "the process took %.1f s: it waited for the hung backend" % took


# ------------------------------------------------------------------------------------------------ the CLI
def _write_config(tmp: Path, heartbeat_s: float = 0.05) -> Path:
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump({
        "policy": {"default_action": "GO", "rules": [{"action": "STOP", "classes": ["cat"], "min_confidence": 0.99}],
                   "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
                   "timeouts": {"source_timeout_ms": 300, "max_frame_age_ms": 1000, "deadline_ms": 2000}},
        "sinks": [{"type": "jsonl", "path": str(tmp / "events.jsonl"), "heartbeat_s": heartbeat_s}]}))
    return path


def _env() -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _spawn(args: List[Any], cwd: Path, python: Optional[List[str]] = None) -> subprocess.Popen:
    cmd = (python or [sys.executable, "-m", "edge_runtime"]) + ["run"] + [str(a) for a in args]
    return subprocess.Popen(cmd, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _caught(pid: int, sig: int) -> bool:
    """Whether the process has a handler for ``sig`` (/proc/PID/status SigCgt)."""
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        return False
    return False


def _wait_handler(proc: subprocess.Popen, timeout: float = 10.0) -> float:
    """Wait until the child has our handlers (SIGTERM's is ours alone: Python itself installs one for SIGINT
    before it even imports ``site``)."""
    sig = signal.SIGTERM
    t0 = time.monotonic()
    while not _caught(proc.pid, sig):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, "no handler for %s within %g s" % (sig, timeout)
        time.sleep(0.001)
    return time.monotonic() - t0


def _events(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []


def _wait_events(path: Path, n: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    t_end = time.monotonic() + timeout
    while len(_events(path)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < t_end, "no %d events within %g s" % (n, timeout)
        time.sleep(0.02)


def _ends_cleanly(proc: subprocess.Popen, events: Path, sig_name: str, codes: Tuple[int, ...] = (0,)) -> str:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in codes, (proc.returncode, err)
    assert "Traceback" not in err, err
    ev = _events(events)
    if ev:  # the sinks existed: their last word is the final STOP
        assert ev[-1]["action"] == "STOP" and ev[-1]["reason"] == "shutdown" and sig_name in ev[-1]["detail"], ev[-1]
    return err


@pytest.fixture()
def cli_run(tmp_path, lenet_onnx):
    cfg = _write_config(tmp_path)
    return ["synthetic://?rate=30", "--model", lenet_onnx, "--config", cfg, "--duration", "60", "--quiet"]


def test_sigterm_at_the_first_moment_handlers_exist_exits_0(tmp_path, cli_run):
    proc = _spawn(cli_run, tmp_path)
    _wait_handler(proc)  # Python's own start-up (before our first line) cannot be covered
    proc.send_signal(signal.SIGTERM)
    err = _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGTERM")
    assert "SIGTERM" in err or _events(tmp_path / "events.jsonl")


@pytest.mark.parametrize("delay", [0.3, 0.8, "random"])
def test_sigterm_during_start_up_exits_0_with_a_final_stop_where_sinks_exist(tmp_path, cli_run, delay):
    if delay == "random":
        delay = round(random.uniform(0.15, 2.5), 3)
        print("SIGTERM after %.3f s" % delay)  # shown with -s or on failure
    proc = _spawn(cli_run, tmp_path)
    _wait_handler(proc)
    time.sleep(float(delay))
    proc.send_signal(signal.SIGTERM)
    _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGTERM")


def test_sigint_during_start_up_and_during_the_run(tmp_path, cli_run):
    proc = _spawn(cli_run, tmp_path)
    _wait_handler(proc)
    proc.send_signal(signal.SIGINT)
    _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGINT", codes=(0, 130))
    (tmp_path / "events.jsonl").unlink(missing_ok=True)
    proc = _spawn(cli_run, tmp_path)
    _wait_events(tmp_path / "events.jsonl", 3, proc)
    proc.send_signal(signal.SIGINT)
    _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGINT")
    assert _events(tmp_path / "events.jsonl")[-1]["detail"] == "SIGINT received"


def test_sigusr1_never_kills(tmp_path, cli_run):
    proc = _spawn(cli_run, tmp_path)
    _wait_handler(proc)
    for _ in range(3):  # during start-up: imports, model, warm-up
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.25)
    _wait_events(tmp_path / "events.jsonl", 3, proc)
    proc.send_signal(signal.SIGUSR1)  # during the run: a latch reset request
    time.sleep(0.3)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGTERM")


def test_sigterm_during_a_pytorch_model_load_exits_0(tmp_path, lenet_ckpt):
    pytest.importorskip("torch")
    cfg = _write_config(tmp_path)
    args = ["synthetic://?rate=30", "--model", lenet_ckpt, "--backend", "torch", "--config", cfg, "--quiet"]
    proc = _spawn(args, tmp_path)
    _wait_handler(proc)
    time.sleep(0.5)  # importing torch and loading the checkpoint takes seconds here
    assert not _events(tmp_path / "events.jsonl"), "the load was over before the signal: the test proves nothing"
    proc.send_signal(signal.SIGTERM)
    err = _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGTERM")
    assert "SIGTERM received during start-up" in err and len(err.strip().splitlines()) == 1, err


def test_sigterm_while_the_backend_hangs_ends_the_cli_with_a_final_stop(tmp_path, lenet_onnx):
    """The real CLI with ONNX Runtime's infer made to block 30 s from the 6th frame on."""
    cfg = _write_config(tmp_path)
    launcher = tmp_path / "hang_cli.py"
    launcher.write_text(textwrap.dedent("""
        import sys, time
        from edge_runtime.cli import signals
        signals.install()
        from edge_runtime.backends import onnxrt
        real = onnxrt.OnnxRuntimeRunner._infer
        n = [0]
        def hang(self, x):
            if x.any():
                n[0] += 1
                if n[0] > 5:
                    time.sleep(30)
            return real(self, x)
        onnxrt.OnnxRuntimeRunner._infer = hang
        from edge_runtime.cli import main
        sys.exit(main(sys.argv[1:]))
    """))
    proc = _spawn(["synthetic://?rate=30", "--model", lenet_onnx, "--config", cfg, "--quiet"], tmp_path,
                  python=[sys.executable, str(launcher)])
    t_end = time.monotonic() + 30
    while not any(e["reason"] == "source_timeout" for e in _events(tmp_path / "events.jsonl")):
        assert proc.poll() is None and time.monotonic() < t_end, proc.communicate()
        time.sleep(0.02)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    err = _ends_cleanly(proc, tmp_path / "events.jsonl", "SIGTERM")
    assert time.monotonic() - t0 < 5, "exit took %.1f s: it waited for the hung backend" % (time.monotonic() - t0)
    assert "backend had not returned" in err
    ev = _events(tmp_path / "events.jsonl")
    hung = [e for e in ev if e["reason"] == "source_timeout"]
    assert hung and "watchdog" in hung[0]["detail"]
    first = ev.index(hung[0])
    assert all(e["action"] == "STOP" for e in ev[first:])  # from the watchdog's STOP to the end: never a GO


def test_in_process_main_gives_the_callers_handlers_back(tmp_path, lenet_onnx, capsys):
    from edge_runtime.cli import main

    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)]
    cfg = _write_config(tmp_path)
    assert main(["run", "synthetic://?rate=100&frames=5", "--model", str(lenet_onnx), "--config", str(cfg),
                 "--quiet"]) == 0
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)] == before


def test_a_source_that_does_not_open_leaves_a_stop_in_the_sinks():
    """The sinks exist before the source opens: a refusal there still ends them with a STOP saying why."""
    from edge_runtime.errors import EdgeRuntimeError
    from edge_runtime.sources import Source

    class Broken(Source):
        def _connect(self) -> None:
            raise EdgeRuntimeError("cannot open camera broken://0")

    seen: List[Decision] = []
    rt = Runtime.from_config(config(), model=BlockingRunner(), manifest=MANIFEST,
                             extra_sinks=[CallbackSink(seen.append)], source=Broken("broken://0"))
    with pytest.raises(EdgeRuntimeError):
        with rt:
            pass
    assert seen and seen[-1].action is Action.STOP and seen[-1].reason is Reason.SOURCE_FAILED
    assert "broken://0" in seen[-1].detail


def test_a_refused_display_after_the_sinks_exist_still_ends_them_with_stop(tmp_path, lenet_onnx, capsys):
    cv2 = pytest.importorskip("cv2")
    if not re.search(r"GUI:\s*NONE", cv2.getBuildInformation()):
        pytest.skip("this OpenCV has a GUI: --display would open a window")
    from edge_runtime.cli import main

    cfg = _write_config(tmp_path)
    rc = main(["run", "synthetic://?rate=100&frames=5", "--model", str(lenet_onnx), "--config", str(cfg), "--display",
               "--quiet"])
    assert rc == 2 and "--display needs a desktop" in capsys.readouterr().err
    ev = _events(tmp_path / "events.jsonl")
    assert ev and ev[-1]["action"] == "STOP" and ev[-1]["reason"] == "shutdown"
