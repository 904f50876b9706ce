"""Benchmarks that state their evidence: engine latency, the end-to-end loop, and backends/models side by side.

Three modes, one report shape (``edge-runtime bench`` is the thin command over them):

- :func:`bench_engine` (like trtexec): random input, warm-up by time, then ``duration_s`` or ``iterations`` of
  timed ``Runner.infer`` calls per batch size; min/mean/median/p90/p95/p99/max and throughput. With
  ``vs_bare`` (ONNX Runtime only) a bare ``InferenceSession.run`` on the same input, interleaved in blocks with
  the runner, gives the runner's overhead (Polygraphy's runner-overhead test). On a TensorRT engine,
  :func:`trt_split` times host-to-device, compute and device-to-host with CUDA events, optionally with the
  compute as a CUDA graph (never run on these machines: no TensorRT here).
- :func:`bench_e2e` (like MLPerf single-stream): a real source through :class:`~edge_runtime.runtime.Runtime`;
  capture->decision latency (p90 is the headline), per-stage times, achieved vs source FPS, stale/dropped frames.
- :func:`bench_compare`: every artifact given (several precisions of one model, or several models), each with
  size, params, MACs, accuracy (its manifest's, or measured with ``accuracy_limit``) and latency.

Every report carries :func:`evidence` (machine, versions, load average, clock state, warnings) and
:func:`resources` (peak resident memory; GPU memory where a GPU is used; power and energy per inference on a
Jetson with jtop). :func:`write_outputs` writes JSON, CSV, markdown and a PNG (rows compared, or one row's latency histogram/CDF).

The stdlib at import (names load their submodule on first use, so ``edge_runtime.bench.probe`` stays
stdlib-only for ``edge-runtime info``); numpy when a mode or statistic is used; onnxruntime, torch, OpenCV, matplotlib, psutil, tqdm, jtop when used.

The package: ``statistics`` (one latency summary), ``probe`` (the one machine probe and every report's
evidence, also used by ``edge-runtime info``), ``artifacts``, ``modes``, ``reports``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> submodule
_WHERE = {
    "Progress": "artifacts", "artifact_manifest": "artifacts", "check_batch": "artifacts",
    "describe_format": "artifacts", "open_runner": "artifacts", "random_input": "artifacts",
    "Resources": "probe", "evidence": "probe", "jetson_state": "probe", "machine": "probe",
    "process_peak_rss_mb": "probe", "rss_mb": "probe",
    "BUNDLED": "modes", "DEFAULT_COMPARE": "modes", "DEFAULT_CONFIG": "modes", "ROOT": "modes",
    "bench_compare": "modes", "bench_config": "modes", "bench_e2e": "modes", "bench_engine": "modes",
    "runner_overhead": "modes", "trt_split": "modes",
    "COLUMNS": "reports", "FORMAT": "reports", "HEADERS": "reports", "NA": "reports", "format_table": "reports",
    "make_report": "reports", "plot_png": "reports", "to_csv": "reports", "to_markdown": "reports",
    "write_outputs": "reports",
    "PERCENTILES": "statistics", "QUICK": "statistics", "Timing": "statistics", "latency_stats": "statistics",
    "summarize": "statistics", "time_calls": "statistics", "interleaved": "statistics",
}
__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .artifacts import Progress, artifact_manifest, check_batch, describe_format, open_runner, random_input
    from .probe import Resources, evidence, jetson_state, machine, process_peak_rss_mb, rss_mb
    from .modes import (BUNDLED, DEFAULT_COMPARE, DEFAULT_CONFIG, ROOT, bench_compare, bench_config, bench_e2e,
                        bench_engine, runner_overhead, trt_split)
    from .reports import (COLUMNS, FORMAT, HEADERS, NA, format_table, make_report, plot_png, to_csv, to_markdown,
                          write_outputs)
    from .statistics import PERCENTILES, QUICK, Timing, interleaved, latency_stats, summarize, time_calls


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module("%s.%s" % (__name__, _WHERE[name])), name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
