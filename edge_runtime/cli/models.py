"""The model zoo: parameters, multiply-adds at 32x32, and the depthwise-separable saving.

Columns:
  params      trainable parameters (10 classes)
  MACs        multiply-adds of one 32x32 forward pass, counted by torch's FLOP counter
  sep/std     depthwise-separable vs standard-conv multiplies (paper Fig. 8): measured over the
              model's (depthwise, 1x1) pairs, and the formula 1/N + 1/Dk^2 averaged over them
  latency     with --latency: batch-1 eager PyTorch latency on this CPU, measured as `edge-runtime bench` does:
              --rounds interleaved rounds (every model timed in each round, the order reversed every other
              round, so a load change on a shared machine hits all models alike); the figure is the median
              of the rounds' medians, with the spread of the round medians beside it. The machine, its
              load average and the threads are printed first; progress goes to stderr.

Examples:
  edge-runtime models
  edge-runtime models --latency --rounds 7 --threads 1
  edge-runtime models --latency --format json
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List

from ..config import flag_type
from ..errors import EdgeRuntimeError
from . import require_train_extras


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency", action="store_true",
                   help="also measure batch-1 CPU latency (interleaved rounds, medians; about 1.5 s per model "
                        "and round)")
    p.add_argument("--rounds", type=flag_type(int, lo=1), default=5, metavar="N",
                   help="with --latency: interleaved rounds (default 5)")
    p.add_argument("--seconds", type=flag_type(float, lo=0, lo_open=True), default=0.5, metavar="S",
                   help="with --latency: timed seconds per model and round after 0.2 s of warm-up (default 0.5)")
    p.add_argument("--threads", type=flag_type(int, lo=0), default=1, metavar="N",
                   help="with --latency: torch CPU threads (default 1, as bench; 0: torch's default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar/lines on stderr")
    p.add_argument("--num-classes", type=flag_type(int, lo=2), default=10, help="classifier width (default 10)")
    p.add_argument("--format", choices=["markdown", "json"], default="markdown", help="output format")
    p.add_argument("names", nargs="*", help="only these models (default: all)")


def _latency(models: Dict[str, Any], args: argparse.Namespace) -> Dict[str, Any]:
    """Interleaved rounds over every model (edge_runtime.bench.statistics.interleaved), with the evidence."""
    import torch

    from ..bench.artifacts import Progress
    from ..bench.probe import machine
    from ..bench.statistics import Timing, interleaved

    if args.threads:
        torch.set_num_threads(args.threads)
    timing = Timing(warmup_s=0.2, duration_s=args.seconds, min_iterations=5)
    m = machine()
    ev = {"cpu": m["cpu"], "cores": m["cores"], "loadavg": m["loadavg"], "torch_threads": torch.get_num_threads(),
          "rounds": args.rounds, "seconds_per_round": args.seconds,
          "method": "batch-1 eager forward of a 1x3x32x32 input under torch.no_grad; %d interleaved rounds (order "
                    "reversed every other round), %.2f s timed per model and round after 0.2 s warm-up; median of "
                    "the round medians" % (args.rounds, args.seconds)}
    sys.stderr.write("models --latency: %s, %s cores, load average %s, torch threads %d, %d rounds x %d models "
                     "(~%.0f s)\n" % (m["cpu"], m["cores"], " ".join("%.2f" % x for x in m["loadavg"] or []),
                                      ev["torch_threads"], args.rounds, len(models),
                                      args.rounds * len(models) * (args.seconds + 0.25)))
    if m["loadavg"] and m["cores"] and m["loadavg"][0] > 0.5 * m["cores"]:
        sys.stderr.write("warning: load average %.2f on %d cores: other processes compete for the CPU; the "
                         "interleaved medians share the load fairly, absolute figures are inflated\n"
                         % (m["loadavg"][0], m["cores"]))
    x = torch.randn(1, 3, 32, 32)
    fns = []
    for name, net in models.items():
        net.eval()
        fns.append((name, (lambda n: lambda: n(x))(net)))
    bar = Progress(args.rounds * len(models), "models --latency", not args.no_progress)
    with torch.no_grad():
        res = interleaved(fns, args.rounds, timing,
                          on_round=lambda r, name, med: bar.step("round %d %s %.2f ms" % (r + 1, name, med)))
    bar.close()
    ev["loadavg_end"] = machine()["loadavg"]
    return {"evidence": ev, "per_model": res}


def _check(args: argparse.Namespace) -> None:
    """Bad --latency settings fail before any model is built."""
    if args.rounds < 1:
        raise EdgeRuntimeError("--rounds must be >= 1; got %d" % args.rounds)
    if args.threads < 0:
        raise EdgeRuntimeError("--threads must be >= 0 (0: torch's default); got %d" % args.threads)
    if not args.seconds > 0:
        raise EdgeRuntimeError("--seconds must be > 0; got %g" % args.seconds)


def run(args: argparse.Namespace) -> int:
    _check(args)
    require_train_extras()

    from train.models import create_model, get_entry, list_models
    from train.models.profile import count_macs, count_params, separable_ratio

    names = args.names or list_models()
    for n in names:
        get_entry(n)  # unknown names fail here, listing the known ones
    rows: List[Dict[str, Any]] = []
    nets: Dict[str, Any] = {}
    for n in names:
        m = create_model(n, num_classes=args.num_classes)
        sep = separable_ratio(m)
        rows.append({"name": n, "params": count_params(m), "macs": count_macs(m),
                     "sep_ratio_measured": None if sep is None else round(sep["measured"], 4),
                     "sep_ratio_formula": None if sep is None else round(sep["formula"], 4),
                     "description": get_entry(n).description})
        nets[n] = m
    lat = _latency(nets, args) if args.latency else None
    if lat is not None:
        for r in rows:
            pm = lat["per_model"][r["name"]]
            r["cpu_latency_ms"] = round(pm["median_ms"], 3)
            r["cpu_latency_round_medians_ms"] = [round(v, 3) for v in pm["round_medians_ms"]]
            r["cpu_latency_p90_ms"] = round(pm["pooled"]["p90_ms"], 3)
    if args.format == "json":
        print(json.dumps(rows if lat is None else {"models": rows, "latency": lat["evidence"]}, indent=2))
        return 0
    head = "| model | params | MACs | sep/std measured | 1/N+1/Dk^2 |" + (
        " CPU ms (b=1, median) | rounds min-max |" if lat else "") + " description |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    fmt = lambda v: "-" if v is None else "%.3f" % v  # noqa: E731
    for r in rows:
        cells = (" %.2f | %.2f-%.2f |" % (r["cpu_latency_ms"], min(r["cpu_latency_round_medians_ms"]),
                                          max(r["cpu_latency_round_medians_ms"]))) if lat else ""
        print("| %s | %.2f M | %.1f M | %s | %s |%s %s |" % (r["name"], r["params"] / 1e6, r["macs"] / 1e6,
                                                         fmt(r["sep_ratio_measured"]), fmt(r["sep_ratio_formula"]),
                                                         cells, r["description"]))
    if lat:
        ev = lat["evidence"]
        print("\nLatency: %s. Machine: %s, %s cores, torch threads %d, load average %s at the start, %s at the end." % (
            ev["method"], ev["cpu"], ev["cores"], ev["torch_threads"],
            " ".join("%.2f" % v for v in ev["loadavg"] or []), " ".join("%.2f" % v for v in ev["loadavg_end"] or [])))
    return 0
