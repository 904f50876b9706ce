"""The policy on scripted probability sequences and timestamps: no camera, no model, no clock."""
from __future__ import annotations

import json
import time
from typing import Any, Dict

import numpy as np
import pytest

from edge_runtime.config import parse_config
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.policy import Action, Policy, Reason, softmax

C10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
ANIMALS = ["bird", "cat", "deer", "dog", "frog", "horse"]
DT = 1 / 30


def probs(**mass: float) -> np.ndarray:
    """Named classes get their mass; the rest share what is left equally."""
    p = np.zeros(len(C10))
    for name, v in mass.items():
        p[C10.index(name)] = v
    rest = [i for i, c in enumerate(C10) if c not in mass]
    p[rest] = (1.0 - sum(mass.values())) / len(rest)
    return p.astype(np.float32)


STOP_P = probs(dog=0.9)
SLOW_P = probs(truck=0.9)
GO_P = probs(ship=0.9)
UNSURE_P = probs(automobile=0.3, airplane=0.35)  # no rule fires (uniform would: 6 animals x 0.1 = 0.6)


def make_policy(default: str = "GO", k: int = 1, n: int = 1, m: int = 1, hold_ms: float = 0.0, latch_stop: bool = False,
                latch_faults: bool = False, deadline_action: str = "STOP", stop_min: float = 0.4,
                **timeouts: float) -> Policy:
    t: Dict[str, Any] = {"source_timeout_ms": 500, "max_frame_age_ms": 200, "deadline_ms": 250,
                         "deadline_action": deadline_action}
    t.update(timeouts)
    data = {"policy": {
        "default_action": default,
        "rules": [
            {"name": "animals", "action": "STOP", "classes": ANIMALS, "min_confidence": stop_min},
            {"name": "vehicles", "action": "SLOW", "classes": ["automobile", "truck"], "min_confidence": 0.5},
            {"name": "clear", "action": "GO", "classes": ["airplane", "ship"], "min_confidence": 0.6},
        ],
        "debounce": {"trigger_k": k, "trigger_n": n, "release_m": m, "min_hold_ms": hold_ms},
        "latch": {"stop": latch_stop, "faults": latch_faults},
        "timeouts": t,
    }}
    return Policy(parse_config(data).policy, C10)


def run(policy: Policy, seq: Any, t0: float = 0.0, dt: float = DT) -> list:
    """Decide a sequence of probability vectors at ``dt`` spacing; returns the decisions."""
    return [policy.decide(p, t0 + i * dt, frame_age_s=0.001, latency_s=0.002) for i, p in enumerate(seq)]


def actions(ds: list) -> list:
    return [d.action.name for d in ds]


# ------------------------------------------------------------------------------------------------ rules
def test_action_order_is_stop_slow_go():
    assert Action.STOP > Action.SLOW > Action.GO
    assert max(Action.GO, Action.STOP, Action.SLOW) is Action.STOP
    assert str(Action.SLOW) == "SLOW"


def test_stop_beats_slow_beats_go():
    pol = make_policy()
    ev = pol.evaluate(probs(dog=0.45, truck=0.55))  # both rules fire
    assert (ev.action, ev.rule) == (Action.STOP, "animals")
    ev = pol.evaluate(probs(truck=0.35, automobile=0.2, ship=0.44))  # vehicles 0.55 and clear (0.44+rest) fire
    assert (ev.action, ev.rule) == (Action.SLOW, "vehicles")
    ev = pol.evaluate(probs(ship=0.7))
    assert (ev.action, ev.rule) == (Action.GO, "clear")


def test_thresholds_are_inclusive_minimums():
    pol = make_policy(default="SLOW", stop_min=0.5)
    # animals share 0 of the rest when all six are named; mass exactly 0.5 fires, just under does not
    at = probs(dog=0.5, ship=0.5)
    under = probs(dog=0.49, ship=0.51)
    assert pol.evaluate(at).action is Action.STOP
    assert pol.evaluate(under).action is Action.SLOW  # the default: "clear" needs 0.6


def test_mass_not_argmax_decides():
    pol = make_policy()
    p = probs(truck=0.35, cat=0.2, dog=0.15, deer=0.1, airplane=0.2)  # animals 0.45 + shares; argmax is truck
    ev = pol.evaluate(p)
    assert ev.action is Action.STOP and ev.rule == "animals"
    assert ev.class_name == "truck" and ev.confidence == pytest.approx(0.35)
    assert ev.score == pytest.approx(float(p[[C10.index(c) for c in ANIMALS]].sum()), abs=1e-6)


def test_default_action_when_no_rule_fires():
    assert make_policy(default="SLOW").evaluate(UNSURE_P).action is Action.SLOW
    ev = make_policy(default="GO").evaluate(UNSURE_P)
    assert (ev.action, ev.rule, ev.score) == (Action.GO, None, None)


def test_superclass_rules_sum_their_fine_classes():
    fine = ["f%02d" % i for i in range(100)]
    coarse = ["s%02d" % i for i in range(20)]
    coarse[14] = "people"
    f2c = [i % 20 for i in range(100)]
    data = {"policy": {"rules": [{"action": "STOP", "superclasses": ["people"], "min_confidence": 0.3}]}}
    pol = Policy(parse_config(data).policy, fine, coarse, f2c)
    p = np.full(100, 0.7 / 95)
    for i in (14, 34, 54, 74, 94):  # the five "people" classes, 0.06 each: no single one is near 0.3
        p[i] = 0.06
    d = pol.decide(p, 0.0)
    assert d.action is Action.STOP and d.rule == "rules[0]" and d.score == pytest.approx(0.3)
    with pytest.raises(EdgeRuntimeError, match="fine_to_coarse"):
        Policy(parse_config(data).policy, fine, coarse, None)


def test_from_manifest_reads_names():
    from edge_runtime import manifest as mf

    man = mf.new("onnx", model={"name": "x"}, dataset=mf.make_dataset("cifar10", C10),
                 preprocess=mf.make_preprocess((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    data = {"policy": {"rules": [{"action": "STOP", "classes": ["dog"]}]}}
    pol = Policy.from_manifest(parse_config(data).policy, man)
    assert pol.decide(probs(dog=0.8), 0.0).action is Action.STOP


# --------------------------------------------------------------------------------------------- debounce
def test_k_of_n_trigger():
    pol = make_policy(k=2, n=3, m=1)
    ds = run(pol, [GO_P, STOP_P, GO_P, GO_P, STOP_P, GO_P, STOP_P])
    # one STOP frame is pending; STOP..GO..STOP within 3 frames triggers
    assert actions(ds) == ["GO", "GO", "GO", "GO", "GO", "GO", "STOP"]
    assert ds[1].reason is Reason.PENDING and "1 of the last" in ds[1].detail
    assert ds[6].reason is Reason.RULE and ds[6].rule == "animals"


def test_mixed_evidence_escalates_to_slow():
    pol = make_policy(k=2, n=3, m=5)
    ds = run(pol, [GO_P, STOP_P, SLOW_P])  # one STOP + one SLOW = 2 frames asking for SLOW or stricter
    assert actions(ds) == ["GO", "GO", "SLOW"]


def test_release_after_m_clear_frames():
    pol = make_policy(k=1, n=1, m=3)
    ds = run(pol, [STOP_P, GO_P, GO_P, STOP_P, GO_P, GO_P, GO_P, GO_P])
    assert actions(ds) == ["STOP", "STOP", "STOP", "STOP", "STOP", "STOP", "GO", "GO"]
    assert ds[5].reason is Reason.HOLD and "2/3 clear frames" in ds[5].detail
    assert ds[6].reason is Reason.RULE and ds[6].changed


def test_release_steps_down_to_the_strictest_clear_frame():
    pol = make_policy(k=1, n=1, m=3)
    ds = run(pol, [STOP_P, SLOW_P, GO_P, GO_P, GO_P, GO_P, GO_P])
    assert actions(ds) == ["STOP", "STOP", "STOP", "SLOW", "SLOW", "SLOW", "GO"]


def test_released_frames_cannot_retrigger():
    pol = make_policy(k=2, n=5, m=2)
    ds = run(pol, [STOP_P, STOP_P, GO_P, GO_P, GO_P])  # after release, the old STOPs are forgotten
    assert actions(ds) == ["STOP", "STOP", "STOP", "GO", "GO"]


def test_min_hold_time():
    pol = make_policy(k=1, n=1, m=1, hold_ms=1000)
    assert pol.decide(STOP_P, 10.0).action is Action.STOP
    assert pol.decide(GO_P, 10.5).action is Action.STOP  # 1 clear frame is enough, but held 0.5 s < 1 s
    d = pol.decide(GO_P, 10.9)
    assert d.action is Action.STOP and d.reason is Reason.HOLD
    assert pol.decide(GO_P, 11.0).action is Action.GO


def test_latched_stop_needs_reset():
    pol = make_policy(k=1, n=1, m=1, latch_stop=True)
    ds = run(pol, [GO_P, STOP_P] + [GO_P] * 10)
    assert actions(ds) == ["GO"] + ["STOP"] * 11
    assert ds[-1].reason is Reason.LATCHED and ds[-1].latched
    assert pol.latched
    pol.reset()  # takes effect at the next frame
    d = pol.decide(GO_P, 1.0)
    assert d.action is Action.GO and not d.latched and d.changed
    # a reset while the cause is still in view latches again
    assert pol.decide(STOP_P, 1.1).latched
    pol.reset()
    d = pol.decide(STOP_P, 1.2)
    assert d.action is Action.STOP and d.latched


def test_reset_needs_fresh_evidence_to_relatch():
    pol = make_policy(k=2, n=3, m=2, latch_stop=True)
    assert actions(run(pol, [STOP_P, STOP_P, GO_P, GO_P])) == ["STOP"] * 4
    assert pol.latched
    pol.reset()  # the old STOP frames are forgotten: one new STOP frame is not k=2
    ds = run(pol, [STOP_P, GO_P, GO_P], t0=1.0)
    assert [d.latched for d in ds] == [False, False, False]
    # the scene had cleared before the reset (2 GO frames released the level underneath the latch)
    assert actions(ds) == ["GO", "GO", "GO"] and ds[0].reason is Reason.PENDING


def test_faults_latch_only_when_asked():
    pol = make_policy(latch_stop=True)
    pol.decide(GO_P, 0.0)
    pol.decide(None, 0.1, error="boom")
    assert pol.decide(GO_P, 0.2).action is Action.GO  # m=1: released by one clear frame
    pol = make_policy(latch_faults=True)
    pol.decide(GO_P, 0.0)
    pol.decide(None, 0.1, error="boom")
    d = pol.decide(GO_P, 0.2)
    assert d.action is Action.STOP and d.latched


# --------------------------------------------------------------------------------------------- fail-safes
def test_startup_until_first_valid_decision():
    pol = make_policy(k=3, n=3, m=5)
    d = pol.tick(0.0)
    assert (d.action, d.reason, d.changed) == (Action.STOP, Reason.STARTUP, True)
    assert pol.tick(0.1).reason is Reason.STARTUP
    d = pol.decide(GO_P, 0.2)  # startup ends on the first valid frame, no debounce from STARTUP
    assert (d.action, d.reason, d.changed) == (Action.GO, Reason.RULE, True)


def test_fault_during_startup_keeps_startup_semantics():
    pol = make_policy(m=5)
    assert pol.decide(GO_P, 0.0, frame_age_s=0.5).reason is Reason.STALE_FRAME
    assert pol.decide(GO_P, 0.1, frame_age_s=0.01).action is Action.GO


def test_source_timeout_from_tick():
    pol = make_policy(m=3, source_timeout_ms=500)
    assert pol.decide(GO_P, 1.0).action is Action.GO
    d = pol.tick(1.3)
    assert (d.action, d.changed) == (Action.GO, False)
    d = pol.tick(1.51)
    assert (d.action, d.reason, d.changed) == (Action.STOP, Reason.SOURCE_TIMEOUT, True)
    assert "no fresh frame for 510 ms" in d.detail
    # frames return: the fault STOP releases like any STOP (m=3 clear frames)
    ds = run(pol, [GO_P] * 4, t0=1.6)
    assert actions(ds) == ["STOP", "STOP", "GO", "GO"]
    assert ds[0].reason is Reason.HOLD


def test_source_timeout_before_any_frame():
    pol = make_policy(source_timeout_ms=500)
    assert pol.tick(5.0).reason is Reason.STARTUP
    assert pol.tick(5.6).reason is Reason.SOURCE_TIMEOUT


def test_stale_frame():
    pol = make_policy(max_frame_age_ms=200)
    pol.decide(GO_P, 0.0, frame_age_s=0.01)
    d = pol.decide(GO_P, 0.1, frame_age_s=0.25)
    assert (d.action, d.reason) == (Action.STOP, Reason.STALE_FRAME)
    assert "250 ms old" in d.detail and d.class_name == "ship"


def test_stale_frames_do_not_count_as_fresh():
    pol = make_policy(source_timeout_ms=500, max_frame_age_ms=200)
    pol.decide(GO_P, 0.0)
    pol.decide(GO_P, 0.3, frame_age_s=0.3)
    assert pol.tick(0.55).reason is Reason.SOURCE_TIMEOUT


def test_inference_error():
    pol = make_policy()
    pol.decide(GO_P, 0.0)
    d = pol.decide(None, 0.1, error="RuntimeError: CUDA lost")
    assert (d.action, d.reason, d.detail) == (Action.STOP, Reason.INFERENCE_ERROR, "RuntimeError: CUDA lost")
    assert d.failsafe


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_outputs(bad):
    pol = make_policy()
    p = GO_P.copy()
    p[3] = bad
    d = pol.decide(p, 0.0)
    assert (d.action, d.reason) == (Action.STOP, Reason.NON_FINITE)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # the 1e308 case: numpy says the sum overflowed
def test_bad_outputs():
    pol = make_policy()
    d = pol.decide(np.zeros(7, np.float32), 0.0)
    assert d.reason is Reason.BAD_OUTPUT and "expected 10 probabilities" in d.detail
    logits = np.linspace(-3, 5, 10).astype(np.float32)
    d = pol.decide(logits, 0.1)
    assert d.reason is Reason.BAD_OUTPUT and "softmax" in d.detail
    d = pol.decide(softmax(logits)[None, :], 0.2)  # (1, C) batch-of-one is accepted
    assert d.action is not Action.STOP or d.reason is Reason.RULE
    assert pol.decide(None, 0.3).reason is Reason.BAD_OUTPUT
    huge = np.full(10, 1e308)  # every value finite, their sum overflows: not probabilities, not "non-finite"
    d = pol.decide(huge, 0.4)
    assert d.reason is Reason.BAD_OUTPUT and d.action is Action.STOP and "softmax" in d.detail


@pytest.mark.parametrize("deadline_action", ["STOP", "SLOW"])
def test_deadline_miss_takes_configured_action(deadline_action):
    pol = make_policy(m=2, deadline_ms=100, deadline_action=deadline_action)
    pol.decide(GO_P, 0.0, latency_s=0.01)
    d = pol.decide(GO_P, 0.1, latency_s=0.12)
    assert (d.action.name, d.reason) == (deadline_action, Reason.DEADLINE_MISS)
    assert "120.0 ms after capture" in d.detail
    # on time again: released after m=2 clear frames
    assert [pol.decide(GO_P, 0.2 + i * 0.03, latency_s=0.01).action.name for i in range(3)] == \
        [deadline_action, "GO", "GO"]


def test_deadline_slow_does_not_weaken_a_stop():
    pol = make_policy(deadline_ms=100, deadline_action="SLOW")
    d = pol.decide(STOP_P, 0.0, latency_s=0.2)
    assert (d.action, d.reason) == (Action.STOP, Reason.RULE)


def test_shutdown_is_final():
    pol = make_policy()
    pol.decide(GO_P, 0.0)
    d = pol.shutdown(1.0)
    assert (d.action, d.reason, d.changed) == (Action.STOP, Reason.SHUTDOWN, True)
    later = pol.decide(GO_P, 1.1)
    assert (later.action, later.reason, later.changed) == (Action.STOP, Reason.SHUTDOWN, False)
    assert pol.tick(1.2).reason is Reason.SHUTDOWN
    assert pol.shutdown(1.3).reason is Reason.SHUTDOWN
    end = make_policy().shutdown(0.0, Reason.END_OF_STREAM, "clip.mp4 ended")
    assert (end.reason, end.detail) == (Reason.END_OF_STREAM, "clip.mp4 ended")
    with pytest.raises(ValueError):
        make_policy().shutdown(0.0, Reason.RULE)


def test_every_failsafe_reason_is_a_stop():
    pol = make_policy()
    seen = {pol.tick(0.0).reason}
    seen.add(pol.decide(GO_P, 0.01, frame_age_s=1.0).reason)
    seen.add(pol.decide(None, 0.02, error="x").reason)
    seen.add(pol.decide(np.full(10, np.nan), 0.03).reason)
    seen.add(pol.decide(np.ones(10), 0.04).reason)
    seen.add(pol.decide(GO_P, 0.05, latency_s=1.0).reason)
    seen.add(pol.tick(10.0).reason)
    seen.add(pol.shutdown(11.0).reason)
    assert seen == {Reason.STARTUP, Reason.STALE_FRAME, Reason.INFERENCE_ERROR, Reason.NON_FINITE, Reason.BAD_OUTPUT,
                    Reason.DEADLINE_MISS, Reason.SOURCE_TIMEOUT, Reason.SHUTDOWN}
    assert pol.stats()["decisions"] == 8


# ---------------------------------------------------------------------------------------------- outputs
def test_changed_ignores_hold_but_not_faults():
    pol = make_policy(m=3)
    d1 = pol.decide(STOP_P, 0.0)
    d2 = pol.decide(GO_P, 0.1)  # STOP rule -> STOP hold: same action, no change
    d3 = pol.decide(GO_P, 0.2, frame_age_s=1.0)  # STOP hold -> STOP stale_frame: a fault, a change
    assert (d1.changed, d2.changed, d3.changed) == (True, False, True)
    assert [d.seq for d in (d1, d2, d3)] == [1, 2, 3]


def test_decision_serializes():
    pol = make_policy()
    d = pol.decide(STOP_P, 12.5, frame_age_s=0.004, latency_s=0.0021)
    rec = d.to_dict()
    assert json.loads(json.dumps(rec)) == rec
    assert rec["action"] == "STOP" and rec["reason"] == "rule" and rec["rule"] == "animals"
    assert rec["class"] == "dog" and rec["latency_ms"] == pytest.approx(2.1)
    assert d.summary().startswith("STOP rule animals 0.96 | dog 0.90 | 2.1 ms")
    assert rec["seq"] == 1 and rec["t"] == 12.5 and rec["frame_age_ms"] == pytest.approx(4.0)
    assert rec["t_capture"] == pytest.approx(12.5 - 0.0021)


def test_decide_is_fast():
    pol = make_policy(k=2, n=3, m=5, hold_ms=500)
    seq = [STOP_P, GO_P, SLOW_P, UNSURE_P] * 250
    t0 = time.perf_counter()
    run(pol, seq)
    per = (time.perf_counter() - t0) / len(seq)
    assert per < 500e-6, "decide took %.0f us per frame" % (per * 1e6)


def test_poll_interval_follows_source_timeout():
    assert make_policy(source_timeout_ms=100).poll_interval_s == pytest.approx(0.025)
    assert make_policy(source_timeout_ms=1000).poll_interval_s == pytest.approx(0.05)



# ------------------------------------------------------------------------------------ the policy's config
def _policy_error(rules: Any, **debounce: int) -> str:
    data: Dict[str, Any] = {"policy": {"rules": rules}}
    if debounce:
        data["policy"]["debounce"] = debounce
    with pytest.raises(EdgeRuntimeError) as info:
        parse_config(data, origin="p.yaml")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("p.yaml: policy.")
    return msg


@pytest.mark.parametrize("rules, debounce, expected", [
    ([], {}, "policy.rules: no rules"),
    ([{"action": "STOP"}], {}, "policy.rules[0]: a rule needs classes or superclasses"),
    ([{"action": "STOP", "classes": []}], {}, "policy.rules[0]: a rule needs classes or superclasses"),
    ([{"name": "a", "action": "STOP", "classes": ["cat"]}, {"name": "a", "action": "SLOW", "classes": ["dog"]}], {},
     "policy.rules[1].name: 'a' is also the name of rules[0]"),
    ([{"action": "STOP", "classes": ["cat"]}, {"name": "rules[0]", "action": "SLOW", "classes": ["dog"]}], {},
     "policy.rules[1].name: 'rules[0]' is also the name of rules[0]"),
    ([{"action": "STOP", "classes": ["cat"], "min_confidence": 1.5}], {}, "min_confidence: expected a number in [0, 1]"),
    ([{"action": "STOP", "classes": ["cat"], "min_confidence": -0.1}], {}, "min_confidence: expected a number in [0, 1]"),
    ([{"action": "STOP", "classes": ["cat"]}], {"trigger_k": 4, "trigger_n": 3}, "trigger_k: 4 is more than trigger_n (3)"),
])
def test_policy_config_mistakes_are_one_line(rules, debounce, expected):
    assert expected in _policy_error(rules, **debounce)


def test_policy_config_lives_beside_the_policy():
    from edge_runtime import config, policy_config

    for name in ("Rule", "DebounceConfig", "LatchConfig", "TimeoutsConfig", "PolicyConfig"):
        assert getattr(config, name) is getattr(policy_config, name)  # re-exported, one class
    cfg = policy_config.PolicyConfig(rules=(policy_config.Rule(Action.STOP, classes=("cat",)),))
    assert Policy(cfg, C10).decide(probs(cat=0.9), 0.0).action is Action.STOP
    with pytest.raises(EdgeRuntimeError, match="rules: no rules"):
        policy_config.PolicyConfig(rules=())
