"""The Runner contract: activate / infer / deactivate, used as a context manager.

Every runner carries ``manifest`` (the artifact's truth: classes, preprocessing, precision; ``None`` only for an
artifact without one, e.g. an ONNX file given to ``bench``). :meth:`Runner.activate` checks, once, for every
backend, that the model agrees with its manifest (:func:`check_agreement`): input ``(N, 3, H, W)`` float32 with
``H, W`` = the manifest's preprocessing size, and as many outputs as the manifest has classes. A model that
disagrees is refused at start in one line, instead of a loop that STOPs (``bad_output``) on every frame.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import EdgeRuntimeError


class Runner:
    """Base class. Subclasses implement ``_activate``, ``_infer`` (float32 NCHW -> float32 logits), ``_deactivate``.

    ``_activate`` sets ``input_shape`` (``[N, 3, H, W]``, ``N`` an int for a fixed batch or a string when dynamic),
    ``input_dtype`` and, when the backend knows it without running, ``output_shape``.
    """

    name = "runner"

    def __init__(self, manifest: Optional[Dict[str, Any]] = None) -> None:
        self.active = False
        self.manifest: Optional[Dict[str, Any]] = manifest
        self.input_shape: List[Any] = []
        self.input_dtype = "float32"
        self.output_shape: List[Any] = []

    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    def activate(self) -> None:
        if self.active:
            return
        self._activate()
        self.active = True
        try:
            check_agreement(self)
        except BaseException:
            self.deactivate()
            raise

    def deactivate(self) -> None:
        if self.active:
            self.active = False
            self._deactivate()

    @property
    def fixed_batch(self) -> Optional[int]:
        n = self.input_shape[0] if self.input_shape else None
        return n if isinstance(n, int) else None

    def infer(self, x: np.ndarray) -> np.ndarray:
        if not self.active:
            raise RuntimeError("%s: call activate() (or use `with`) before infer()" % self.name)
        if x.dtype != np.float32 or x.ndim != 4 or list(x.shape[1:]) != list(self.input_shape[1:]):
            raise EdgeRuntimeError("%s: input has dtype %s and shape %s; expected float32 %s" % (
                self.name, x.dtype, tuple(x.shape), self.input_shape))
        fb = self.fixed_batch
        if fb is not None and x.shape[0] != fb:
            return np.concatenate([self._infer(np.ascontiguousarray(x[i:i + fb])) for i in range(0, x.shape[0], fb)])
        return self._infer(np.ascontiguousarray(x))

    def _activate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _infer(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _deactivate(self) -> None:
        pass


def _fmt(shape: List[Any]) -> str:
    return "x".join(str(d) for d in shape) or "?"


def check_agreement(runner: Runner) -> None:
    """Model vs manifest, for every backend, once at activation: input rank/channels/size/dtype and class count.

    Without a manifest only the input's rank and channels are checked. When the backend cannot tell its output
    shape without running (a dynamic output), one probe inference on zeros at batch 1 (or the fixed batch) tells."""
    where = "%s (%s)" % (getattr(runner, "path", None) or "the model", runner.name)
    shp = list(runner.input_shape)
    man = runner.manifest
    pp = (man or {}).get("preprocess") or {}
    size = [int(v) for v in pp.get("size", [])] if pp.get("size") else None
    want = "float32 (N, 3, %s)" % (", ".join(str(v) for v in size) if size else "H, W")
    if len(shp) != 4 or shp[1] != 3 or (size is not None and [d for d in shp[2:]] != size):
        raise EdgeRuntimeError("%s: the model's input is %s; its manifest expects %s; use the model the manifest was "
                               "written for (or pass the right --manifest / re-export it)" % (where, _fmt(shp), want))
    if runner.input_dtype != "float32":
        raise EdgeRuntimeError("%s: the model's input is %s; expected %s (export with FP32 I/O: edge-runtime export / "
                               "quantize keep it)" % (where, runner.input_dtype, want))
    if man is None:
        return
    n_cls = len(man["dataset"]["class_names"])
    out = list(runner.output_shape)
    if len(out) != 2 or not isinstance(out[1], int):
        b = runner.fixed_batch or 1
        out = list(runner._infer(np.zeros([b] + [int(d) for d in shp[1:]], np.float32)).shape)
    if len(out) != 2 or out[1] != n_cls:
        raise EdgeRuntimeError("%s: the model outputs %s scores per image; its manifest (or --labels) names %d classes; "
                               "use the matching manifest/labels or re-export the model" % (where, _fmt(out[1:]) if len(out) > 1
                                                                                             else _fmt(out), n_cls))
