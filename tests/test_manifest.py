import json

import pytest

from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import atomic_open, write_json_atomic


def _m(**kw):
    return mf.new("onnx", model={"name": "lenet5"}, dataset=mf.make_dataset("cifar10", ["a", "b"]),
                  preprocess=mf.make_preprocess((0.5, 0.5, 0.5), (0.2, 0.2, 0.2)), **kw)


def test_sidecar_roundtrip_with_hash(tmp_path):
    art = tmp_path / "m.onnx"
    art.write_bytes(b"model bytes")
    path = mf.write(art, _m())
    assert path.name == "m.onnx.json"
    assert mf.for_artifact(art)["sha256"]
    art.write_bytes(b"changed")
    with pytest.raises(EdgeRuntimeError, match="does not match its manifest"):
        mf.for_artifact(art)


@pytest.mark.parametrize("mutate,needle", [
    (lambda m: m.pop("preprocess"), r"^x: preprocess: missing \(required\) \(rebuild the artifact"),
    (lambda m: m.update(precision="int4"), "precision"),
    (lambda m: m["dataset"].update(num_classes=3), "num_classes"),
    (lambda m: m["preprocess"].update(resize="zoom"), "resize"),
    (lambda m: m["dataset"].update(superclasses={"names": ["x"], "fine_to_coarse": [0, 1]}), "fine_to_coarse"),
])
def test_invalid_manifests_name_the_key(mutate, needle):
    m = _m()
    mutate(m)
    with pytest.raises(EdgeRuntimeError, match=needle):
        mf.validate(m, "x")


def test_missing_and_broken_manifest_files(tmp_path):
    with pytest.raises(EdgeRuntimeError, match="manifest not found"):
        mf.read(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EdgeRuntimeError, match="not valid JSON"):
        mf.read(tmp_path / "bad.json")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "keep.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("partial")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
