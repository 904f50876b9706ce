"""Calibrated confidence: temperature fit, ECE, the manifest's temperature applied, the uncertainty gate."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime import calibration as C
from edge_runtime.errors import EdgeRuntimeError
from tests.conftest import run_cli


def _sample(t0: float, n: int = 20000, k: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3.0, (n, k))
    p = C.probabilities(logits, t0)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)  # labels drawn from softmax(logits / t0)
    return logits, labels


@pytest.mark.parametrize("t0", [0.6, 1.0, 2.5])
def test_fit_recovers_the_temperature_and_fixes_ece(t0):
    logits, labels = _sample(t0)
    t = C.fit_temperature(logits, labels)
    assert t == pytest.approx(t0, rel=0.05)
    assert C.ece(C.probabilities(logits, t), labels) < 0.015
    if t0 != 1.0:
        assert C.ece(C.probabilities(logits, 1.0), labels) > 2 * C.ece(C.probabilities(logits, t), labels)


def test_ece_by_hand():
    # two bins used (15 bins): conf 0.9 (bin 13) right 1 of 2, conf 0.55 (bin 8) right 2 of 2
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.55, 0.45], [0.45, 0.55]])
    y = np.array([0, 1, 0, 1])
    rel = C.reliability(p, y)
    assert rel["count"][13] == 2 and rel["count"][8] == 2
    assert rel["ece"] == pytest.approx((2 * abs(0.5 - 0.9) + 2 * abs(1.0 - 0.55)) / 4)


def test_manifest_temperature_is_applied_and_checked():
    z = np.array([2.0, 1.0, 0.0])
    plain = C.probabilities(z)
    hot = C.probabilities(z, {"calibration": {"temperature": 2.0}})
    assert np.allclose(hot, C.probabilities(z / 2.0)) and hot.max() < plain.max()
    assert np.allclose(C.probabilities(z, {"model": {}}), plain)
    with pytest.raises(EdgeRuntimeError, match="temperature"):
        C.probabilities(z, {"calibration": {"temperature": -1}})
    with pytest.raises(EdgeRuntimeError, match="N >= 2"):
        C.fit_temperature(np.zeros((1, 3)), np.zeros(1, int))


def test_uncertainty_gate_sends_unsure_frames_to_the_default():
    from edge_runtime.config import parse_config
    from edge_runtime.policy import Action, Policy

    rules = [{"action": "STOP", "classes": ["a", "b"], "min_confidence": 0.5}]
    spread = np.array([0.35, 0.35, 0.3])  # the rule's mass is 0.7, but no class is likely
    off = Policy(parse_config({"policy": {"rules": rules, "default_action": "SLOW"}}).policy, ["a", "b", "c"])
    on = Policy(parse_config({"policy": {"rules": rules, "default_action": "SLOW", "uncertain_below": 0.4}}).policy,
                ["a", "b", "c"])
    assert off.evaluate(spread).action is Action.STOP
    ev = on.evaluate(spread)
    assert ev.action is Action.SLOW and ev.rule is None and ev.confidence == pytest.approx(0.35)
    assert on.evaluate(np.array([0.8, 0.1, 0.1])).action is Action.STOP


def test_calibrate_cli_updates_the_manifest_and_eval_reports_ece(tmp_path, lenet_onnx, fixture_data, capsys):
    import shutil

    from edge_runtime import manifest as mf
    from edge_runtime import onnxutil

    model = tmp_path / "m.onnx"
    shutil.copy(lenet_onnx, model)
    shutil.copy(mf.sidecar_path(lenet_onnx), mf.sidecar_path(model))
    rc, out, err = run_cli(["calibrate", model, "--data-dir", fixture_data, "--slice", "100:300", "--out",
                            tmp_path / "cal"], capsys)
    assert rc == 0, err
    side = mf.for_artifact(model)  # the sidecar's sha256 still matches the rewritten file
    cal = side["calibration"]
    assert cal["fitted_on"] == "cifar10 train[100:300]" and cal["n"] == 200 and C.T_MIN <= cal["temperature"] <= C.T_MAX
    assert cal["nll_after"] <= cal["nll_before"] + 1e-9
    emb = onnxutil.embedded_manifest(onnxutil.load(model))
    assert emb["calibration"]["temperature"] == cal["temperature"]
    assert (tmp_path / "cal" / "m.onnx.reliability.png").read_bytes()[:4] == b"\x89PNG"
    rc, out, err = run_cli(["eval", model, "--data-dir", fixture_data, "--latency-iters", "0", "--out", tmp_path / "ev"],
                           capsys)
    assert rc == 0, err and "ECE" in out
    res = json.loads((tmp_path / "ev" / "m.onnx.eval.json").read_text())
    assert res["calibration"]["temperature"] == pytest.approx(cal["temperature"])
    assert (tmp_path / "ev" / "m.onnx.reliability.png").is_file()
    rc, out, err = run_cli(["calibrate", model, "--data-dir", fixture_data, "--slice", "0:50", "--dry-run"], capsys)
    assert rc == 2 and "at least 100" in err
    rc, out, err = run_cli(["calibrate", tmp_path / "nope.onnx", "--data-dir", fixture_data], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_runtime_applies_the_manifest_temperature():
    from edge_runtime.runtime import Runtime
    from edge_runtime.sources import SyntheticSource
    from tests.helpers import CAT, MANIFEST, FakeRunner, runtime_config

    z = np.zeros(10, np.float32)
    z[CAT] = 1.5  # softmax: cat 0.31 (no STOP at 0.5); at T = 0.25 (logits x4): cat 0.96 (STOP)
    got = {}
    for t in (None, 0.25):
        man = dict(MANIFEST)
        if t is not None:
            man["calibration"] = {"temperature": t, "fitted_on": "test"}
        rt = Runtime.from_config(runtime_config(), model=FakeRunner(lambda i: z), manifest=man,
                                 source=SyntheticSource(rate=100.0, frames=3))
        with rt:
            got[t] = [d for d in rt.decisions() if d.frame_index is not None]
    assert got[None] and got[None][0].confidence == pytest.approx(float(C.probabilities(z)[CAT]), abs=1e-4)
    assert got[0.25][0].confidence == pytest.approx(float(C.probabilities(z, 0.25)[CAT]), abs=1e-4)
    assert got[None][0].action.name == "GO" and got[0.25][0].action.name == "STOP"
