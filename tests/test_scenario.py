"""Labelled scenarios: the generator (seeded, CIFAR-10 test images only, effects) and the format's checks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import scenario as S
from edge_runtime.errors import EdgeRuntimeError

ROOT = Path(__file__).resolve().parents[1]
VEHICLE = ROOT / "deploy" / "configs" / "vehicle.yaml"


@pytest.fixture(scope="module")
def small(tmp_path_factory, fixture_data):
    out = tmp_path_factory.mktemp("sc") / "s7.mp4"
    return S.generate(out, seed=7, duration_s=4.0, fps=30, size=(64, 48), config=VEHICLE, data_dir=fixture_data,
                      first=0, last=119, hold_s=(0.2, 0.4), unknown_share=0.3)


def test_generated_scenario_tiles_the_clip_and_labels_by_the_rules(small, fixture_data):
    from edge_runtime.cifar import load_split

    split = load_split("cifar10", "test", fixture_data)
    actions = small.meta["actions"]
    assert actions["cat"] == "STOP" and actions["truck"] == "SLOW" and actions["ship"] == "GO"
    assert small.frames == 120 and small.segments[0].start == 0 and small.segments[-1].end == 120
    kinds = {s.kind for s in small.segments}
    assert kinds == {"object", "unknown"}
    raw = json.loads(small.path.read_text())["segments"]
    for seg, r in zip(small.segments, raw):
        if seg.kind == "object":
            assert 0 <= r["index"] <= 119
            assert seg.cls == split.class_names[int(split.labels[r["index"]])]
            assert seg.expected == actions[seg.cls]
        else:
            assert seg.expected == "SLOW" and r["pattern"] in S.UNKNOWN_PATTERNS  # vehicle.yaml's default
    frames = list(S.read_frames(small))
    assert len(frames) == small.frames and frames[0].shape == (48, 64, 3)
    assert list(S.truth(small)[:small.segments[0].end]) == [S.ACTIONS.index(small.segments[0].expected)] * \
        small.segments[0].end


def test_same_seed_same_scenario_other_seed_other(small, tmp_path, fixture_data):
    again = S.generate(tmp_path / "again.mp4", seed=7, duration_s=4.0, fps=30, size=(64, 48), config=VEHICLE,
                       data_dir=fixture_data, first=0, last=119, hold_s=(0.2, 0.4), unknown_share=0.3)
    assert again.segments == small.segments
    a = np.stack(list(S.read_frames(again))).astype(int)
    b = np.stack(list(S.read_frames(small))).astype(int)
    assert np.array_equal(a, b)
    other = S.generate(tmp_path / "other.mp4", seed=8, duration_s=4.0, fps=30, size=(64, 48), config=VEHICLE,
                       data_dir=fixture_data, first=0, last=119, hold_s=(0.2, 0.4), unknown_share=0.3)
    assert other.segments != small.segments


def test_only_test_images_0_to_999(tmp_path, fixture_data):
    with pytest.raises(EdgeRuntimeError, match="0-999"):
        S.generate(tmp_path / "x.mp4", seed=1, duration_s=1, data_dir=fixture_data, first=900, last=1200)
    with pytest.raises(EdgeRuntimeError, match="only 120 images"):
        S.generate(tmp_path / "x.mp4", seed=1, duration_s=1, data_dir=fixture_data, first=0, last=500)


def test_load_rejects_gaps_and_unknown_actions(tmp_path):
    base = {"fps": 30, "frames": 20, "segments": [{"start": 0, "end": 10, "expected": "GO"},
                                                  {"start": 12, "end": 20, "expected": "STOP"}]}
    p = tmp_path / "gap.json"
    p.write_text(json.dumps(base))
    with pytest.raises(EdgeRuntimeError, match="tile the clip"):
        S.load(p)
    base["segments"][1]["start"] = 10
    base["segments"][1]["expected"] = "BRAKE"
    p.write_text(json.dumps(base))
    with pytest.raises(EdgeRuntimeError, match="BRAKE"):
        S.load(p)
    with pytest.raises(EdgeRuntimeError, match="not found"):
        S.load(tmp_path / "missing.json")


def test_demo_clip_and_committed_scenarios_are_scenarios():
    demo = S.load(ROOT / "deploy" / "demo" / "cifar10-demo.json")
    assert demo.frames == 750 and len(demo.segments) == 50 and demo.media.is_file()
    committed = sorted((ROOT / "deploy" / "scenarios").glob("*.json"))
    assert committed
    for p in committed:
        sc = S.load(p)
        assert sc.media.is_file() and sc.media.stat().st_size <= 2 * 1024 * 1024
        assert all(0 <= s["index"] <= 999 for s in json.loads(p.read_text())["segments"] if "index" in s)


def test_scenario_cli(tmp_path, fixture_data, capsys):
    from tests.conftest import run_cli

    rc, out, err = run_cli(["scenario", tmp_path / "c.mp4", "--seed", "3", "--duration", "2", "--size", "64x48",
                            "--images", "0-119", "--data-dir", fixture_data], capsys)
    assert rc == 0 and "60 frames" in out and (tmp_path / "c.json").is_file()
    rc, out, err = run_cli(["scenario", tmp_path / "c.mp4", "--seed", "3", "--data-dir", fixture_data], capsys)
    assert rc == 2 and "--force" in err and len(err.strip().splitlines()) == 1
