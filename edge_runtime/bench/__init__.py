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
Jetson with jtop). :func:`write_outputs` writes JSON, CSV, markdown and a PNG (accuracy vs latency).

numpy and the stdlib at import; onnxruntime, torch, OpenCV, matplotlib, psutil, tqdm, jtop when used.

The package: ``statistics`` (one latency summary), ``evidence`` (one machine probe, also used by ``edge-runtime
info``), ``artifacts``, ``modes``, ``reports``.
"""
from __future__ import annotations

from .artifacts import Progress, artifact_manifest, check_batch, describe_format, open_runner, random_input
from .evidence import Resources, evidence, jetson_state, process_peak_rss_mb, rss_mb
from .modes import (BUNDLED, DEFAULT_COMPARE, DEFAULT_CONFIG, ROOT, bench_compare, bench_config, bench_e2e,
                    bench_engine, runner_overhead, trt_split)
from .reports import COLUMNS, FORMAT, HEADERS, NA, format_table, make_report, plot_png, to_csv, to_markdown, write_outputs
from .statistics import PERCENTILES, QUICK, Timing, latency_stats, time_calls

__all__ = ["BUNDLED", "COLUMNS", "DEFAULT_COMPARE", "DEFAULT_CONFIG", "FORMAT", "HEADERS", "NA", "PERCENTILES", "QUICK",
           "Progress", "ROOT", "Resources", "Timing", "artifact_manifest", "bench_compare", "bench_config", "bench_e2e",
           "bench_engine", "check_batch", "describe_format", "evidence", "format_table", "jetson_state", "latency_stats",
           "make_report", "open_runner", "plot_png", "process_peak_rss_mb", "random_input", "rss_mb", "runner_overhead",
           "time_calls", "to_csv", "to_markdown", "trt_split", "write_outputs"]
