"""The one typed parser (edge_runtime.schema): runtime config, training config and manifest fail in one style,
``<origin>: <key.path>: expected <what>, got <value> (<what to do>)``."""
from __future__ import annotations

import dataclasses
import enum
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from edge_runtime import manifest as mf
from edge_runtime.config import load_config
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.schema import ConfigError, Parser, opt, parse
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
POLICY = "policy:\n  rules:\n    - {action: STOP, classes: [dog]}\n"
REBUILD = "rebuild the artifact with edge-runtime train/export/build-engine so it carries a complete manifest"


def _runtime_error(tmp_path: Path, text: str) -> str:
    p = tmp_path / "robot.yaml"
    p.write_text(text)
    with pytest.raises(EdgeRuntimeError) as info:
        load_config(p)
    return str(info.value)


def _training_error(tmp_path: Path, text: str) -> str:
    from train.config import TrainConfig, load_yaml, overlay

    p = tmp_path / "train.yaml"
    p.write_text(text)
    with pytest.raises(EdgeRuntimeError) as info:
        overlay(TrainConfig(), load_yaml(p), str(p))  # as `edge-runtime train --config` reads it
    return str(info.value)


def _manifest(**changes: Any) -> Dict[str, Any]:
    m = mf.new("onnx", model={"name": "lenet5"}, dataset=mf.make_dataset("cifar10", ["a", "b"]),
               preprocess=mf.make_preprocess((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)))
    m.update(changes)
    return m


def _manifest_error(tmp_path: Path, m: Dict[str, Any]) -> str:
    p = tmp_path / "m.onnx.json"
    p.write_text(json.dumps(m))
    with pytest.raises(EdgeRuntimeError) as info:
        mf.read(p)
    return str(info.value)


# --------------------------------------------------------------------------------- one style from all three
def test_bad_range_same_style_everywhere(tmp_path):
    run = _runtime_error(tmp_path, POLICY + "source: {width: 0, height: 240}\n")
    assert run == "%s: source.width: expected an integer >= 1, got 0" % (tmp_path / "robot.yaml")
    train = _training_error(tmp_path, "epochs: 0\n")
    assert train == "%s: epochs: expected an integer >= 1, got 0" % (tmp_path / "train.yaml")
    m = _manifest()
    m["dataset"]["num_classes"] = 0
    man = _manifest_error(tmp_path, m)
    assert man == "%s: dataset.num_classes: expected an integer >= 1, got 0 (%s)" % (tmp_path / "m.onnx.json", REBUILD)
    for msg in (run, train, man):
        assert "\n" not in msg and re.match(r"^\S+: [\w.\[\]]+: expected .+, got .+", msg)


def test_wrong_type_same_style_everywhere(tmp_path):
    run = _runtime_error(tmp_path, POLICY + "run: {display: 'yes'}\n")
    assert run.endswith(": run.display: expected true or false, got 'yes'")
    train = _training_error(tmp_path, "lr: fast\n")
    assert train.endswith(": lr: expected a number > 0, got 'fast'")
    man = _manifest_error(tmp_path, _manifest(model={"name": 5}))
    assert man.endswith(": model.name: expected a non-empty string, got 5 (%s)" % REBUILD)


def test_unknown_key_same_style_everywhere(tmp_path):
    run = _runtime_error(tmp_path, POLICY + "run: {max_frame: 3}\n")
    assert re.search(r"\.yaml: run\.max_frame: unknown key; expected one of max_frames, .*report.* "
                     r"\(fix its spelling or remove it\)$", run)
    train = _training_error(tmp_path, "lrr: 0.1\n")
    assert re.search(r"\.yaml: lrr: unknown key; expected one of model, .*\blr\b.* \(fix its spelling or remove it\)$",
                     train)
    # a manifest keeps keys it does not declare (provenance, accuracy...): an unknown key is not an error there,
    # and validate returns the manifest whole
    m = _manifest(accuracy={"top1": 0.5}, notes="x")
    assert mf.validate(m, "m") is m and m["accuracy"] == {"top1": 0.5}
    assert _manifest_error(tmp_path, _manifest(kind="zip")).endswith(
        ": kind: expected one of checkpoint, onnx, engine, got 'zip' (%s)" % REBUILD)


def test_manifest_cross_field_checks_name_the_key(tmp_path):
    m = _manifest()
    m["dataset"]["num_classes"] = 3
    assert ": dataset.num_classes: expected 2 (one per class name), got 3 (" in _manifest_error(tmp_path, m)
    m = _manifest()
    m["preprocess"]["mean"] = [0.5, 0.5]
    assert ": preprocess.mean: expected 3 values, got 2 (" in _manifest_error(tmp_path, m)
    m = _manifest()
    m["dataset"]["superclasses"] = {"names": ["x"], "fine_to_coarse": [0, 1]}
    assert ": dataset.superclasses.fine_to_coarse: expected indices in 0..0" in _manifest_error(tmp_path, m)
    assert _manifest_error(tmp_path, [1]).endswith(": expected a mapping, got a list (%s)" % REBUILD)


def test_training_flags_are_checked_like_the_yaml(tmp_path, capsys):
    rc, _, err = run_cli(["train", "--epochs", "0", "--out", tmp_path / "run"], capsys)
    assert rc == 2 and err.strip().endswith("flags: epochs: expected an integer >= 1, got 0")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_training_config_checks_in_python_too():
    from train.config import TrainConfig

    with pytest.raises(EdgeRuntimeError, match=r"^config: label_smoothing: expected a number in \[0, 1\), got 1\.0$"):
        TrainConfig(label_smoothing=1.0).validate()
    with pytest.raises(EdgeRuntimeError, match=r"^freeze: expected none, backbone or until:<stage>, got 'all'$"):
        TrainConfig(freeze="all")
    assert TrainConfig(freeze="until:3", label_smoothing=0.1).validate().freeze == "until:3"


# --------------------------------------------------------------------------------------------- the parser
class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Inner:
    k: int = opt(1, lo=1, hi=5, hi_open=True)
    color: Color = Color.RED


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = opt(Inner)
    items: Tuple[float, ...] = opt((), lo=0)
    tags: List[str] = opt(factory=list)
    extra: Dict[str, Any] = opt(factory=dict)
    maybe: Optional[int] = None

    def __post_init__(self) -> None:
        if self.name == "bad":
            raise ConfigError("name", "expected anything but 'bad', got 'bad'")


def _err(data: Any, **kw: Any) -> str:
    with pytest.raises(EdgeRuntimeError) as info:
        parse(Outer, data, "o", **kw)
    return str(info.value)


def test_parser_builds_a_dataclass_tree():
    got = parse(Outer, {"name": "n", "inner": {"k": 4, "color": "blue"}, "items": [1, 2.5], "tags": ["a"],
                        "extra": {"x": [1]}, "maybe": None}, "o")
    assert got == Outer("n", Inner(4, Color.BLUE), (1.0, 2.5), ["a"], {"x": [1]}, None)
    assert isinstance(got.items, tuple) and isinstance(got.tags, list)


def test_parser_errors_name_the_path():
    assert _err({"name": "n", "inner": {"k": 5}}) == "o: inner.k: expected an integer in [1, 5), got 5"
    assert _err({"name": "n", "inner": {"color": "green"}}) == "o: inner.color: expected one of RED, BLUE, got 'green'"
    assert _err({"name": "n", "items": [1, -1]}) == "o: items[1]: expected a number >= 0, got -1"
    assert _err({"name": "n", "items": 3}) == "o: items: expected a list, got 3"
    assert _err({"name": "n", "tags": ["a", 2]}) == "o: tags[1]: expected a non-empty string, got 2"
    assert _err({"name": "n", "extra": {1: 2}}) == "o: extra: expected a mapping with string keys, got 1"
    assert _err({"name": "n", "maybe": 1.5}) == "o: maybe: expected an integer, got 1.5"
    assert _err({"name": "n", "maybe": True}) == "o: maybe: expected an integer, got true"
    assert _err({}) == "o: name: missing (required)"
    assert _err({"name": "bad"}) == "o: name: expected anything but 'bad', got 'bad'"
    assert _err({"name": "n", "inner": {"kk": 1}}) == \
        "o: inner.kk: unknown key; expected one of k, color (fix its spelling or remove it)"
    assert _err({"name": "n", "maybe": "x"}, parser=Parser(hint="see the docs")) == \
        "o: maybe: expected an integer, got 'x' (see the docs)"


def test_parser_updates_an_instance():
    base = Outer("n", tags=["a"])
    assert parse(Outer, {"maybe": 3}, "o", base=base) == dataclasses.replace(base, maybe=3)
    with pytest.raises(EdgeRuntimeError, match=r"^over: inner: expected a mapping, got 2$"):
        parse(Outer, {"inner": 2}, "over", base=base)


def test_schema_manifest_and_config_stay_torch_free_on_python38_syntax():
    code = ("import sys, edge_runtime.schema, edge_runtime.manifest, edge_runtime.config, edge_runtime.sinks; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(ROOT))
    vermin = Path(sys.executable).parent / "vermin"
    if not vermin.exists():
        pytest.skip("vermin is not installed in this environment")
    out = subprocess.run([str(vermin), "-q", "--no-tips", "--violations", "-t=3.8-", "edge_runtime/schema.py",
                          "edge_runtime/manifest.py", "edge_runtime/config.py", "edge_runtime/sinks"],
                         cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout
