"""Checkpoints: atomic writes, safe loads (``weights_only=True``), one-line errors."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, Dict

import torch

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import write_bytes_atomic

FORMAT = "edge-runtime.checkpoint/1"


def save(path: Path, payload: Dict[str, Any]) -> None:
    payload = dict(payload)
    payload["format"] = FORMAT
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes_atomic(path, buf.getvalue())


def load(path: Path, map_location: str = "cpu") -> Dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("checkpoint not found: %s; expected a .pt file written by edge-runtime train" % p)
    try:
        ck = torch.load(str(p), map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EdgeRuntimeError("%s is corrupt, truncated or not a safe checkpoint (%s); use last.pt/best.pt of a "
                               "finished run or retrain" % (p, msg[:200])) from None
    except Exception as exc:  # unpickling raises arbitrary types on garbage; all mean "not a checkpoint"
        raise EdgeRuntimeError("%s is not a readable checkpoint (%s: %s); use a .pt file written by edge-runtime "
                               "train" % (p, type(exc).__name__, str(exc)[:200])) from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or "model" not in ck or "manifest" not in ck:
        raise EdgeRuntimeError("%s is a PyTorch file but not an edge-runtime checkpoint (expected format %s with model "
                               "weights and a manifest); train with edge-runtime train" % (p, FORMAT))
    return ck
