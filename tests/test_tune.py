"""The policy sweep: the fast replay is the Policy, decision for decision; a missing config is never chosen."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_runtime import scenario as S
from edge_runtime.config import parse_config
from edge_runtime.policy import Policy
from edge_runtime.tune import Params, Replay, choose, debounce, pareto
from tests.conftest import run_cli

NAMES = ["cat", "truck", "ship"]


def _cfg(k, n, m, hold, gate=None, th=(0.5, 0.5, 0.5)):
    return parse_config({"policy": {
        "default_action": "SLOW", "uncertain_below": gate,
        "rules": [{"name": "animals", "action": "STOP", "classes": ["cat"], "min_confidence": th[0]},
                  {"name": "vehicles", "action": "SLOW", "classes": ["truck"], "min_confidence": th[1]},
                  {"name": "clear", "action": "GO", "classes": ["ship"], "min_confidence": th[2]}],
        "debounce": {"trigger_k": k, "trigger_n": n, "release_m": m, "min_hold_ms": hold}}}).policy


def test_replay_equals_the_policy():
    rng = np.random.default_rng(0)
    for trial in range(120):
        k = int(rng.integers(1, 4))
        n = int(rng.integers(k, 5))
        m = int(rng.integers(1, 7))
        hold = float(rng.choice([0, 100, 250, 1000]))
        gate = float(rng.choice([0.0, 0.45]))
        th = tuple(float(x) for x in rng.choice([0.3, 0.5, 0.7], 3))
        cfg = _cfg(k, n, m, hold, gate or None, th)
        frames = 240
        probs = rng.dirichlet([0.4, 0.4, 0.4], frames)
        probs = np.repeat(probs[::6], 6, axis=0)[:frames]  # runs, as a video holds an object
        fps = 30.0
        pol = Policy(cfg, NAMES)
        ref = [int(pol.decide(p, i / fps).action) for i, p in enumerate(probs)]
        sc = S.Scenario(Path("x.json"), {"fps": fps, "frames": frames}, [S.Segment(0, frames, "GO")])
        rp = Replay(cfg, NAMES, [sc], [probs])
        got = rp.decisions(Params(th, k, n, m, hold, gate))[0].tolist()
        assert got == ref, (trial, k, n, m, hold, gate, th)
        asks = rp.asks(th, gate)[0].tolist()
        assert asks == [int(Policy(cfg, NAMES).evaluate(p).action) for p in probs]


def test_debounce_by_hand():
    # k=2 of n=3, release after m=2 clear frames and 0.2 s hold (10 FPS: 2 frames)
    a = [0, 2, 0, 2, 2, 0, 0, 0, 1, 1, 0]
    assert debounce(a, 10.0, 2, 3, 2, 200).tolist() == [0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1]


def _row(missed, p90, fs, gis=0.0):
    return {"missed_stop_segments": missed, "reaction_p90": p90, "false_stop_in_go": fs, "go_in_stop": gis,
            "slow_in_go": 0.0, "changes_per_min": 1.0}


def test_a_config_that_misses_a_stop_is_never_chosen():
    rows = [_row(1, 1, 0.0), _row(0, 2, 0.10), _row(0, 5, 0.01), _row(0, 3, 0.04), _row(0, 3, 0.06)]
    assert choose(rows, 3.0) is rows[3]
    calm = dict(_row(0, 3, 0.045), spurious_per_min=1.0)
    rows[3]["spurious_per_min"] = 9.0
    assert choose(rows + [calm], 3.0) is calm  # within the false-STOP goal, less chatter wins
    assert choose(rows + [calm], 3.0, max_false_stop=0.0) is rows[3]  # no goal: the lowest false STOP
    risky = _row(0, 2, 0.001, gis=0.02)  # the least false STOP, but GO during a STOP: the worst mistake
    assert choose(rows + [risky], 3.0) is rows[3]
    assert choose([risky], 3.0) is risky  # the safest there is
    assert choose(rows, 1.0) is rows[1]  # none is that fast: the fastest that misses nothing
    front = pareto(rows)
    assert rows[0] not in front and rows[4] not in front and [r["false_stop_in_go"] for r in front] == [0.01, 0.04, 0.10]
    assert choose([_row(1, 1, 0.0)]) is None


def test_tune_cli_writes_a_config_that_parses(tmp_path, fixture_data, lenet_onnx, capsys):
    sc = S.generate(tmp_path / "sc.mp4", seed=4, duration_s=4.0, fps=30, size=(64, 48), data_dir=fixture_data,
                    first=0, last=119, hold_s=(0.3, 0.6))
    out = tmp_path / "tune"
    rc, so, se = run_cli(["tune", sc.path, "--model", lenet_onnx, "--thresholds", "animals=0,0.6",
                          "--thresholds", "vehicles=0.5", "--thresholds", "clear=0.7,0.9", "--kn", "1/1,2/3",
                          "--release-m", "2", "--min-hold-ms", "0,500", "--out", out], capsys)
    assert rc == 0, se
    res = json.loads((out / "tune.json").read_text())
    assert res["configs"] >= 8 and res["chosen"]["missed_stop_segments"] == 0
    text = (out / "tuned.yaml").read_text()
    assert text.startswith("# Tuned by: edge-runtime tune") and "missed STOP segments 0 of" in text
    cfg = parse_config(yaml.safe_load(text))
    assert "animals>=%.2f" % cfg.policy.rules[0].min_confidence in res["chosen"]["policy"]
    assert "k%d/n%d" % (cfg.policy.debounce.trigger_k, cfg.policy.debounce.trigger_n) in res["chosen"]["policy"]
    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "deploy/configs/vehicle.yaml").read_text())
    # the base config (vehicle.yaml) is always measured
    assert res["base"]["policy"].startswith("animals>=%.2f" % base["policy"]["rules"][0]["min_confidence"])
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    rc, so, se = run_cli(["tune", sc.path, "--model", lenet_onnx, "--thresholds", "dogs=0.5"], capsys)
    assert rc == 2 and "dogs" in se and len(se.strip().splitlines()) == 1
    # nothing can catch a STOP when the animals rule can never fire: no recommendation, exit 1, no YAML
    vehicle = Path(__file__).resolve().parents[1] / "deploy" / "configs" / "vehicle.yaml"
    never = tmp_path / "never.yaml"
    data = yaml.safe_load(vehicle.read_text())
    data["policy"]["rules"][0]["min_confidence"] = 1.0
    never.write_text(yaml.safe_dump(data))
    rc, so, se = run_cli(["tune", sc.path, "--model", lenet_onnx, "--config", never, "--thresholds", "animals=1.0",
                          "--kn", "2/3",
                          "--release-m", "2", "--min-hold-ms", "0", "--thresholds", "clear=0.7",
                          "--thresholds", "vehicles=0.5", "--out", tmp_path / "t2"], capsys)
    assert rc == 1 and "nothing recommended" in so and not (tmp_path / "t2" / "tuned.yaml").exists()
