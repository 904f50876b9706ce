"""Run a grid of trainings from a YAML file and tabulate them like the paper's Table 1 (resumable).

Examples:
  edge-runtime experiment train/configs/paper_table1.yaml                         # the paper's grid, full budget
  edge-runtime experiment train/configs/paper_table1.yaml --epochs 1 --subset 2000  # a CPU budget run (minutes)
  edge-runtime experiment train/configs/strong.yaml --out runs/strong             # one strong recipe per model
  edge-runtime experiment my_grid.yaml --device cpu --data-dir /data/cifar --quiet

Each run trains into OUT/<run label>. Run the same command again to continue: finished runs are
skipped, an interrupted one resumes from its last.pt. --epochs/--subset/--data-dir/--device override
every row; a folder trained with other --epochs/--subset is refused (pick another --out).
Default OUT: runs/experiments/<grid name>, plus -epochsN/-subsetN when those are overridden.
In OUT: results.md (the table, printed at the end), results.json, summary.png, one folder per run.
Grid format (name, defaults, runs:/grid:, label, paper_top1): see train/experiments.py.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any, Dict, List

from ..config import flag_type
from . import require_train_extras


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("grid", metavar="GRID.yaml", help="the experiment grid (see train/configs/paper_table1.yaml)")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/experiments/<grid name>[-epochsN][-subsetN])")
    p.add_argument("--epochs", type=flag_type(int, lo=1), metavar="N",
                   help="train every run for N epochs (overrides the grid)")
    p.add_argument("--subset", type=flag_type(int, lo=1), metavar="N",
                   help="use N random train (and N test) images in every run")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding cifar-10-batches-py/ or cifar-100-python/")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="device for every run (overrides the grid)")
    p.add_argument("--quiet", action="store_true", help="no progress bars: one log line per epoch")


def _default_out(name: str, args: argparse.Namespace) -> str:
    from train.experiments import slugify

    out = "runs/experiments/" + slugify(name)
    if args.epochs is not None:
        out += "-epochs%d" % args.epochs
    if args.subset is not None:
        out += "-subset%d" % args.subset
    return out


def _command(args: argparse.Namespace, out: str) -> str:
    parts: List[str] = ["edge-runtime", "experiment", args.grid, "--out", out]
    for flag, value in (("--epochs", args.epochs), ("--subset", args.subset), ("--data-dir", args.data_dir),
                        ("--device", args.device)):
        if value is not None:
            parts += [flag, str(value)]
    if args.quiet:
        parts.append("--quiet")
    return " ".join(shlex.quote(p) for p in parts)


def _duration(seconds: float) -> str:
    m = int(round(seconds / 60.0))
    return "%d s" % seconds if seconds < 60 else ("%d min" % m if m < 60 else "%d h %02d min" % (m // 60, m % 60))


def _on_event(kind: str, info: Dict[str, Any]) -> None:
    pos = "[%d/%d]" % (info["index"], info["total"]) if info.get("total") else "[%d]" % info["index"]
    eta = info.get("eta_s")
    left = "" if not eta else "; about %s left in the grid" % _duration(eta)  # None: nothing measured yet; 0: the end
    if kind == "train":
        print("%s %s: training %d epoch%s -> %s%s" % (pos, info["label"], info["epochs"], "" if info["epochs"] == 1 else "s",
                                                     info["out"], left), flush=True)
    elif kind == "resume":
        print("%s %s: resuming after epoch %d of %d -> %s%s" % (pos, info["label"], info["from_epoch"], info["epochs"],
                                                               info["out"], left), flush=True)
    elif kind == "skip":
        print("%s %s: finished earlier, skipped (%s)" % (pos, info["label"], info["out"]), flush=True)
    elif kind == "done":
        top1 = info.get("top1")
        secs = info.get("seconds")
        print("%s %s: done, top-1 %s%s%s" % (pos, info["label"], "-" if top1 is None else "%.2f %%" % top1,
                                            "" if secs is None else " in %s" % _duration(float(secs)), left), flush=True)


def run(args: argparse.Namespace) -> int:
    require_train_extras()
    from pathlib import Path

    from train.experiment_report import render_markdown
    from train.experiments import load_grid, run_grid

    grid = load_grid(args.grid, epochs=args.epochs, subset=args.subset, data_dir=args.data_dir, device=args.device)
    out = args.out or _default_out(grid.name, args)
    print("%s: %d runs -> %s" % (grid.name, len(grid.runs), out), flush=True)
    command = _command(args, out)
    rows = run_grid(args.grid, out, epochs=args.epochs, subset=args.subset, data_dir=args.data_dir, device=args.device,
                    progress=not args.quiet, command=command, on_event=_on_event)
    sys.stdout.write("\n" + render_markdown(grid.name, rows, command))
    print("\nwrote %s, %s, %s" % (Path(out) / "results.md", Path(out) / "results.json", Path(out) / "summary.png"))
    return 0
