"""A fake Runner that hangs, for the stop/hang tests (importable by their subprocesses: numpy and edge_runtime
only, no torch)."""
from __future__ import annotations

import threading
import time
from typing import Any, Optional

import numpy as np

from edge_runtime import manifest as mf
from edge_runtime.backends import Runner
from edge_runtime.config import parse_config

CLASSES = ["c%d" % i for i in range(10)]
MANIFEST = mf.new("onnx", {"name": "fake"}, mf.make_dataset("cifar10", CLASSES),
                  mf.make_preprocess((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)))


class BlockingRunner(Runner):
    """GO (a confident c8, the rule's class) for ``good`` frames, then every infer blocks until ``release`` is set (at most 20 s)."""

    name = "blocking"

    def __init__(self, good: int = 5) -> None:
        super().__init__()
        self.good = good
        self.calls = 0
        self.release = threading.Event()
        self.hung_at: Optional[float] = None
        self.returned = threading.Event()
        self.input_shape = ["batch", 3, 32, 32]

    def _activate(self) -> None:
        pass

    def _infer(self, x: np.ndarray) -> np.ndarray:
        z = np.zeros((len(x), 10), np.float32)
        z[:, 8] = 8.0  # c8: GO
        if not x.any():  # the runtime's warm-up call
            return z
        self.calls += 1
        if self.calls > self.good:
            self.hung_at = time.monotonic()
            self.release.wait(20.0)
            self.returned.set()
        return z


def config() -> Any:
    return parse_config({"policy": {"default_action": "SLOW", "rules": [
        {"name": "clear", "action": "GO", "classes": ["c8"], "min_confidence": 0.5}],
        "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
        "timeouts": {"source_timeout_ms": 200, "max_frame_age_ms": 1000, "deadline_ms": 5000}},
        "sinks": []}, origin="test.yaml")
