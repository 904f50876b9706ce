"""Runners: one interface for every backend (``activate / infer / deactivate``, a context manager), and the ONE
place that turns an artifact into a runner: :func:`load`.

Each backend module owns its heavy import (onnxruntime, torch, tensorrt), so importing this package needs only
numpy. The registry :data:`BACKENDS` maps a backend key (also the runner's ``name``) to the artifact suffixes it
runs natively; an ``.onnx`` asked to run on ``tensorrt`` is built into a cached engine first
(:func:`edge_runtime.backends.tensorrt.engine_for_onnx`). Every runner :func:`load` returns carries its
``manifest``; the model's agreement with it is checked when the runner activates (:mod:`.base`).
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from .. import manifest as mf
from ..errors import EdgeRuntimeError
from ..fsio import PathLike
from .base import Runner, check_agreement

__all__ = ["Runner", "Backend", "BACKENDS", "load", "backend_for", "check_agreement", "runner_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    key: str                    #: ``--backend`` value and the runner's ``name``
    suffixes: Tuple[str, ...]   #: artifacts it runs natively
    runner: str                 #: "module:Class", imported only when used
    cpu_threads: bool           #: honours ``threads`` (CPU threads); others refuse threads > 1
    label: str                  #: for people


BACKENDS: Dict[str, Backend] = {b.key: b for b in (
    Backend("onnxruntime", (".onnx",), "onnxrt:OnnxRuntimeRunner", True, "ONNX Runtime"),
    Backend("torch", (".pt", ".pth"), "torch_runner:TorchRunner", True, "PyTorch eager"),
    Backend("tensorrt", (".engine", ".plan"), "tensorrt:TensorRTRunner", False, "TensorRT"),
)}


def _known_suffixes() -> str:
    return ", ".join("%s (%s)" % ("/".join(b.suffixes), b.key) for b in BACKENDS.values())


def backend_for(path: PathLike) -> Backend:
    """The backend that runs ``path`` natively (by suffix); unknown -> one line listing the known."""
    suffix = Path(path).suffix
    for b in BACKENDS.values():
        if suffix in b.suffixes:
            return b
    raise EdgeRuntimeError("%s: unknown artifact type %r; expected one of %s" % (path, suffix, _known_suffixes()))


def _runner_class(b: Backend) -> Any:
    mod, cls = b.runner.split(":")
    return getattr(importlib.import_module("%s.%s" % (__name__, mod)), cls)


def _onnx_manifest(p: Path, mean: Optional[Sequence[float]], std: Optional[Sequence[float]],
                   labels: Optional[Sequence[str]], dataset: str, required: bool) -> Optional[Dict[str, Any]]:
    """Sidecar (hash-checked), else the manifest embedded in the ONNX metadata (when onnx is importable), else one
    from --mean/--std/--labels; ``None`` when none and not ``required``."""
    if mf.sidecar_path(p).is_file():
        return mf.for_artifact(p)
    if importlib.util.find_spec("onnx") is not None:  # only to read an embedded manifest; a robot may lack onnx
        from .. import onnxutil

        emb = onnxutil.manifest_for(p, onnxutil.load(p, check=False))
        if emb is not None:
            return emb
    else:
        log.debug("onnx is not installed: not looking for a manifest embedded in %s", p)
    if not required and not (mean or std or labels):
        return None
    from ..evaluate import manual_manifest

    return manual_manifest(p, dataset, list(mean) if mean else None, list(std) if std else None,
                           list(labels) if labels else None)


def load(path: PathLike, backend: str = "auto", manifest: Union[PathLike, Mapping[str, Any], None] = None,
         mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
         labels: Optional[Sequence[str]] = None, threads: Optional[int] = None, engines_dir: PathLike = "engines",
         precision: Optional[str] = None, dataset: str = "cifar10", require_manifest: bool = True,
         command: str = "") -> Runner:
    """The Runner for an artifact (not yet active), with its ``manifest``.

    ``backend``: ``auto`` (by suffix) or a key of :data:`BACKENDS`; an ``.onnx`` on ``tensorrt`` is built into a
    cached engine in ``engines_dir`` (``precision``: the engine's, default the ONNX's, fp16 for FP32).
    ``manifest``: a dict or a JSON path overriding the artifact's own; ``mean``/``std``/``labels`` stand in for a
    missing one (``require_manifest=False``: an ONNX without one gets ``manifest=None``, as ``bench`` allows).
    ``threads``: CPU threads for ONNX Runtime / PyTorch (None or 0: the backend's default); TensorRT runs on the
    GPU from one host thread, so it refuses ``threads`` > 1 instead of ignoring it. Every mistake is one line."""
    p = Path(path)
    threads = threads or None
    if backend != "auto" and backend not in BACKENDS:
        raise EdgeRuntimeError("--backend %r: expected auto or one of %s" % (backend, ", ".join(BACKENDS)))
    if not p.is_file():
        raise EdgeRuntimeError("model not found: %s; pass --model ARTIFACT (%s)" % (p, _known_suffixes()))
    native = backend_for(p)
    want = native if backend == "auto" else BACKENDS[backend]
    if threads is not None and threads < 0:
        raise EdgeRuntimeError("--threads %d: expected 0 (the backend's default) or more" % threads)
    if threads is not None and threads > 1 and not want.cpu_threads:
        raise EdgeRuntimeError("--threads %d: %s runs on the GPU from one host thread and cannot use CPU threads; drop "
                               "--threads (it applies to %s)" % (threads, want.label, ", ".join(
                                   b.key for b in BACKENDS.values() if b.cpu_threads)))
    given: Optional[Dict[str, Any]] = None
    if manifest is not None:
        given = mf.validate(dict(manifest), "manifest") if isinstance(manifest, Mapping) else mf.read(manifest)
    if want.key == "tensorrt" and native.key == "onnxruntime":
        from .tensorrt import engine_for_onnx

        src_man = given or _onnx_manifest(p, mean, std, labels, dataset, True)
        assert src_man is not None
        p, given = engine_for_onnx(p, src_man, engines_dir, precision, command=command)
        native = want
    elif precision is not None:
        raise EdgeRuntimeError("--precision %s applies when an .onnx is built into a TensorRT engine (--backend tensorrt); "
                               "%s runs on %s as it is: drop --precision" % (precision, p, want.key))
    elif want.key != native.key:
        raise EdgeRuntimeError("%s is a %s artifact and cannot run on --backend %s; give %s" % (
            p, native.key, want.key, "; ".join("%s for %s" % ("/".join(b.suffixes), b.key) for b in BACKENDS.values())
            + "; an .onnx also for tensorrt (built into an engine)"))
    cls = _runner_class(native)
    if native.key == "onnxruntime":
        man = given or _onnx_manifest(p, mean, std, labels, dataset, require_manifest)
        return cls(p, threads=threads, manifest=man)  # type: ignore[no-any-return]
    if native.key == "torch":
        return cls(p, threads=threads, manifest=given)  # type: ignore[no-any-return]
    if given is None:
        if not mf.sidecar_path(p).is_file():
            raise EdgeRuntimeError("%s has no manifest (%s), so its TensorRT version, GPU, classes and preprocessing are "
                                   "unknown; rebuild it with edge-runtime build-engine" % (p, mf.sidecar_path(p).name))
        given = mf.for_artifact(p)
    return cls(p, manifest=given)  # type: ignore[no-any-return]


def runner_for(path: Any, **kwargs: Any) -> Runner:
    """Shim for older callers: :func:`load` by suffix (only ``threads``/``manifest`` are passed on)."""
    return load(path, threads=kwargs.get("threads"), manifest=kwargs.get("manifest"), require_manifest=False)
