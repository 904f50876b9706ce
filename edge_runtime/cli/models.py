"""The model zoo: parameters, multiply-adds at 32x32, and the depthwise-separable saving.

Columns:
  params      trainable parameters (10 classes)
  MACs        multiply-adds of one 32x32 forward pass, counted by torch's FLOP counter
  sep/std     depthwise-separable vs standard-conv multiplies (paper Fig. 8): measured over the
              model's (depthwise, 1x1) pairs, and the formula 1/N + 1/Dk^2 averaged over them
  latency     with --latency: batch-1 eager CPU latency, median of 50 runs (this machine)

Examples:
  edge-runtime models
  edge-runtime models --latency --format json
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

from . import require_train_extras


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--latency", action="store_true", help="also measure batch-1 CPU latency (takes a minute)")
    p.add_argument("--num-classes", type=int, default=10, help="classifier width (default 10)")
    p.add_argument("--format", choices=["markdown", "json"], default="markdown", help="output format")
    p.add_argument("names", nargs="*", help="only these models (default: all)")


def run(args: argparse.Namespace) -> int:
    require_train_extras()
    import torch

    from train.models import create_model, get_entry, list_models
    from train.models.profile import count_macs, count_params, cpu_latency_ms, separable_ratio

    names = args.names or list_models()
    for n in names:
        get_entry(n)  # unknown names fail here, listing the known ones
    rows: List[Dict[str, Any]] = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for n in names:
        m = create_model(n, num_classes=args.num_classes)
        sep = separable_ratio(m)
        row = {"name": n, "params": count_params(m), "macs": count_macs(m),
               "sep_ratio_measured": None if sep is None else round(sep["measured"], 4),
               "sep_ratio_formula": None if sep is None else round(sep["formula"], 4),
               "description": get_entry(n).description}
        if args.latency:
            row["cpu_latency_ms"] = round(cpu_latency_ms(m)["median_ms"], 3)
        rows.append(row)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    head = "| model | params | MACs | sep/std measured | 1/N+1/Dk^2 |" + (" CPU ms (b=1) |" if args.latency else "") + " description |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:  # type: Dict[str, Any]
        lat = (" %.2f |" % r["cpu_latency_ms"]) if args.latency else ""
        fmt = lambda v: "-" if v is None else "%.3f" % v  # noqa: E731
        print("| %s | %.2f M | %.1f M | %s | %s |%s %s |" % (r["name"], r["params"] / 1e6, r["macs"] / 1e6,
                                                         fmt(r["sep_ratio_measured"]), fmt(r["sep_ratio_formula"]), lat, r["description"]))
    return 0
