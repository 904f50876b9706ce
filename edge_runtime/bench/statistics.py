"""Latency statistics: ONE summary (``p50_ms``, ``p90_ms``, ...) for every place latency is summarized (bench,
the runtime's metrics, evaluate), and timing of repeated calls. numpy and the stdlib only."""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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


def summarize(values: "Sequence[float] | np.ndarray", scale: float = 1.0) -> Dict[str, Any]:
    """THE latency summary, used wherever latency is summarized (bench, the runtime's metrics, evaluate):
    ``n, mean_ms, std_ms, min_ms, p50_ms, median_ms (= p50_ms), p90_ms, p95_ms, p99_ms, max_ms`` of
    ``values * scale`` (``scale=1e3`` for seconds). Percentiles: numpy's linear interpolation. ``{}`` when empty."""
    a = np.asarray(values, np.float64) * scale
    if a.size == 0:
        return {}
    qs = np.percentile(a, [q for _, q in PERCENTILES])
    s: Dict[str, Any] = {"n": int(a.size), "mean_ms": float(a.mean()), "std_ms": float(a.std()), "min_ms": float(a.min())}
    for (name, _), v in zip(PERCENTILES, qs):
        s["%s_ms" % name] = float(v)
    s["median_ms"] = s["p50_ms"]
    s["max_ms"] = float(a.max())
    return s


def latency_stats(ms: "Sequence[float] | np.ndarray", batch: int = 1) -> Dict[str, Any]:
    """:func:`summarize` of per-call times in ms, plus ``batch``, ``ms_per_image`` and ``fps`` (= images per second
    = batch*1000/mean)."""
    s = summarize(ms)
    if not s:
        raise ValueError("no samples")
    s["batch"] = int(batch)
    s["ms_per_image"] = s["mean_ms"] / batch
    s["fps"] = batch * 1000.0 / s["mean_ms"]
    s["throughput_ips"] = s["fps"]
    return s


def interleaved(fns: Sequence[Tuple[str, Callable[[], Any]]], rounds: int, timing: Timing,
                on_round: Optional[Callable[[int, str, float], None]] = None) -> Dict[str, Dict[str, Any]]:
    """Time every function in each of ``rounds`` rounds (``timing`` per function per round), the order reversed every
    other round, so a load change on a shared machine hits all of them alike. Per name: ``round_medians_ms``, the
    headline ``median_ms`` (median of the round medians) and ``pooled`` (:func:`summarize` of all samples).
    ``on_round(round, name, median_ms)`` after each function's turn (progress)."""
    if rounds < 1:
        raise EdgeRuntimeError("rounds must be >= 1; got %d" % rounds)
    samples: Dict[str, List[float]] = {n: [] for n, _ in fns}
    meds: Dict[str, List[float]] = {n: [] for n, _ in fns}
    for r in range(rounds):
        for name, fn in (fns if r % 2 == 0 else list(reversed(fns))):
            t = time_calls(fn, timing)
            samples[name].extend(t)
            meds[name].append(float(np.median(t)))
            if on_round is not None:
                on_round(r, name, meds[name][-1])
    return {n: {"round_medians_ms": meds[n], "median_ms": float(np.median(meds[n])), "rounds": rounds,
                "pooled": summarize(samples[n]), "samples_ms": samples[n]} for n, _ in fns}


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

