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

import dataclasses
import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import EdgeRuntimeError
from .fsio import PathLike, sha256_file, write_json_atomic
from .schema import ConfigError, Parser, opt, parse

FORMAT = "edge-runtime.manifest/1"
KINDS = ("checkpoint", "onnx", "engine")
PRECISIONS = ("fp32", "fp16", "int8")

#: Keys every manifest has. Values are checked by :func:`validate`.
REQUIRED = ("format", "kind", "model", "dataset", "preprocess", "precision")
RESIZE_MODES = ("center_crop", "letterbox", "stretch")


# The schema of what every manifest must hold, checked by the one typed parser (edge_runtime.schema). Each part is
# open (``_schema_open``): the other keys (provenance, accuracy, calibration, ...) are kept as they are, in the dict.
@dataclasses.dataclass(frozen=True)
class _Model:
    _schema_open = True
    name: str


@dataclasses.dataclass(frozen=True)
class _Superclasses:
    _schema_open = True
    names: Tuple[str, ...]
    fine_to_coarse: Tuple[int, ...] = opt(dataclasses.MISSING, lo=0)

    def __post_init__(self) -> None:
        bad = [c for c in self.fine_to_coarse if c >= len(self.names)]
        if bad:
            raise ConfigError("fine_to_coarse", "expected indices in 0..%d (one per superclass name), got %d"
                              % (len(self.names) - 1, bad[0]))


@dataclasses.dataclass(frozen=True)
class _Dataset:
    _schema_open = True
    class_names: Tuple[str, ...]
    num_classes: int = opt(dataclasses.MISSING, lo=1)
    superclasses: Optional[_Superclasses] = None

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ConfigError("class_names", "expected a non-empty list, got []")
        if self.num_classes != len(self.class_names):
            raise ConfigError("num_classes", "expected %d (one per class name), got %d"
                              % (len(self.class_names), self.num_classes))
        if self.superclasses is not None and len(self.superclasses.fine_to_coarse) != len(self.class_names):
            raise ConfigError("superclasses.fine_to_coarse", "expected %d entries (one per class), got %d"
                              % (len(self.class_names), len(self.superclasses.fine_to_coarse)))


@dataclasses.dataclass(frozen=True)
class _Preprocess:
    _schema_open = True
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    scale: float
    color: str
    size: Tuple[int, ...] = opt(dataclasses.MISSING, lo=1)  # opt(MISSING): required, with its rule
    resize: str = opt(dataclasses.MISSING, choices=RESIZE_MODES)

    def __post_init__(self) -> None:
        for key, n in (("size", 2), ("mean", 3), ("std", 3)):
            if len(getattr(self, key)) != n:
                raise ConfigError(key, "expected %d values, got %d" % (n, len(getattr(self, key))))


@dataclasses.dataclass(frozen=True)
class _Manifest:
    _schema_open = True
    model: _Model
    dataset: _Dataset
    preprocess: _Preprocess
    format: str = opt(dataclasses.MISSING, choices=(FORMAT,))
    kind: str = opt(dataclasses.MISSING, choices=KINDS)
    precision: str = opt(dataclasses.MISSING, choices=PRECISIONS)


_PARSER = Parser(hint="rebuild the artifact with edge-runtime train/export/build-engine so it carries a complete "
                      "manifest")


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


def validate(m: Any, where: str = "manifest") -> Dict[str, Any]:
    """Check structure and types with the typed parser; one-line :class:`EdgeRuntimeError`
    ``<where>: <key.path>: expected <what>, got <value> (rebuild ...)``. Returns ``m`` itself (all its keys)."""
    parse(_Manifest, m, where, parser=_PARSER)
    return m  # type: ignore[no-any-return]


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
