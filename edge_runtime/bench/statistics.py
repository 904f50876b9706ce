"""Latency statistics: ONE summary (``p50_ms``, ``p90_ms``, ...) for every place latency is summarized (bench,
the runtime's metrics, evaluate), and timing of repeated calls. numpy and the stdlib only."""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import EdgeRuntimeError

PERCENTILES = (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99))


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long to measure: warm-up seconds, then ``iterations`` calls if given, else ``duration_s`` seconds."""

    warmup_s: float = 1.0
    duration_s: float = 3.0
    iterations: Optional[int] = None
    min_iterations: int = 10

    def __post_init__(self) -> None:
        if not (self.duration_s > 0):
            raise EdgeRuntimeError("--duration must be > 0 seconds; got %g" % self.duration_s)
        if self.warmup_s < 0:
            raise EdgeRuntimeError("--warmup must be >= 0 seconds; got %g" % self.warmup_s)
        if self.iterations is not None and self.iterations < 1:
            raise EdgeRuntimeError("--iterations must be >= 1; got %d" % self.iterations)


QUICK = Timing(warmup_s=0.05, duration_s=0.25, min_iterations=5)

def latency_stats(ms: "Sequence[float] | np.ndarray", batch: int = 1) -> Dict[str, Any]:
    """min/mean/median/p90/p95/p99/max of per-call times in ms; ``fps`` = images per second = batch*1000/mean."""
    a = np.asarray(ms, np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    s: Dict[str, Any] = {"n": int(a.size), "batch": int(batch), "min_ms": float(a.min()), "mean_ms": float(a.mean())}
    for name, q in PERCENTILES:
        s["%s_ms" % name] = float(np.percentile(a, q))
    s["median_ms"] = s["p50_ms"]
    s["max_ms"] = float(a.max())
    s["std_ms"] = float(a.std())
    s["ms_per_image"] = s["mean_ms"] / batch
    s["fps"] = batch * 1000.0 / s["mean_ms"]
    s["throughput_ips"] = s["fps"]
    return s


def time_calls(fn: Callable[[], Any], timing: Timing) -> List[float]:
    """Warm up for ``timing.warmup_s``, then per-call wall times in ms (``perf_counter``)."""
    t_end = time.perf_counter() + timing.warmup_s
    fn()
    while time.perf_counter() < t_end:
        fn()
    out: List[float] = []
    if timing.iterations is not None:
        for _ in range(timing.iterations):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
        return out
    t_end = time.perf_counter() + timing.duration_s
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out.append((t1 - t0) * 1e3)
        if t1 >= t_end and len(out) >= timing.min_iterations:
            return out

