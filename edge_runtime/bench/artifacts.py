"""Opening an artifact for a benchmark, naming its format, a random input of its shape, and progress lines."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .. import manifest as mf
from ..errors import EdgeRuntimeError
from ..fsio import PathLike


def artifact_manifest(path: Path) -> Optional[Dict[str, Any]]:
    """The sidecar manifest (hash-checked) or None when the artifact has none."""
    return mf.for_artifact(path) if mf.sidecar_path(path).is_file() else None


def open_runner(path: PathLike, threads: Optional[int] = 1) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """(active Runner, manifest or None) through :func:`edge_runtime.backends.load` (the one loader; an ONNX
    without a manifest is allowed here). An artifact its backend cannot load is one line (EdgeRuntimeError)."""
    from ..backends import load

    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("artifact not found: %s; pass an .onnx, .pt or .engine file" % p)
    runner = load(p, threads=threads, require_manifest=False)
    try:
        runner.activate()
    except EdgeRuntimeError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load/pickle errors etc.: the file is not a usable artifact
        raise EdgeRuntimeError("%s cannot load %s (%s: %s); pass a file written by edge-runtime train/export/"
                               "build-engine" % (runner.name, p, type(exc).__name__, str(exc).splitlines()[0][:160]
                                                 if str(exc) else "")) from None
    return runner, runner.manifest


def describe_format(path: Path, runner: Any, man: Optional[Dict[str, Any]]) -> str:
    backend = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch eager", "pytorch": "PyTorch eager",
               "tensorrt": "TensorRT"}.get(runner.name, runner.name)
    prec = str((man or {}).get("precision") or "fp32").upper()
    q = (man or {}).get("quantization")
    layout = q.get("target") if isinstance(q, dict) else None
    if layout is None and ".int8-" in path.name:
        layout = path.name.split(".int8-")[1].split(".")[0]
    if layout is not None and str(layout).upper() == prec:
        layout = None
    return "%s %s%s" % (backend, prec, " (%s layout)" % layout if layout else "")


def check_batch(runner: Any, batch: int, path: Path) -> None:
    if batch < 1:
        raise EdgeRuntimeError("--batch must be >= 1; got %d" % batch)
    fb = runner.fixed_batch
    if fb is not None and batch % fb:  # a multiple is run as batch/fb calls (Runner.infer slices, as the runtime does)
        raise EdgeRuntimeError("%s has a fixed batch of %d (input %s); --batch %d is not a multiple of it: use a "
                               "multiple of %d, or re-export with edge-runtime export --dynamic-batch" % (
                                   path, fb, list(runner.input_shape), batch, fb))


def random_input(runner: Any, batch: int, seed: int = 0) -> np.ndarray:
    shape = [batch] + [int(d) for d in runner.input_shape[1:]]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------------- progress
class Progress:
    """Steps of a long run: tqdm when installed, else one plain line per step on stderr; silent when disabled."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.total, self.desc, self.enabled, self.i = total, desc, enabled, 0
        self.bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
            except ImportError:
                pass

    def step(self, label: str) -> None:
        self.i += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(label[:40])
            self.bar.update(1)
        else:
            sys.stderr.write("%s [%d/%d] %s\n" % (self.desc, self.i, self.total, label))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
