"""Scoring decisions against a labelled scenario; events that name their frame."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime import scenario as S
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.score import actions_from_events, score
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _scenario(tmp_path: Path, segs, fps: float = 10.0) -> S.Scenario:
    """A scenario JSON only (no video): segments as (length, expected, kind)."""
    out, pos = [], 0
    for n, exp, kind in segs:
        out.append({"start": pos, "end": pos + n, "expected": exp, "kind": kind})
        pos += n
    p = tmp_path / "sc.json"
    p.write_text(json.dumps({"fps": fps, "frames": pos, "default_action": "SLOW", "segments": out}))
    return S.load(p)


def test_score_by_hand(tmp_path):
    # 10 FPS, grace 0.5 s = 5 frames. GO 20 | STOP 10 | GO 20 | STOP 10 (missed) | unknown (SLOW) 10
    sc = _scenario(tmp_path, [(20, "GO", "object"), (10, "STOP", "object"), (20, "GO", "object"),
                              (10, "STOP", "object"), (10, "SLOW", "unknown")])
    a = np.zeros(70, np.int8)
    a[10:12] = 2          # a false STOP in the first GO segment (2 frames after the grace)
    a[22:35] = 2          # STOP caught 2 frames late, held 5 frames into the next GO (3 of them inside its grace)
    a[50:60] = 1          # second STOP segment: SLOW only -> missed
    a[60:66] = 1          # unknown: SLOW (the default) for 6 of 10 frames, GO after
    r = score(sc, a, grace_s=0.5)
    assert r["stop_segments"] == 2 and r["missed_stop_segments"] == 1 and r["missed"] == [{"start": 50, "end": 60}]
    assert r["reactions"] == [2] and r["reaction_frames"]["p90"] == 2 and r["reaction_ms"]["p90"] == 200.0
    # GO frames after the grace: [5,20) and [35,50) = 30 frames; STOP among them: 10,11 -> 2
    assert r["share"]["GO"]["frames"] == 30 and r["false_stop_in_go"] == pytest.approx(2 / 30)
    # STOP frames after the grace: [25,30) and [55,60) = 10; GO among them: none; SLOW: 5 (the missed one)
    assert r["go_in_stop"] == 0.0 and r["share"]["STOP"]["SLOW"] == pytest.approx(0.5)
    # unknown after the grace: frames 65..69 -> SLOW at 65 only
    assert r["unknown_frames"] == 5 and r["unknown_default_share"] == pytest.approx(1 / 5)
    # changes: 10 (->STOP), 12 (->GO), 22 (->STOP), 35 (->GO), 50 (->SLOW), 66 (->GO): spurious = into a wrong action
    assert r["changes"] == 6
    assert r["spurious_changes"] == 3  # into STOP at 10 (GO), SLOW at 50 (STOP), GO at 66 (unknown); 12, 22, 35 right
    with pytest.raises(EdgeRuntimeError, match="69 decisions"):
        score(sc, a[:69])


def test_events_log_is_expanded_per_frame(tmp_path):
    sc = _scenario(tmp_path, [(30, "GO", "object"), (30, "STOP", "object")])
    log = tmp_path / "events.jsonl"
    lines = [{"event": "change", "action": "STOP", "frame": None, "reason": "startup"},
             {"event": "change", "action": "GO", "frame": 40, "confidence": 0.9},  # an earlier run in the same log
             {"event": "change", "action": "STOP", "frame": None, "reason": "startup"},
             {"event": "change", "action": "GO", "frame": 0, "confidence": 0.9},
             {"event": "heartbeat", "action": "GO", "frame": 20, "confidence": 0.8},
             {"event": "change", "action": "STOP", "media_ms": 3200.0, "frame": 99, "confidence": 0.7},  # media wins
             {"event": "change", "action": "STOP", "frame": None, "reason": "end_of_stream"}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    acts, conf = actions_from_events(sc, log)
    assert list(acts[:32]) == [0] * 32 and list(acts[32:]) == [2] * 28
    assert conf[0] == pytest.approx(0.9) and np.isnan(conf[1])
    r = score(sc, acts)
    assert r["reactions"] == [2] and r["missed_stop_segments"] == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(EdgeRuntimeError, match="not JSON"):
        actions_from_events(sc, bad)
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"action": "GO"}) + "\n")
    with pytest.raises(EdgeRuntimeError, match="name a frame"):
        actions_from_events(sc, old)


def test_decisions_name_their_frame():
    from edge_runtime.config import parse_config
    from edge_runtime.policy import Policy

    cfg = parse_config({"policy": {"rules": [{"action": "STOP", "classes": ["a"], "min_confidence": 0.5}]}})
    pol = Policy(cfg.policy, ["a", "b"])
    d = pol.decide(np.array([0.9, 0.1]), 10.0, latency_s=0.004, frame_index=41, media_time_s=1.3667)
    rec = d.to_dict()
    assert rec["frame"] == 41 and rec["media_ms"] == pytest.approx(1366.7) and rec["t_capture"] == pytest.approx(9.996)
    t = pol.tick(10.01).to_dict()  # no frame behind a tick's repeat of the current decision
    assert t["frame"] in (None, 41)
    assert pol.shutdown(11.0).to_dict()["frame"] is None


def test_file_source_frames_carry_media_time(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from edge_runtime.config import SourceConfig
    from edge_runtime.sources import create_source

    p = tmp_path / "v.mp4"
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 25, (32, 32))
    for i in range(10):
        vw.write(np.full((32, 32, 3), i * 20, np.uint8))
    vw.release()
    got = []
    with create_source(str(p), SourceConfig(uri=str(p))) as src:
        while len(got) < 10:
            f = src.read(1.0)
            if f is None:
                if src.finished:
                    break
                continue
            got.append((f.index, f.media_time_s))
    assert [g[0] for g in got] == list(range(10))
    assert [g[1] for g in got] == pytest.approx([i / 25 for i in range(10)])


def test_score_cli_offline_and_from_a_log(tmp_path, fixture_data, lenet_onnx, capsys):
    sc = S.generate(tmp_path / "sc.mp4", seed=5, duration_s=3.0, fps=30, size=(64, 48), data_dir=fixture_data,
                    first=0, last=119, hold_s=(0.3, 0.5))
    out = tmp_path / "out"
    rc, so, se = run_cli(["score", sc.path, "--model", lenet_onnx, "--out", out], capsys)
    assert rc == 0, se
    res = json.loads((out / "score.json").read_text())
    assert res["frames"] == 90 and "lenet5" in res["decisions"] and "STOP segments caught" in so
    assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    rc, so, se = run_cli(["score", sc.path, "--events", tmp_path / "nope.jsonl"], capsys)
    assert rc == 2 and "not found" in se and len(se.strip().splitlines()) == 1
    rc, so, se = run_cli(["score", tmp_path / "nope.json"], capsys)
    assert rc == 2 and "scenario not found" in se
