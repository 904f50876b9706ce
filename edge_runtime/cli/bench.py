"""Benchmark: latency, FPS and accuracy on this hardware, with the evidence (machine, versions, load, clocks).

Modes:
  engine ARTIFACT      like trtexec: random input, warm-up, --duration or --iterations per --batch size;
                       min/mean/median/p90/p95/p99/max and throughput. --vs-bare: the ONNX Runtime runner
                       against a bare InferenceSession.run on the same input (runner overhead). TensorRT
                       engines only: --split (H2D/compute/D2H with CUDA events), --cuda-graph.
  e2e SOURCE           the loop as `edge-runtime run` runs it (file, camera URI, synthetic://): capture->decision
                       latency (p90 headline), per-stage times, achieved vs source FPS, stale/dropped frames.
  compare [ARTIFACT..] one row per artifact (default: the bundled MobileNetV2 x0.5 FP32/INT8/FP16 ONNX and its
                       .pt): size, params, MACs, accuracy (manifest, or measured with --accuracy --limit N),
                       ms per image, FPS, p99, memory; TensorRT rows say "not available here" without it.

Every run prints a table (format, status, size MB, accuracy, who measured it, ms/image, FPS, p99, peak RSS) and,
with --out DIR, writes bench-<mode>.json/.csv/.md/.png. The PNG compares the rows when there are two or more
(median bars with p90/p99 marks; accuracy against latency when two artifacts have one), else shows the one row's
latency histogram and CDF. --quick: a short smoke run.

Accuracy, one source per table: with compare --accuracy every row is measured here by its own backend on the
same test images; otherwise each row quotes its artifact's own measured figure and the "accuracy measured by"
column names the backend that measured it (an FP32 ONNX exported from a checkpoint quotes PyTorch's figure).
bench e2e quotes none ("not measured on this source") unless the source has ground truth: a video with a
scenario JSON beside it (deploy/demo/cifar10-demo.mp4 + .json) is scored frame by frame (top-1 of each decided
frame, by the backend that ran).
Threads default to 1 (the runtime's default at batch 1). Numbers are from this machine only.

Examples:
  edge-runtime bench engine engines/bundled/mobilenetv2_cifar_x0_5.onnx --duration 10 --vs-bare --out runs/bench
  edge-runtime bench engine model.onnx --batch 1 8 32 --iterations 500
  edge-runtime bench e2e deploy/demo/cifar10-demo.mp4 --duration 20 --out runs/bench
  edge-runtime bench e2e csi://0 --model engines/mnv2.fp16.engine --duration 60
  edge-runtime bench compare --quick --out runs/bench
  edge-runtime bench compare a.onnx b.onnx c.pt --accuracy --limit 1000 --data-dir /data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RunConfig, SourceConfig, flag_type
from ..errors import EdgeRuntimeError
from ._common import command_line

if TYPE_CHECKING:
    from ..bench import Timing


def _common(p: argparse.ArgumentParser, timing: bool = True) -> None:
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="write bench-<mode>.json/.csv/.md/.png here")
    p.add_argument("--quick", action="store_true", help="a short smoke run (fractions of a second per row)")
    p.add_argument("--threads", type=flag_type(int, lo=0), default=1, help="CPU threads for ONNX Runtime / PyTorch (default 1; 0: theirs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar/lines on stderr")
    if timing:
        p.add_argument("--warmup", type=flag_type(float, lo=0), default=1.0, metavar="S", help="warm-up seconds (default 1)")
        p.add_argument("--duration", type=flag_type(float, lo=0, lo_open=True), default=3.0, metavar="S", help="timed seconds per row (default 3)")
        p.add_argument("--iterations", type=flag_type(int, lo=1), default=None, metavar="N", help="timed calls per row (instead of --duration)")


def _batches(text: str) -> list:
    """``8`` or ``1,2,4,8,16`` -> [8] / [1, 2, 4, 8, 16]."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected batch sizes like 8 or 1,2,4,8,16, got %r" % text) from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be >= 1, got %r" % text)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="mode", metavar="MODE")
    e = sub.add_parser("engine", help="latency percentiles and throughput of one artifact (like trtexec)")
    e.add_argument("artifact", type=Path, help=".onnx, .pt or .engine")
    e.add_argument("--batch", type=_batches, nargs="+", default=[[1]], metavar="N",
                   help="batch sizes: 1 8 or 1,2,4,8,16 (default 1); a model with a fixed batch of 1 is called in "
                        "slices, as the runtime does")
    e.add_argument("--vs-bare", action="store_true", help="also time a bare InferenceSession.run (ONNX only)")
    e.add_argument("--split", action="store_true", help="TensorRT only: H2D/compute/D2H split with CUDA events")
    e.add_argument("--cuda-graph", action="store_true", help="TensorRT only: replay the compute as a CUDA graph")
    _common(e)
    r = sub.add_parser("e2e", help="the runtime loop on a real source: capture->decision latency, FPS")
    r.add_argument("source", nargs="+", metavar="SOURCE",
                   help="video file, camera URI (csi://0, /dev/video0, rtsp://...) or synthetic://; several (NAME=URI) "
                        "for several cameras batched into one inference (with the config's sources:/regions:)")
    r.add_argument("--model", type=Path, default=None,
                   help="artifact (default: what edge-runtime run runs, the bundled INT8 CPU ONNX)")
    r.add_argument("--config", type=Path, default=None, help="runtime YAML (default deploy/configs/vehicle.yaml)")
    r.add_argument("--duration", type=flag_type(RunConfig, "duration_s"), default=10.0, metavar="S", help="seconds to run (default 10)")
    r.add_argument("--max-frames", type=flag_type(RunConfig, "max_frames"), default=None, metavar="N", help="end after N frames")
    r.add_argument("--rate", type=flag_type(SourceConfig, "rate"), default=None, metavar="FPS",
                   help="pace a file at FPS (default: its own FPS; 0: as fast as the loop takes frames)")
    _common(r, timing=False)
    c = sub.add_parser("compare", help="backends, precisions and models side by side")
    c.add_argument("artifacts", type=Path, nargs="*", help="default: the bundled x0.5 ONNX files and its .pt")
    c.add_argument("--batch", type=flag_type(int, lo=1), default=1, metavar="N", help="batch size (default 1)")
    c.add_argument("--accuracy", action="store_true", help="measure top-1 here instead of quoting the manifests")
    c.add_argument("--limit", type=flag_type(int, lo=1), default=None, metavar="N", help="with --accuracy: the first N test images")
    c.add_argument("--data-dir", type=Path, default=None, help="CIFAR root for --accuracy (default $EDGE_RUNTIME_DATA)")
    _common(c)


def _timing(args: argparse.Namespace) -> "Timing":
    from ..bench import QUICK, Timing

    if args.quick:
        if args.duration <= 0:  # --duration 0 is an error even with --quick
            Timing(duration_s=args.duration)
        return QUICK
    return Timing(warmup_s=args.warmup, duration_s=args.duration, iterations=args.iterations)


def run(args: argparse.Namespace) -> int:
    from .. import bench

    if not getattr(args, "mode", None):
        raise EdgeRuntimeError("bench needs a mode: engine, e2e or compare (see edge-runtime bench --help)")
    cmd = command_line(args)
    threads = args.threads or None
    progress = not args.no_progress
    if args.mode == "engine":
        batches = [b for group in args.batch for b in group]
        rep = bench.bench_engine(args.artifact, batches, _timing(args), threads, vs_bare=args.vs_bare,
                                 cuda_graph=args.cuda_graph, split=args.split, progress=progress, command=cmd)
    elif args.mode == "e2e":
        if not args.duration > 0:
            raise EdgeRuntimeError("--duration must be > 0 seconds; got %g" % args.duration)
        from ..config import load_config
        from .run import default_model

        cfg = load_config(args.config or bench.DEFAULT_CONFIG)  # as `edge-runtime run` picks its model
        model = args.model or cfg.model.path or default_model(cfg.model.backend, bool(cfg.regions or cfg.sources or
                                                                                       len(args.source) > 1))
        duration = min(args.duration, 2.0) if args.quick else args.duration
        rep = bench.bench_e2e(args.source, model, args.config, duration, args.max_frames, args.rate, threads,
                              args.out, progress, cmd)
    else:
        if args.limit is not None and not args.accuracy:
            raise EdgeRuntimeError("--limit goes with --accuracy (measure top-1 on the first N test images)")
        rep = bench.bench_compare(args.artifacts, args.batch, _timing(args), threads,
                                  (args.limit or 10000) if args.accuracy else None, args.data_dir, progress, cmd)
    print(bench.format_table(rep))
    d = rep["details"]
    if "vs_bare" in d:
        v = d["vs_bare"]
        print("runner overhead vs bare InferenceSession.run: %+.4f ms median (%+.2f %%), allowed %.3f ms: goal %s" % (
            v["overhead_median_ms"], v["overhead_median_pct"], v["allowed_ms"], "met" if v["goal_met"] else "NOT met"))
    if "headline" in d:
        print("%s; %.1f FPS achieved (source %s); stale %d, dropped %d" % (
            d["headline"], d["achieved_fps"], d["source_fps"] or "-", d["stale_frames"], d["dropped_frames"]))
    for sp in d.get("speedup_vs_pytorch_eager", []):
        print("PyTorch eager / ONNX Runtime FP32 (%s): %.1fx on means, %.1fx on medians" % (
            sp["model"], sp["ratio"], sp["ratio_median"]))
    ev = rep["evidence"]
    print("evidence: %s, %s cores, %s, Python %s, onnxruntime %s, torch %s, TensorRT %s, load %s" % (
        ev["cpu"], ev["cores"], ev["os"], ev["python"], ev["onnxruntime"], ev["torch"], ev["tensorrt"],
        " ".join("%.2f" % x for x in ev["loadavg"] or [])))
    for w in rep["warnings"]:
        sys.stderr.write("warning: %s\n" % w)
    if args.out is not None:
        for f in bench.write_outputs(rep, args.out):
            print("wrote %s" % f)
    return 0
