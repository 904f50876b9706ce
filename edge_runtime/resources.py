"""The files edge-runtime ships with: the bundled model, the runtime configs, the demo clip, the calibration set.

There is one copy of each in the repository, where its users look for it::

    deploy/configs/*.yaml         kind "configs"   (vehicle.yaml, delivery-robot.yaml)
    deploy/demo/cifar10-demo.*    kind "demo"      (the clip and its ground truth)
    engines/bundled/*.onnx[.json] kind "bundled"   (MobileNetV2 x0.5: FP32, INT8 CPU and TensorRT, FP16)
    calib/*.npz[.json]            kind "calib"     (CIFAR-10 calibration set for quantize)
    engines/checkpoints/*.pt      kind "checkpoints" (PyTorch weights: a checkout only, the wheel has no torch side)

``setup.py`` copies them into the package (``edge_runtime/_data/<kind>/``) when it builds a wheel, so an
installed edge-runtime finds them with :mod:`importlib.resources` wherever it is started. Run from a source
checkout (or an editable install) they are read where they lie. :func:`path` looks in the package first, then
in the checkout, so a command's defaults name the same files from any working directory.

Only the standard library: this runs on the robot (Python 3.8+; ``importlib.resources.files`` where it exists,
the package's own directory on 3.8).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Union

from .errors import EdgeRuntimeError

__all__ = ["KINDS", "path", "folder", "find", "names", "checkout_root", "describe", "bundled_for", "resolve"]

#: kind -> where its files lie in a source checkout (relative to the repository root); the wheel holds them in
#: edge_runtime/_data/<kind>/ (setup.py reads this table)
KINDS: Dict[str, str] = {"configs": "deploy/configs", "demo": "deploy/demo", "bundled": "engines/bundled",
                         "calib": "calib", "checkpoints": "engines/checkpoints"}  # checkpoints: checkout only (torch)
_PACKAGE = "edge_runtime._data"


def _package_dir() -> Optional[Path]:
    """``edge_runtime/_data`` as a directory on disk, or None (a zipped install is not supported)."""
    import importlib
    import importlib.resources

    files = getattr(importlib.resources, "files", None)  # Python >= 3.9
    if files is None:  # Python 3.8: the package's own folder (a wheel installs unzipped)
        mod = importlib.import_module(_PACKAGE)
        return Path(str(mod.__file__)).parent if getattr(mod, "__file__", None) else None
    root = files(_PACKAGE)
    return root if isinstance(root, Path) else None


def checkout_root() -> Optional[Path]:
    """The repository root when edge_runtime runs from a source checkout (or an editable install), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "setup.py").is_file() and (root / "deploy").is_dir() else None


def folder(kind: str) -> Optional[Path]:
    """The folder that holds ``kind``'s files: in the installed package if it has them, else in the checkout."""
    if kind not in KINDS:
        raise ValueError("unknown resource kind %r; known: %s" % (kind, ", ".join(KINDS)))
    pkg = _package_dir()
    if pkg is not None and (pkg / kind).is_dir():
        return pkg / kind
    root = checkout_root()
    if root is not None and (root / KINDS[kind]).is_dir():
        return root / KINDS[kind]
    return None


def find(kind: str, name: str) -> Optional[Path]:
    """The bundled file ``name`` of ``kind`` (see :data:`KINDS`), or None if this install lacks it."""
    d = folder(kind)
    p = d / name if d is not None else None
    return p if p is not None and p.is_file() else None


def path(kind: str, name: str) -> Path:
    """The bundled file ``name`` of ``kind``; a one-line error if this install lacks it."""
    p = find(kind, name)
    if p is None:
        raise EdgeRuntimeError("bundled file %s/%s is missing from this install (%s); reinstall edge-runtime from "
                               "its wheel, or pass the file explicitly" % (KINDS[kind], name, describe()))
    return p


def names(kind: str) -> List[str]:
    """The file names of ``kind`` in this install, sorted."""
    d = folder(kind)
    return sorted(f.name for f in d.iterdir() if f.is_file() and not f.name.startswith(("_", "."))) if d else []


def describe() -> str:
    """Where the bundled files are read from (for messages and ``--help``)."""
    pkg = _package_dir()
    if pkg is not None and any((pkg / k).is_dir() for k in KINDS):
        return "package data in %s" % pkg
    root = checkout_root()
    return "the checkout %s" % root if root is not None else "nowhere: no package data and no checkout"




def bundled_for(p: Union[str, "os.PathLike[str]"]) -> Optional[Path]:
    """The bundled file that a relative path missing from the working directory names by its repository path
    (``deploy/configs/vehicle.yaml``, ``engines/bundled/<file>``, ``deploy/demo/<file>``, ``calib/<file>``), or None."""
    s = str(p)
    if "://" in s or os.path.isabs(s) or os.path.exists(s):
        return None
    rel = Path(s).as_posix()
    for kind, where in KINDS.items():
        if rel.startswith(where + "/") and "/" not in rel[len(where) + 1:]:
            return find(kind, rel[len(where) + 1:])
    return None


def resolve(p: Union[str, "os.PathLike[str]"]) -> Path:
    """A path argument as given (relative to the working directory, as always) when it exists; else, when it names a
    bundled file by its repository path, that file (:func:`bundled_for`); else as given (the caller's error names
    it). So the README's commands work from any directory and from an installed wheel, on the same files."""
    found = bundled_for(p)
    return found if found is not None else Path(str(p))
