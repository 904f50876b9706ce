"""Checkpoints: atomic writes, safe loads (``weights_only=True``), one-line errors; and what exact resume needs.

``last.pt`` holds the weights, optimizer, position in the schedule, RNG states and history; saved
mid-epoch (on SIGINT/SIGTERM, at a step boundary) it also holds ``partial``: the epoch, the next batch,
the epoch's running tallies and RNG state, so ``--resume`` continues with exactly the same steps.
"""
from __future__ import annotations

import io
import signal
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

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
        # first sentence only: torch's "weights only load failed" text goes on to suggest weights_only=False, which
        # would run the file's pickled code
        first = (str(exc).split(". ")[0] or type(exc).__name__)[:160]
        raise EdgeRuntimeError("%s is not a readable checkpoint (%s: %s); use a .pt file written by edge-runtime "
                               "train" % (p, type(exc).__name__, first)) from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or "model" not in ck or "manifest" not in ck:
        raise EdgeRuntimeError("%s is a PyTorch file but not an edge-runtime checkpoint (expected format %s with model "
                               "weights and a manifest); train with edge-runtime train" % (p, FORMAT))
    return ck


def rng_state(device: torch.device) -> Dict[str, Any]:
    st: Dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def set_rng_state(st: Dict[str, Any], device: torch.device) -> None:
    if "torch" in st:
        torch.set_rng_state(st["torch"].cpu())
    if device.type == "cuda" and "cuda" in st:
        torch.cuda.set_rng_state(st["cuda"].cpu(), device)


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped training at a step boundary after ``last.pt`` was saved there (``--resume`` continues)."""


class StopOnSignal:
    """SIGINT/SIGTERM during training ask the loop to stop at the next step boundary (a second one acts at once).

    Installed only in the main thread of a single process: under torchrun the ranks could see the
    signal at different steps, so there an interrupted run resumes from its last finished epoch.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: Optional[int] = None
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "StopOnSignal":
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self._restore()

    def _restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __exit__(self, *exc: Any) -> None:
        self._restore()
