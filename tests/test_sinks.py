"""Sinks: JSONL lines, heartbeats, fsync on STOP, rotation, UDP datagrams, GPIO/ROS 2 through fakes, and a slow
or failing sink that never slows emit()."""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, List

import pytest

from edge_runtime.config import SinkConfig, UdpSinkOptions, parse_config
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.policy import Action, Decision, Reason
from edge_runtime.sinks import (CallbackSink, ConsoleSink, GpioSink, JsonlSink, Ros2Sink, Sink, SinkEvent, SinkGroup,
                                SinkWorker, UdpSink, build_sinks, create_sink, register_sink)

RECEIVED: List[Decision] = []


def collect(decision: Decision) -> None:
    """A callback target importable as ``tests.test_sinks:collect``."""
    RECEIVED.append(decision)


def dec(action: str, t: float, changed: bool = True, seq: int = 0, reason: Reason = Reason.RULE) -> Decision:
    return Decision(action=Action[action], reason=reason, t=t, seq=seq, changed=changed, rule="animals", score=0.9,
                    class_name="dog", confidence=0.8, latency_s=0.002)


def script(actions: str, dt: float = 0.1) -> List[Decision]:
    """'G G S S S' -> decisions at dt spacing, changed where the action changes."""
    names = {"G": "GO", "W": "SLOW", "S": "STOP"}
    out, prev = [], None
    for i, a in enumerate(actions.split()):
        out.append(dec(names[a], i * dt, changed=a != prev, seq=i + 1))
        prev = a
    return out


def lines(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------------------------- jsonl
def test_jsonl_changes_and_heartbeats(tmp_path):
    path = tmp_path / "log" / "events.jsonl"
    group = SinkGroup([JsonlSink(str(path), heartbeat_s=0.25)])
    for d in script("G G G G G G S S G"):  # t = 0.0 ... 0.8
        group.emit(d)
    group.close()
    recs = lines(path)
    assert [(r["event"], r["action"], r["seq"]) for r in recs] == [
        ("change", "GO", 1), ("heartbeat", "GO", 4), ("change", "STOP", 7), ("change", "GO", 9)]
    assert all(isinstance(r["wall_time"], float) and r["reason"] == "rule" for r in recs)
    assert recs[0]["latency_ms"] == 2.0 and recs[0]["class"] == "dog"


def test_jsonl_fsyncs_on_stop(tmp_path, monkeypatch):
    calls: List[int] = []
    real = os.fsync

    def recording_fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = tmp_path / "e.jsonl"
    sink = JsonlSink(str(path), heartbeat_s=None)
    w = SinkWorker(sink)
    w.offer(SinkEvent(dec("GO", 0.0), "change", time.time()))
    w.offer(SinkEvent(dec("SLOW", 0.1), "change", time.time()))
    assert w.flush(2.0)
    assert calls == []  # GO and SLOW: flushed to the OS, not fsynced
    w.offer(SinkEvent(dec("STOP", 0.2), "change", time.time()))
    assert w.flush(2.0)
    assert len(calls) == 1
    assert len(lines(path)) == 3  # the STOP line is on disk when fsync returns
    w.close()
    assert len(calls) == 2  # and once more on close


def test_jsonl_rotation_keeps_complete_lines(tmp_path):
    path = tmp_path / "e.jsonl"
    group = SinkGroup([JsonlSink(str(path), heartbeat_s=None, max_bytes=1024, backups=2)], queue_size=1000)
    for d in script(" ".join(["G", "S"] * 30)):
        group.emit(d)
    group.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["e.jsonl", "e.jsonl.1", "e.jsonl.2"]
    seqs = []
    for f in (path.with_name("e.jsonl.2"), path.with_name("e.jsonl.1"), path):
        assert f.stat().st_size <= 1024
        seqs += [r["seq"] for r in lines(f)]  # every line parses
    assert seqs == sorted(seqs) and seqs[-1] == 60  # the newest lines, in order, in the newest files


def test_jsonl_appends_after_a_cut_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"event":"change","action":"GO"}\n{"event":"cha')  # power lost mid-line
    group = SinkGroup([JsonlSink(str(path), heartbeat_s=None)])
    group.emit(dec("STOP", 0.0))
    group.close()
    text = path.read_text().splitlines()
    assert text[1] == '{"event":"cha' and json.loads(text[2])["action"] == "STOP"


def test_gpio_bad_pin_is_one_line(fake_gpio, monkeypatch):
    def bad_setup(pin: int, direction: str, initial: int) -> None:
        raise ValueError("Channel 99 is invalid")

    monkeypatch.setattr(fake_gpio, "setup", bad_setup)
    with pytest.raises(EdgeRuntimeError, match=r"gpio sink: cannot set up BOARD pin\(s\) \[99\]"):
        GpioSink(pin=99)


def test_jsonl_unwritable_path_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EdgeRuntimeError, match="jsonl sink: cannot open"):
        JsonlSink(str(tmp_path / "file" / "e.jsonl"))


@pytest.mark.parametrize("content", [b"\x08\x07\x12\x07pytorch", b"seq,action\n1,GO\n", b'{"other":"log"}\n'])
def test_jsonl_refuses_to_append_to_a_file_that_is_not_its_log(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(EdgeRuntimeError, match="is not an edge-runtime event log") as info:
        JsonlSink(str(path))
    assert "\n" not in str(info.value)
    assert path.read_bytes() == content  # not a byte appended


def test_jsonl_appends_to_its_own_log_and_empty_files(tmp_path):
    own = tmp_path / "own.jsonl"
    group = SinkGroup([JsonlSink(str(own), heartbeat_s=None)])
    group.emit(dec("GO", 0.0))
    group.close()
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for path in (own, empty):
        group = SinkGroup([JsonlSink(str(path), heartbeat_s=None)])
        group.emit(dec("STOP", 1.0))
        group.close()
    assert [r["action"] for r in lines(own)] == ["GO", "STOP"] and [r["action"] for r in lines(empty)] == ["STOP"]
    with pytest.raises(EdgeRuntimeError, match="is a folder"):
        JsonlSink(str(tmp_path))


def test_sink_options_live_beside_their_sinks():
    import edge_runtime.config as config
    import edge_runtime.sinks as sinks

    for name in ("ConsoleSinkOptions", "JsonlSinkOptions", "UdpSinkOptions", "GpioSinkOptions", "Ros2SinkOptions",
                 "CallbackSinkOptions"):
        assert getattr(config, name) is getattr(sinks, name)  # re-exported from config: one class
    assert config.sink_option_types()["jsonl"] is sinks.JsonlSinkOptions
    with pytest.raises(AttributeError):
        getattr(config, "NoSuchSinkOptions")


# ------------------------------------------------------------------------------------- never stall
class _Sleepy(Sink):
    def __init__(self, delay: float) -> None:
        self.name = "sleepy"
        self.delay = delay
        self.got: List[SinkEvent] = []

    def write(self, event: SinkEvent) -> None:
        time.sleep(self.delay)
        self.got.append(event)


def test_slow_sink_does_not_slow_emit():
    slow = _Sleepy(0.2)
    group = SinkGroup([slow], queue_size=8)
    ds = script(" ".join(["G", "S", "W"] * 200))
    t0 = time.perf_counter()
    for d in ds:
        group.emit(d)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.2, "600 emits took %.3f s behind a sink that sleeps 0.2 s per item" % elapsed
    st = group.stats()["0:sleepy"]
    assert st.dropped > 0 and st.queued <= 4 * 8  # bounded even for a sink that is stuck and a flapping policy
    group.close(timeout=0.3)  # a stuck sink is abandoned after the timeout, not waited for


def test_stop_changes_are_never_dropped():
    gate = threading.Event()

    class Gated(Sink):
        name = "gated"

        def __init__(self) -> None:
            self.got: List[SinkEvent] = []

        def write(self, event: SinkEvent) -> None:
            gate.wait(5)
            self.got.append(event)

    sink = Gated()
    w = SinkWorker(sink, queue_size=4)
    stops = []
    for i in range(12):
        d = dec("STOP" if i % 2 else "GO", i * 0.1, seq=i)
        if d.action is Action.STOP:
            stops.append(d.seq)
        w.offer(SinkEvent(d, "change", 0.0))
    gate.set()
    assert w.flush(5.0)
    got = [e.decision.seq for e in sink.got]
    assert [s for s in got if s in stops] == stops  # every STOP arrived, in order; GO items were dropped instead
    assert w.stats.dropped > 0 and w.stats.dropped_stop == 0
    w.close()


def test_failing_sink_is_logged_and_counted(caplog):
    def boom(d: Decision) -> None:
        raise OSError("relay board unplugged")

    good = _Sleepy(0.0)
    group = SinkGroup([CallbackSink(boom, every_decision=True), good])
    with caplog.at_level(logging.WARNING, logger="edge_runtime.sinks"):
        for d in script("G G S S G"):
            group.emit(d)  # never raises
        assert group.flush(2.0)
    st = group.stats()
    assert st["0:callback:boom"].errors == 5 and "relay board unplugged" in st["0:callback:boom"].last_error
    assert len(good.got) == 3  # the other sink got every change
    assert sum("callback:boom failed" in r.getMessage() for r in caplog.records) == 1  # logged once, not per frame
    group.close()


def test_close_delivers_what_is_queued(tmp_path):
    group = SinkGroup([JsonlSink(str(tmp_path / "e.jsonl"), heartbeat_s=None)])
    for d in script("G S G S G S"):
        group.emit(d)
    group.close()
    assert len(lines(tmp_path / "e.jsonl")) == 6
    group.emit(dec("STOP", 9.0))  # after close: ignored, no error


# ----------------------------------------------------------------------------------------------- udp
def test_udp_datagrams_and_heartbeat():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    port = rx.getsockname()[1]
    try:
        sink = create_sink(SinkConfig("udp", UdpSinkOptions(port=port, heartbeat_s=0.2)))
        group = SinkGroup([sink])
        for d in script("G G G G S"):  # t = 0, 0.1, 0.2, 0.3, 0.4
            group.emit(d)
        group.close()
        got = [json.loads(rx.recv(65536)) for _ in range(3)]
    finally:
        rx.close()
    assert [(g["event"], g["action"]) for g in got] == [("change", "GO"), ("heartbeat", "GO"), ("change", "STOP")]
    assert got[0]["heartbeat_s"] == 0.2 and got[2]["seq"] == 5


def test_udp_bad_host_is_one_line():
    with pytest.raises(EdgeRuntimeError, match="udp sink: cannot resolve host"):
        UdpSink(5005, host="no-such-host.invalid")


# ----------------------------------------------------------------------------------- gpio, ros2 fakes
class FakeGPIO(types.ModuleType):
    BOARD, BCM, OUT, HIGH, LOW = "BOARD", "BCM", "OUT", 1, 0

    def __init__(self) -> None:
        super().__init__("Jetson.GPIO")
        self.levels: dict = {}
        self.log: List[Any] = []

    def setmode(self, mode: str) -> None:
        self.log.append(("setmode", mode))

    def setup(self, pin: int, direction: str, initial: int) -> None:
        self.levels[pin] = initial

    def output(self, pin: int, level: int) -> None:
        self.levels[pin] = level

    def cleanup(self, pins: Any = None) -> None:
        self.log.append(("cleanup", pins))


@pytest.fixture
def fake_gpio(monkeypatch):
    gpio = FakeGPIO()
    pkg = types.ModuleType("Jetson")
    pkg.GPIO = gpio  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "Jetson", pkg)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", gpio)
    return gpio


def test_gpio_deenergized_is_stop(fake_gpio):
    sink = GpioSink(pin=12, slow_pin=16)
    assert fake_gpio.levels == {12: 0, 16: 0}  # STOP from the start
    seen = []
    for action in ("GO", "SLOW", "STOP"):
        sink.write(SinkEvent(dec(action, 0.0), "change", 0.0))
        seen.append((fake_gpio.levels[12], fake_gpio.levels[16]))
    assert seen == [(1, 1), (1, 0), (0, 0)]
    sink.write(SinkEvent(dec("GO", 0.0), "change", 0.0))
    sink.close()
    assert fake_gpio.levels == {12: 0, 16: 0} and fake_gpio.log[-1] == ("cleanup", [12, 16])


def test_gpio_active_low_and_watchdog(fake_gpio):
    sink = GpioSink(pin=7, mode="BCM", active_high=False, watchdog_pin=8, heartbeat_s=0.1)
    assert fake_gpio.log[0] == ("setmode", "BCM") and fake_gpio.levels[7] == 1  # active-low: STOP is HIGH
    assert sink.heartbeat_s == 0.1
    toggles = []
    for _ in range(3):
        sink.write(SinkEvent(dec("GO", 0.0, changed=False), "heartbeat", 0.0))
        toggles.append(fake_gpio.levels[8])
    assert fake_gpio.levels[7] == 0 and toggles[0] != toggles[1] != toggles[2]


def test_gpio_missing_library_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "Jetson", None)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", None)
    with pytest.raises(EdgeRuntimeError, match="gpio sink needs Jetson.GPIO"):
        GpioSink(pin=12)


def test_ros2_publishes_json(monkeypatch):
    published: List[str] = []
    state = {"ok": False, "shutdown": 0, "destroyed": 0}

    class Pub:
        def publish(self, msg: Any) -> None:
            published.append(msg.data)

    class Node:
        def create_publisher(self, cls: Any, topic: str, depth: int) -> Pub:
            assert topic == "/robot/decision" and depth == 10
            return Pub()

        def destroy_node(self) -> None:
            state["destroyed"] += 1

    rclpy = types.ModuleType("rclpy")
    rclpy.ok = lambda: state["ok"]  # type: ignore[attr-defined]
    rclpy.init = lambda: state.update(ok=True)  # type: ignore[attr-defined]
    rclpy.shutdown = lambda: state.update(ok=False, shutdown=state["shutdown"] + 1)  # type: ignore[attr-defined]
    rclpy.create_node = lambda name: Node()  # type: ignore[attr-defined]
    msg_mod = types.ModuleType("std_msgs.msg")
    msg_mod.String = type("String", (), {"data": ""})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "rclpy", rclpy)
    monkeypatch.setitem(sys.modules, "std_msgs", types.ModuleType("std_msgs"))
    monkeypatch.setitem(sys.modules, "std_msgs.msg", msg_mod)
    sink = Ros2Sink(topic="/robot/decision")
    sink.write(SinkEvent(dec("STOP", 1.0), "change", 0.0))
    sink.close()
    assert json.loads(published[0])["action"] == "STOP"
    assert state == {"ok": False, "shutdown": 1, "destroyed": 1}


def test_ros2_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "rclpy", None)
    with pytest.raises(EdgeRuntimeError, match="ros2 sink needs rclpy"):
        Ros2Sink()


# ------------------------------------------------------------------------------------ console, registry
def test_console_one_line_per_change(capsys):
    group = SinkGroup([ConsoleSink()])
    for d in script("G G G S S G"):
        group.emit(d)
    group.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "GO" in out[0] and "STOP rule animals 0.90" in out[1]


def test_build_sinks_from_config(tmp_path):
    RECEIVED.clear()
    cfg = parse_config({"policy": {"rules": [{"action": "STOP", "classes": ["dog"]}]}, "sinks": [
        {"type": "jsonl", "path": str(tmp_path / "e.jsonl")},
        {"type": "callback", "target": "tests.test_sinks:collect", "every_decision": True},
        {"type": "console", "stream": "stderr"},
    ]})
    group = build_sinks(cfg.sinks)
    for d in script("G G S"):
        group.emit(d)
    group.close()
    assert len(RECEIVED) == 3 and len(lines(tmp_path / "e.jsonl")) == 2


def test_build_sinks_errors_close_what_was_built(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "Jetson", None)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", None)
    cfg = parse_config({"policy": {"rules": [{"action": "STOP", "classes": ["dog"]}]}, "sinks": [
        {"type": "jsonl", "path": str(tmp_path / "e.jsonl")}, {"type": "gpio", "pin": 12}]})
    before = threading.active_count()
    with pytest.raises(EdgeRuntimeError, match=r"^sinks\[1\]: gpio sink needs Jetson.GPIO"):
        build_sinks(cfg.sinks)
    time.sleep(0.05)
    assert threading.active_count() <= before  # the jsonl worker was closed
    with pytest.raises(EdgeRuntimeError, match="callback sink: cannot import nope.nothing:fn"):
        create_sink(parse_config({"policy": {"rules": [{"action": "STOP", "classes": ["dog"]}]},
                                  "sinks": [{"type": "callback", "target": "nope.nothing:fn"}]}).sinks[0])
    with pytest.raises(EdgeRuntimeError, match="unknown sink type 'mqtt'; known: callback, console"):
        create_sink(SinkConfig("mqtt"))


def test_register_sink_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_sink("udp", lambda o: CallbackSink(print), UdpSinkOptions)
