"""Several cameras: the config's sources:, SOURCE arguments (name=uri), one batched inference per step over every
camera's newest frame, per-camera fail-safes (a stalled camera STOPs the output, the others go on), the CLI."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_runtime.config import parse_config
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.policy import Action, Reason
from edge_runtime.runtime import Runtime
from edge_runtime.cameras import SourceGroup, camera_configs, split_named
from edge_runtime.sources import PushSource, SyntheticSource

from .conftest import run_cli
from .helpers import LEFT, MANIFEST, PATH, RULES, BrightnessRunner, road

TWO = [{"name": "front", "uri": "synthetic://?width=64&height=36", "regions": [PATH, LEFT]},
       {"name": "rear", "uri": "synthetic://?width=64&height=36"}]


def config(sources: Any = None, source_timeout_ms: float = 300, **extra: Any) -> Any:
    data = {"policy": {"default_action": "GO", "rules": RULES,
                       "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
                       "timeouts": {"source_timeout_ms": source_timeout_ms, "max_frame_age_ms": 5000,
                                    "deadline_ms": 5000}}}
    if sources is not None:
        data["sources"] = sources
    data.update(extra)
    return parse_config(data, origin="test.yaml")


# ------------------------------------------------------------------------------------------------ config
def test_sources_in_the_config_and_their_errors():
    cfg = config(TWO)
    assert [c.name for c in cfg.sources] == ["front", "rear"] and cfg.sources[1].regions is None
    for bad, msg in (([{"uri": "synthetic://"}], "sources[0].name: missing"),
                     ([{"name": "a", "uri": "x"}, {"name": "a", "uri": "y"}], "sources[1].name: 'a' is used twice"),
                     ([{"name": "a"}], "sources[0].uri: missing"),
                     ([{"name": "a", "uri": "x", "regions": [{"name": "p", "x": 0, "y": 0, "w": 1, "h": 1,
                                                              "rules": ["zz"]}]}], "sources[0].regions[0].rules")):
        with pytest.raises(EdgeRuntimeError) as e:
            config(bad)
        assert msg in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(EdgeRuntimeError, match="give source .* or sources"):
        config(TWO, source={"uri": "csi://0"})


def test_source_arguments_name_or_replace_cameras():
    assert split_named("front=csi://0") == ("front", "csi://0")
    assert split_named("synthetic://?rate=30") == (None, "synthetic://?rate=30")
    cfg = config(TWO)
    cams = camera_configs(cfg, ["rear=synthetic://?width=8&height=8"])
    assert [(c.name, c.uri) for c in cams] == [("front", TWO[0]["uri"]), ("rear", "synthetic://?width=8&height=8")]
    assert cams[0].regions is not None  # a camera keeps its regions when its URI is replaced
    assert [c.uri for c in camera_configs(cfg, ["a://1", "b://2"])] == ["a://1", "b://2"]
    with pytest.raises(EdgeRuntimeError, match="has no camera named 'side'; its cameras: front, rear"):
        camera_configs(cfg, ["side=csi://2"])
    with pytest.raises(EdgeRuntimeError, match="3 SOURCE arguments for the 2 cameras"):
        camera_configs(cfg, ["x", "y", "z"])
    plain = camera_configs(config(), ["left=csi://0", "csi://1"])  # no sources: in the config: one camera per argument
    assert [(c.name, c.uri) for c in plain] == [("left", "csi://0"), ("cam1", "csi://1")]
    assert camera_configs(config(), ["csi://0"])[0].uri == "csi://0" and not hasattr(camera_configs(config())[0], "name")


# ------------------------------------------------------------------------------------------------ reading
def test_group_read_waits_for_any_camera_then_takes_every_ready_frame():
    a, b = PushSource("push://a"), PushSource("push://b")
    a.name, b.name = "a", "b"
    g = SourceGroup([a, b]).open()
    t0 = time.monotonic()
    assert g.read(0.05) == [] and time.monotonic() - t0 >= 0.04 and g.timeouts == 1
    a.push(road())
    got = g.read(1.0)
    assert [(i, f.camera) for i, f in got] == [(0, "a")]
    a.push(road())
    b.push(road())
    assert [i for i, _ in g.read(1.0)] == [0, 1]
    a.end()
    assert not g.finished
    b.end("broken")
    assert g.read(0.5) == [] and g.finished and g.failed and g.failure == "camera b: broken"
    g.close()


# ------------------------------------------------------------------------------------------------ runtime
def _runtime(cfg: Any, runner: Any) -> Any:
    front, rear = PushSource("push://front"), PushSource("push://rear")
    front.name, rear.name = "front", "rear"
    return Runtime(cfg, runner, MANIFEST, source=[front, rear]), front, rear


def test_one_inference_per_step_with_every_region_of_every_camera():
    runner = BrightnessRunner()
    rt, front, rear = _runtime(config(TWO), runner)
    with rt:
        it = rt.decisions()
        assert next(it).reason is Reason.STARTUP
        n0 = len(runner.batches)
        front.push(road())
        rear.push(road(patch=(0, 0, 64, 36)))  # the rear camera (whole frame, all rules) sees an animal
        d = next(it)
        assert runner.batches[n0:] == [3]  # front's 2 regions + rear's whole frame, in one call
        assert (d.action, d.camera, d.region) == (Action.STOP, "rear", None) and d.changed
        assert {(p.camera, p.region): p.action for p in d.regions} == {
            ("front", "path"): Action.GO, ("front", "left"): Action.GO, ("rear", None): Action.STOP}
        rear.push(road())
        front.push(road(patch=(0, 20, 14, 36)))  # an animal on the front camera's left: SLOW
        d = next(it)
        assert (d.action, d.camera, d.region, d.rule) == (Action.SLOW, "front", "left", "animals_slow")
        assert json.loads(json.dumps(d.to_dict()))["camera"] == "front"
        rt.stop()
        assert list(it)[-1].reason is Reason.SHUTDOWN
    r = rt.report()
    assert r["steps"] == 2 and r["mean_batch"] == 3 and set(r["cameras"]) == {"front", "rear"}
    assert "cameras front (2 regions), rear (1 regions)" in rt.format_report()


def test_a_stalled_camera_stops_the_output_with_its_name_while_the_other_goes_on():
    rt, front, rear = _runtime(config(TWO, source_timeout_ms=150), BrightnessRunner())
    with rt:
        it = rt.decisions()
        next(it)
        front.push(road())
        rear.push(road())
        assert next(it).action is Action.GO
        t0 = time.monotonic()
        stopped = None
        while time.monotonic() - t0 < 3.0:  # only the front camera delivers from now on
            front.push(road())
            d = next(it)
            if d.action is Action.STOP:
                stopped = d
                break
            time.sleep(0.01)
        assert stopped is not None and stopped.reason is Reason.SOURCE_TIMEOUT and stopped.camera == "rear"
        assert stopped.detail.startswith("camera rear: no fresh frame for")
        assert 0.12 <= time.monotonic() - t0 <= 2.0  # source_timeout_ms 150 + a poll; generous for a loaded CPU
        front_parts = [p for p in stopped.regions if p.camera == "front"]
        assert front_parts and all(p.action is Action.GO and not p.failsafe for p in front_parts)  # still deciding
        rear.push(road())  # the rear camera is back (a reconnect): the output releases
        front.push(road())
        d = next(it)
        assert d.action is Action.GO and d.changed
        rt.stop()
        list(it)


def test_a_failed_camera_keeps_the_run_going_until_every_camera_has_finished():
    cfg = config()
    srcs = [SyntheticSource(width=64, height=36, rate=100, frames=60), SyntheticSource(width=64, height=36, rate=100,
                                                                                     fail_after=5)]
    srcs[0].name, srcs[1].name = "front", "rear"
    rt = Runtime(cfg, BrightnessRunner(), MANIFEST, source=srcs)
    with rt:
        ds = list(rt.decisions())
    stops = [d for d in ds if d.reason is Reason.SOURCE_TIMEOUT]
    assert stops and stops[0].camera == "rear"
    assert ds[-1].reason is Reason.SOURCE_FAILED and "camera rear: synthetic failure" in ds[-1].detail
    assert rt.report()["cameras"]["front"]["source"]["delivered"] > 30  # front went on after rear failed


def test_cli_runs_several_named_sources(tmp_path, lenet_onnx, capsys):
    cfg = tmp_path / "two.yaml"
    data = yaml.safe_load(open(Path(__file__).resolve().parents[1] / "deploy/configs/two-cameras.yaml"))
    data["sinks"] = [{"type": "jsonl", "path": str(tmp_path / "ev.jsonl"), "heartbeat_s": 0.01}]
    cfg.write_text(yaml.safe_dump(data))
    rc, out, err = run_cli(["run", "front=synthetic://?frames=20&width=64&height=36",
                            "rear=synthetic://?frames=20&width=64&height=36", "--model", lenet_onnx, "--config", cfg,
                            "--record", tmp_path / "out.mp4"], capsys)
    assert rc == 0, err
    assert "cameras front" in out and "mean batch" in out
    ev = [json.loads(x) for x in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert {p["camera"] for e in ev for p in e["regions"]} == {"front", "rear"}
    assert ev[-1]["reason"] == "end_of_stream"
    assert (tmp_path / "out.front.mp4").stat().st_size > 0 and (tmp_path / "out.rear.mp4").stat().st_size > 0
    rc, out, err = run_cli(["run", "side=csi://0", "--model", lenet_onnx, "--config", cfg], capsys)
    assert rc == 2 and "no camera named 'side'" in err and "Traceback" not in err


def test_bench_e2e_with_two_cameras_and_regions(tmp_path, lenet_onnx, capsys):
    cfg = Path(__file__).resolve().parents[1] / "deploy/configs/two-cameras.yaml"
    rc, out, err = run_cli(["bench", "e2e", "front=synthetic://?rate=30&width=64&height=36",
                            "rear=synthetic://?rate=30&width=64&height=36", "--config", cfg, "--model", lenet_onnx,
                            "--duration", "1.5", "--no-progress", "--out", tmp_path], capsys)
    assert rc == 0, err
    d = json.loads((tmp_path / "bench-e2e.json").read_text())["details"]
    assert set(d["cameras"]) == {"front", "rear"} and d["regions"]["front"] == ["path", "left", "right", "far"]
    assert 4 <= d["mean_batch"] <= 8 and d["steps"] > 10 and d["cpu_ms_per_step"] > 0


def test_batch_window_waits_for_the_other_cameras_but_not_for_a_finished_one():
    import threading

    a, b = PushSource("push://a"), PushSource("push://b")
    g = SourceGroup([a, b]).open()
    a.push(road())
    threading.Timer(0.05, lambda: b.push(road())).start()
    t0 = time.monotonic()
    assert [i for i, _ in g.read(1.0, window_s=0.5)] == [0, 1] and 0.04 <= time.monotonic() - t0 < 0.5
    a.push(road())
    threading.Timer(0.05, lambda: b.push(road())).start()
    assert [i for i, _ in g.read(1.0)] == [0]  # no window: what is there
    time.sleep(0.1)
    b.end()
    g.read(0.0)
    a.push(road())
    t0 = time.monotonic()
    assert [i for i, _ in g.read(1.0, window_s=0.5)] == [0] and time.monotonic() - t0 < 0.2
    g.close()
    cfg = config(TWO, run={"batch_window_ms": 12})
    assert cfg.run.batch_window_ms == 12.0
