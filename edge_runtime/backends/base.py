"""The Runner contract: activate / infer / deactivate, used as a context manager."""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from ..errors import EdgeRuntimeError


class Runner:
    """Base class. Subclasses implement ``_activate``, ``_infer`` (float32 NCHW -> float32 logits), ``_deactivate``.

    ``input_shape`` is ``[N, 3, H, W]`` with ``N`` an int (fixed batch) or a string (dynamic).
    """

    name = "runner"

    def __init__(self) -> None:
        self.active = False
        self.input_shape: List[Any] = []

    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    def activate(self) -> None:
        if not self.active:
            self._activate()
            self.active = True

    def deactivate(self) -> None:
        if self.active:
            self._deactivate()
            self.active = False

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
