"""ONNX files: safe loading, the embedded manifest, and input checks (onnx imported lazily).

An exported ONNX file carries its manifest twice: in ``metadata_props`` under
:data:`META_KEY` (so a lone file still knows its classes and preprocessing) and as the sidecar
``<file>.onnx.json`` written by :func:`edge_runtime.manifest.write`. The embedded copy cannot
hold the file's own sha256 (embedding changes the bytes), so the sidecar is the one that proves
the file is unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from . import manifest as mf
from .errors import EdgeRuntimeError
from .fsio import PathLike, write_bytes_atomic

META_KEY = "edge_runtime_manifest"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise EdgeRuntimeError("this step needs the onnx package, which is not installed; run: pip install onnx") from None
    return onnx


def load(path: PathLike, check: bool = True) -> Any:
    """Load and (optionally) ``onnx.checker``-check an ONNX file; a corrupt or truncated one is one line."""
    onnx = _onnx()
    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("ONNX file not found: %s; export one with: edge-runtime export CHECKPOINT" % p)
    try:
        model = onnx.load(str(p))
        if check:
            onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, ...: all mean "not a usable ONNX file"
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeRuntimeError("%s is corrupt, truncated or not a valid ONNX model (%s: %s); re-export it with "
                               "edge-runtime export" % (p, type(exc).__name__, msg[:200])) from None
    if not model.graph.node:
        raise EdgeRuntimeError("%s is corrupt, truncated or not a valid ONNX model (the graph has no nodes); re-export "
                               "it with edge-runtime export" % p)
    return model


def load_checked(path: PathLike) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """(model, manifest): a sidecar's sha256 is checked before parsing (a changed file is named as such), the
    model is loaded and checked, its input must be NCHW 3-channel; manifest is None when there is none."""
    p = Path(path)
    side = mf.sidecar_path(p)
    if p.is_file() and side.is_file():
        mf.check_hash(p, mf.read(side))
    model = load(p)
    check_image_input(model, str(p))
    return model, manifest_for(p, model)


def embedded_manifest(model: Any) -> Optional[Dict[str, Any]]:
    """The manifest stored in the model's metadata, or None."""
    for prop in model.metadata_props:
        if prop.key == META_KEY:
            try:
                return dict(json.loads(prop.value))
            except ValueError:
                raise EdgeRuntimeError("the ONNX metadata %r is not valid JSON; re-export the model" % META_KEY) from None
    return None


def embed_manifest(model: Any, manifest: Dict[str, Any]) -> None:
    """Store ``manifest`` (without a sha256 of the file itself) in ``model.metadata_props``."""
    m = {k: v for k, v in manifest.items() if k != "sha256"}
    for prop in list(model.metadata_props):
        if prop.key == META_KEY:
            model.metadata_props.remove(prop)
    prop = model.metadata_props.add()
    prop.key = META_KEY
    prop.value = json.dumps(m, sort_keys=False)


def save(model: Any, path: PathLike, manifest: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Embed ``manifest`` (if given), write the model atomically, then the sidecar with the final sha256."""
    if manifest is not None:
        embed_manifest(model, manifest)
    write_bytes_atomic(path, model.SerializeToString())
    if manifest is None:
        return {}
    mf.write(path, manifest)
    return mf.read(mf.sidecar_path(path))


def input_shape(model: Any) -> Tuple[str, List[Any]]:
    """(name, dims) of the single graph input (initializers excluded); dims are ints or symbolic names."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgeRuntimeError("the ONNX model has %d inputs (%s); expected one image input NCHW (N, 3, H, W)"
                               % (len(inputs), ", ".join(i.name for i in inputs)))
    inp = inputs[0]
    dims: List[Any] = []
    for d in inp.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    return inp.name, dims


def check_image_input(model: Any, where: str) -> Tuple[str, List[Any]]:
    """The input must be float NCHW with 3 channels; returns (name, dims)."""
    name, dims = input_shape(model)
    elem = model.graph.input[[i.name for i in model.graph.input].index(name)].type.tensor_type.elem_type
    if len(dims) != 4 or dims[1] != 3 or elem != 1:  # 1 = FLOAT
        raise EdgeRuntimeError("%s: input %r has shape %s and element type %d; expected float32 NCHW with 3 channels "
                               "(N, 3, H, W): export the model with edge-runtime export" % (where, name, dims, elem))
    return name, dims


def manifest_for(path: PathLike, model: Any) -> Optional[Dict[str, Any]]:
    """The sidecar manifest (hash-checked) if present, else the embedded one (validated), else None."""
    side = mf.sidecar_path(path)
    if side.is_file():
        m = mf.read(side)
        mf.check_hash(path, m)
        return m
    emb = embedded_manifest(model)
    if emb is not None:
        return mf.validate(emb, "%s (embedded manifest)" % path)
    return None
