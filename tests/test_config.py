"""The runtime YAML: every mistake is one line naming its key path; the shipped configs load and validate."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from edge_runtime.config import (Action, JsonlSinkOptions, RuntimeConfig, apply_overrides, config_to_dict,
                                 load_config, parse_config, save_config)
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.policy import Policy, Reason

ROOT = Path(__file__).resolve().parents[1]
C10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
C100_SUPER = ["aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
              "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
              "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
              "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
              "vehicles_1", "vehicles_2"]
C100_FINE = ["fine_%02d" % i for i in range(100)]
F2C = [i % 20 for i in range(100)]

BASE: Dict[str, Any] = {
    "policy": {
        "rules": [
            {"action": "STOP", "classes": ["dog", "cat"], "min_confidence": 0.4},
            {"action": "SLOW", "classes": ["truck"]},
            {"action": "GO", "classes": ["ship"], "min_confidence": 0.7},
        ],
    },
}


def with_(path: str, value: Any) -> Dict[str, Any]:
    """BASE with one dotted key set (list indices as [i])."""
    data = copy.deepcopy(BASE)
    node: Any = data
    keys = path.replace("[", ".").replace("]", "").split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
    last = keys[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


def error_of(data: Any) -> str:
    with pytest.raises(EdgeRuntimeError) as info:
        parse_config(data, origin="my.yaml")
    msg = str(info.value)
    assert "\n" not in msg and info.value.exit_code == 2
    return msg


# ------------------------------------------------------------------------------------------- shipped
def test_vehicle_yaml_loads_and_validates_against_cifar10():
    cfg = load_config(ROOT / "deploy/configs/vehicle.yaml")
    cfg.validate_against(C10)
    stop = [r for r in cfg.policy.rules if r.action is Action.STOP]
    assert set(stop[0].classes) == {"bird", "cat", "deer", "dog", "frog", "horse"}
    assert {c for r in cfg.policy.rules if r.action is Action.SLOW for c in r.classes} == {"automobile", "truck"}
    assert {c for r in cfg.policy.rules if r.action is Action.GO for c in r.classes} == {"airplane", "ship"}
    assert cfg.source.uri == "csi://0" and cfg.policy.timeouts.deadline_action is Action.STOP
    pol = Policy(cfg.policy, C10)
    p = np.full(10, 0.02)
    p[C10.index("deer")] = 0.82
    assert pol.decide(p, 0.0).action is Action.STOP


def test_delivery_robot_yaml_validates_against_cifar100_superclasses():
    cfg = load_config(ROOT / "deploy/configs/delivery-robot.yaml")
    cfg.validate_against(C100_FINE, C100_SUPER)
    stop = {s for r in cfg.policy.rules if r.action is Action.STOP for s in r.superclasses}
    assert stop == {"people", "aquatic_mammals", "fish", "insects", "large_carnivores", "large_omnivores_and_herbivores",
                    "medium_mammals", "non-insect_invertebrates", "reptiles", "small_mammals"}
    assert {s for r in cfg.policy.rules if r.action is Action.SLOW for s in r.superclasses} == {"vehicles_1",
                                                                                                 "vehicles_2"}
    pol = Policy(cfg.policy, C100_FINE, C100_SUPER, F2C)
    p = np.full(100, 0.5 / 95)
    for i in range(14, 100, 20):  # the five "people" classes
        p[i] = 0.1
    d = pol.decide(p, 0.0)
    assert (d.action, d.rule) == (Action.STOP, "people")


def test_delivery_robot_yaml_on_a_cifar10_model_says_why():
    cfg = load_config(ROOT / "deploy/configs/delivery-robot.yaml")
    with pytest.raises(EdgeRuntimeError, match=r"policy.rules\[0\].superclasses: the model has no superclasses"):
        cfg.validate_against(C10)


def test_shipped_configs_round_trip(tmp_path):
    for name in ("vehicle.yaml", "delivery-robot.yaml"):
        cfg = load_config(ROOT / "deploy/configs" / name)
        assert parse_config(config_to_dict(cfg)) == cfg
        save_config(cfg, tmp_path / name)
        assert load_config(tmp_path / name) == cfg


# ------------------------------------------------------------------------------------------- key paths
def test_defaults():
    cfg = parse_config(BASE)
    assert isinstance(cfg, RuntimeConfig)
    assert cfg.policy.default_action is Action.GO and cfg.policy.rules[1].min_confidence == 0.5
    assert cfg.policy.debounce.trigger_k == 2 and cfg.sinks == () and cfg.source.flip == "none"


def test_wrong_number_names_the_key_path():
    msg = error_of(with_("policy.rules[2].min_confidence", "high"))
    assert msg == "my.yaml: policy.rules[2].min_confidence: expected a number in [0, 1], got 'high'"
    assert "got 1.5" in error_of(with_("policy.rules[0].min_confidence", 1.5))


@pytest.mark.parametrize("path,value,expected", [
    ("policy.debounce.trigger_k", 2.5, "policy.debounce.trigger_k: expected an integer >= 1, got 2.5"),
    ("policy.debounce.trigger_k", True, "policy.debounce.trigger_k: expected an integer >= 1, got true"),
    ("policy.debounce.min_hold_ms", -1, "policy.debounce.min_hold_ms: expected a number >= 0, got -1"),
    ("policy.timeouts.deadline_ms", 0, "policy.timeouts.deadline_ms: expected a number > 0, got 0"),
    ("policy.timeouts.deadline_action", "GO", "policy.timeouts.deadline_action: expected one of STOP, SLOW, got 'GO'"),
    ("policy.rules[1].action", "HALT", "policy.rules[1].action: expected one of GO, SLOW, STOP, got 'HALT'"),
    ("policy.rules[1].classes", "truck", "policy.rules[1].classes: expected a list, got 'truck'"),
    ("policy.rules[1].classes", ["truck", 3], "policy.rules[1].classes[1]: expected a non-empty string, got 3"),
    ("policy.rules", {"a": 1}, "policy.rules: expected a list, got a mapping"),
    ("source.loop", "yes please", "source.loop: expected true or false, got 'yes please'"),
    ("source.flip", "sideways", "source.flip: expected one of none, counterclockwise"),
    ("source.rate", float("nan"), "source.rate: expected a number >= 0, got nan"),
    ("run.max_frames", 0, "run.max_frames: expected an integer >= 1, got 0"),
])
def test_type_and_range_errors(path, value, expected):
    assert expected in error_of(with_(path, value))


def test_actions_are_case_insensitive():
    assert parse_config(with_("policy.rules[0].action", "stop")).policy.rules[0].action is Action.STOP


def test_unknown_keys_list_the_valid_ones():
    msg = error_of(with_("policy.debounce.trigger_kk", 2))
    assert msg.startswith("my.yaml: policy.debounce.trigger_kk: unknown key; expected one of trigger_k, trigger_n")
    assert msg.endswith("(fix its spelling or remove it)")
    assert "unknown key" in error_of(with_("polcy", {}))
    assert "policy.rules[0].min_conf: unknown key" in error_of(with_("policy.rules[0].min_conf", 0.5))


def test_cross_field_checks():
    data = with_("policy.debounce", {"trigger_k": 4, "trigger_n": 3})
    assert "policy.debounce.trigger_k: 4 is more than trigger_n (3)" in error_of(data)
    assert "policy.rules[1]: a rule needs classes or superclasses" in error_of(with_("policy.rules[1]",
                                                                                    {"action": "SLOW"}))
    assert "source.height: give both width and height" in error_of(with_("source.width", 320))


def test_missing_and_empty():
    assert error_of({}) == "my.yaml: policy: missing (required)"
    assert "policy.rules: missing (required)" in error_of({"policy": {}})
    assert "policy.rules[0].action: missing (required)" in error_of(with_("policy.rules[0]", {"classes": ["dog"]}))
    assert "the config is empty" in error_of(None)
    assert "expected a mapping, got a list" in error_of([1, 2])


def test_sinks_are_typed_per_type():
    data = with_("sinks", [{"type": "console"}, {"type": "jsonl", "path": "x.jsonl", "heartbeat_s": 2},
                           {"type": "udp", "port": 5005, "queue_size": 8}])
    cfg = parse_config(data)
    assert cfg.sinks[1].options == JsonlSinkOptions(path="x.jsonl", heartbeat_s=2.0)
    assert cfg.sinks[2].queue_size == 8 and cfg.sinks[2].options.host == "127.0.0.1"
    assert "sinks[0].type: expected one of callback, console, gpio, jsonl, ros2, udp, got 'mqtt'" in \
        error_of(with_("sinks", [{"type": "mqtt"}]))
    assert "sinks[0].port: missing (required)" in error_of(with_("sinks", [{"type": "udp"}]))
    assert "sinks[0].port: expected an integer in [1, 65535], got 70000" in \
        error_of(with_("sinks", [{"type": "udp", "port": 70000}]))
    msg = error_of(with_("sinks", [{"type": "udp", "port": 1, "hots": "x"}]))
    assert "sinks[0].hots: unknown key; expected one of port, host, heartbeat_s, type, queue_size (fix" in msg
    assert "sinks[0].heartbeat_s: expected a number > 0" in error_of(with_("sinks", [{"type": "jsonl", "path": "a",
                                                                                     "heartbeat_s": 0}]))
    assert parse_config(with_("sinks", [{"type": "jsonl", "path": "a", "heartbeat_s": None}])).sinks[0].options.heartbeat_s \
        is None


def test_unknown_class_lists_valid_names():
    cfg = parse_config(with_("policy.rules[0].classes", ["dog", "doggo"]), origin="v.yaml")
    with pytest.raises(EdgeRuntimeError) as info:
        cfg.validate_against(C10)
    assert str(info.value) == ("v.yaml: policy.rules[0].classes: unknown class 'doggo'; the model's classes are: "
                               + ", ".join(C10))


def test_unknown_superclass_lists_valid_names():
    cfg = parse_config({"policy": {"rules": [{"action": "STOP", "superclasses": ["people", "pets"]}]}})
    with pytest.raises(EdgeRuntimeError) as info:
        cfg.validate_against(C100_FINE, C100_SUPER)
    msg = str(info.value)
    assert "policy.rules[0].superclasses: unknown superclass 'pets'" in msg and "vehicles_2" in msg
    with pytest.raises(EdgeRuntimeError, match="unknown class 'doggo'"):
        Policy(parse_config(with_("policy.rules[0].classes", ["doggo"])).policy, C10)


# ---------------------------------------------------------------------------------------------- files
def test_load_config_file_errors(tmp_path):
    with pytest.raises(EdgeRuntimeError, match="config not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  rules: [\n")
    with pytest.raises(EdgeRuntimeError, match=r"bad.yaml: not valid YAML \(line \d+, column \d+\)"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(EdgeRuntimeError, match="empty.yaml: the config is empty"):
        load_config(empty)
    evil = tmp_path / "evil.yaml"
    evil.write_text("policy: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(EdgeRuntimeError, match="not valid YAML"):
        load_config(evil)
    typo = tmp_path / "typo.yaml"
    typo.write_text("policy:\n  rules:\n    - {action: STOP, classes: [dog], min_confidence: high}\n")
    with pytest.raises(EdgeRuntimeError) as info:
        load_config(typo)
    assert str(info.value) == "%s: policy.rules[0].min_confidence: expected a number in [0, 1], got 'high'" % typo


def test_overrides_are_checked_like_yaml():
    cfg = parse_config(BASE, origin="o.yaml")
    new = apply_overrides(cfg, {"source.uri": "clip.mp4", "source.loop": True, "run.max_frames": 10,
                                "model.path": None})
    assert (new.source.uri, new.source.loop, new.run.max_frames, new.model.path) == ("clip.mp4", True, 10, None)
    assert new.origin == "o.yaml" and cfg.source.uri is None
    with pytest.raises(EdgeRuntimeError, match="o.yaml: run.max_frames: expected an integer >= 1, got -3"):
        apply_overrides(cfg, {"run.max_frames": -3})
    with pytest.raises(EdgeRuntimeError, match="unknown section 'sauce'"):
        apply_overrides(cfg, {"sauce.uri": "x"})


def test_reasons_and_actions_share_the_vocabulary():
    assert Reason("deadline_miss") is Reason.DEADLINE_MISS and Reason.DEADLINE_MISS.failsafe
    assert not Reason.HOLD.failsafe


# ------------------------------------------------------------------------------- YAML keys given twice
@pytest.mark.parametrize("text, line, key", [
    ("policy:\n  rules: [{action: STOP, classes: [cat]}]\npolicy:\n  rules: [{action: GO, classes: [ship]}]\n", 3, "policy"),
    ("policy:\n  default_action: GO\n  default_action: STOP\n  rules: [{action: STOP, classes: [cat]}]\n", 3,
     "default_action"),
    ("policy:\n  rules:\n    - {action: STOP, classes: [cat], min_confidence: 0.4, min_confidence: 0.9}\n", 3,
     "min_confidence"),
])
def test_a_key_given_twice_is_refused_at_any_level(tmp_path, text, line, key):
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(EdgeRuntimeError) as info:
        load_config(path)
    msg = str(info.value)
    assert "key %r given twice" % key in msg and "(line %d," % line in msg and "\n" not in msg


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    from edge_runtime.config import read_yaml

    path = tmp_path / "merge.yaml"
    path.write_text("rule: &b {action: STOP, classes: [cat]}\nother: {<<: *b, action: SLOW}\n")
    assert read_yaml(path)["other"] == {"action": "SLOW", "classes": ["cat"]}


# ------------------------------------------------------------------------- CLI flags, same rule as the key
def test_flag_type_checks_a_flag_by_its_config_keys_rule():
    import argparse

    from edge_runtime.config import RunConfig, SourceConfig, flag_type

    max_frames = flag_type(RunConfig, "max_frames")
    assert max_frames("5") == 5
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected an integer >= 1.*run\.max_frames"):
            max_frames(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number > 0, got nan"):
        flag_type(RunConfig, "duration_s")("nan")
    rate = flag_type(SourceConfig, "rate")
    assert rate("0") == 0.0 and rate("12.5") == 12.5
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number >= 0"):
        rate("-5")
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 0, got -1$"):
        flag_type(int, lo=0)("-1")


def test_rate_zero_means_unpaced_in_yaml_and_overrides():
    cfg = parse_config(with_("source.rate", 0))
    assert cfg.source.rate is None
    assert apply_overrides(parse_config(with_("source.rate", 30)), {"source.rate": 0}).source.rate is None
