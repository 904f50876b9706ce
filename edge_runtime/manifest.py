"""The manifest: one truth for every artifact (checkpoint, ONNX file, engine).

A manifest is a JSON object that travels with its artifact (inside a checkpoint, in ONNX
metadata, and as a ``<artifact>.json`` file beside it). It carries everything a device needs
to use the artifact correctly -- class names, input size, the exact preprocessing with the
dataset's mean/std -- and the evidence behind it: measured accuracy with the command that
measured it, sha256 of the artifact and of its source. Nothing downstream hard-codes CIFAR
constants; it reads them from here.

Stdlib only: this module runs on the robot (Python 3.8+).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .errors import EdgeRuntimeError
from .fsio import PathLike, sha256_file, write_json_atomic

FORMAT = "edge-runtime.manifest/1"
KINDS = ("checkpoint", "onnx", "engine")
PRECISIONS = ("fp32", "fp16", "int8")

#: Keys every manifest has. Values are checked by :func:`validate`.
REQUIRED = ("format", "kind", "model", "dataset", "preprocess", "precision")


def sidecar_path(artifact: PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json`` (never collides between .onnx and .engine)."""
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def make_preprocess(mean: Sequence[float], std: Sequence[float], size: Sequence[int] = (32, 32),
                    resize: str = "center_crop", interpolation: str = "area") -> Dict[str, Any]:
    """The inference transform: RGB, resize mode, scale to [0, 1], normalize, NCHW float32.

    ``resize``: ``center_crop`` (crop the largest centred square, then resize: the default, as
    the model never saw letterbox bars or stretched objects), ``letterbox`` or ``stretch``.
    """
    if len(mean) != 3 or len(std) != 3:
        raise EdgeRuntimeError("mean and std need 3 values (R, G, B); got mean=%s std=%s" % (list(mean), list(std)))
    if any(float(s) <= 0 for s in std):
        raise EdgeRuntimeError("std values must be > 0; got %s" % list(std))
    return {
        "color": "RGB",
        "layout": "NCHW",
        "dtype": "float32",
        "size": [int(size[0]), int(size[1])],
        "resize": resize,
        "interpolation": interpolation,
        "scale": 1.0 / 255.0,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
    }


def make_dataset(name: str, class_names: Sequence[str], superclass_names: Optional[Sequence[str]] = None,
                 fine_to_coarse: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    d: Dict[str, Any] = {"name": name, "num_classes": len(class_names), "class_names": list(class_names)}
    if superclass_names is not None and fine_to_coarse is not None:
        d["superclasses"] = {"names": list(superclass_names), "fine_to_coarse": [int(c) for c in fine_to_coarse]}
    return d


def new(kind: str, model: Dict[str, Any], dataset: Dict[str, Any], preprocess: Dict[str, Any],
        precision: str = "fp32", **extra: Any) -> Dict[str, Any]:
    """A fresh manifest with the required keys and provenance (time, host, Python)."""
    m: Dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "model": dict(model),
        "dataset": dict(dataset),
        "preprocess": dict(preprocess),
        "precision": precision,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "machine": platform.machine(), "system": platform.system()},
    }
    m.update(extra)
    validate(m, "new manifest")
    return m


def _fail(where: str, what: str) -> None:
    raise EdgeRuntimeError("%s: invalid manifest: %s; rebuild the artifact with edge-runtime (train/export/build-engine) "
                           "so it carries a complete manifest" % (where, what))


def validate(m: Any, where: str = "manifest") -> Dict[str, Any]:
    """Check structure and types; raise one-line :class:`EdgeRuntimeError` naming the key."""
    if not isinstance(m, dict):
        _fail(where, "expected a JSON object, got %s" % type(m).__name__)
    missing = [k for k in REQUIRED if k not in m]
    if missing:
        _fail(where, "missing key(s) %s" % ", ".join(missing))
    if m["format"] != FORMAT:
        _fail(where, "format is %r, expected %r" % (m["format"], FORMAT))
    if m["kind"] not in KINDS:
        _fail(where, "kind is %r, expected one of %s" % (m["kind"], ", ".join(KINDS)))
    if m["precision"] not in PRECISIONS:
        _fail(where, "precision is %r, expected one of %s" % (m["precision"], ", ".join(PRECISIONS)))
    model = m["model"]
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        _fail(where, "model.name must be a string")
    ds = m["dataset"]
    if not isinstance(ds, dict) or not isinstance(ds.get("class_names"), list) or not ds["class_names"]:
        _fail(where, "dataset.class_names must be a non-empty list")
    if ds.get("num_classes") != len(ds["class_names"]):
        _fail(where, "dataset.num_classes (%r) does not match %d class names" % (ds.get("num_classes"), len(ds["class_names"])))
    sc = ds.get("superclasses")
    if sc is not None:
        if not isinstance(sc, dict) or len(sc.get("fine_to_coarse", [])) != len(ds["class_names"]):
            _fail(where, "dataset.superclasses.fine_to_coarse must have one entry per class")
        n_coarse = len(sc.get("names", []))
        if any(not (0 <= int(c) < n_coarse) for c in sc["fine_to_coarse"]):
            _fail(where, "dataset.superclasses.fine_to_coarse has an index outside 0..%d" % (n_coarse - 1))
    pp = m["preprocess"]
    if not isinstance(pp, dict):
        _fail(where, "preprocess must be an object")
    for key in ("size", "mean", "std", "scale", "resize", "color"):
        if key not in pp:
            _fail(where, "preprocess.%s is missing" % key)
    if len(pp["mean"]) != 3 or len(pp["std"]) != 3 or len(pp["size"]) != 2:
        _fail(where, "preprocess.mean/std need 3 values and preprocess.size 2")
    if pp["resize"] not in ("center_crop", "letterbox", "stretch"):
        _fail(where, "preprocess.resize is %r, expected center_crop, letterbox or stretch" % pp["resize"])
    return m


def write(artifact: PathLike, manifest: Dict[str, Any], hash_artifact: bool = True) -> Path:
    """Write ``<artifact>.json`` atomically; records the artifact's sha256 first if asked."""
    if hash_artifact:
        manifest = dict(manifest)
        manifest["sha256"] = sha256_file(artifact)
    validate(manifest, str(artifact))
    path = sidecar_path(artifact)
    write_json_atomic(path, manifest)
    return path


def read(path: PathLike) -> Dict[str, Any]:
    """Read and validate a manifest JSON file (a sidecar or any path)."""
    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("manifest not found: %s; expected a JSON manifest beside the artifact "
                               "(written by edge-runtime train/export/build-engine)" % p)
    try:
        data = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise EdgeRuntimeError("%s is not valid JSON (%s); restore it or re-export the artifact" % (p, exc))
    return validate(data, str(p))


def for_artifact(artifact: PathLike, verify_hash: bool = True) -> Dict[str, Any]:
    """The manifest beside ``artifact``; with ``verify_hash`` its sha256 must match the file."""
    art = Path(artifact)
    m = read(sidecar_path(art))
    if verify_hash:
        check_hash(art, m)
    return m


def check_hash(artifact: PathLike, manifest: Dict[str, Any]) -> None:
    want = manifest.get("sha256")
    if not want:
        return
    got = sha256_file(artifact)
    if got != want:
        raise EdgeRuntimeError("%s does not match its manifest (sha256 %s..., manifest says %s...); the file was changed "
                               "after export: re-export it or restore the matching manifest" % (artifact, got[:12], want[:12]))


_CODE_VERSION: Optional[Dict[str, Any]] = None


def code_version(refresh: bool = False) -> Dict[str, Any]:
    """The code that produced an artifact: ``{"version", "commit", "dirty"}`` (stdlib only, Python 3.8).

    ``commit`` is the git HEAD of the checkout this package was imported from and ``dirty`` whether
    tracked files differ from it (untracked files are ignored); both are ``None`` for an installed
    wheel or when git is missing. The git repository must be the package's own checkout (a ``.git``
    beside ``edge_runtime/``), never one that merely encloses a virtual environment. The answer is
    computed once per process (``refresh=True`` asks git again).
    """
    global _CODE_VERSION
    if _CODE_VERSION is not None and not refresh:
        return dict(_CODE_VERSION)
    from . import __version__

    out: Dict[str, Any] = {"version": __version__, "commit": None, "dirty": None}
    root = Path(__file__).resolve().parent.parent
    if (root / ".git").exists():
        env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
        base = ["git", "--git-dir", str(root / ".git"), "--work-tree", str(root)]
        try:
            head = subprocess.run(base + ["rev-parse", "HEAD"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  env=env, timeout=10, check=True, universal_newlines=True).stdout.strip()
            status = subprocess.run(base + ["status", "--porcelain", "--untracked-files=no"], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env, timeout=30, check=True,
                                    universal_newlines=True).stdout
            out["commit"], out["dirty"] = head or None, bool(status.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    _CODE_VERSION = out
    return dict(out)


def class_names(manifest: Dict[str, Any]) -> List[str]:
    return list(manifest["dataset"]["class_names"])
