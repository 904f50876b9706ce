"""Exploratory data analysis: summary statistics, sample grid, PCA and t-SNE plots.

Writes into --out (default runs/eda-<dataset>):
  summary.json, summary.md   image size and counts, per-channel mean/std (0-1 and 0-255) of train
                             and test, pixel statistics, class (and superclass) counts, PCA numbers
  samples.png                random train images per class (CIFAR-100: one row per superclass)
  pca_variance.png           cumulative explained variance, components for 90/95/99 % marked
  pca_scatter.png            train images on the first two principal components
  tsne.png                   t-SNE of a random train subset (on its top-50 PCA components)

PCA and t-SNE use seeded random samples of the train split, pixels scaled to [0, 1].
CIFAR-100 points are coloured by superclass. The full CIFAR-10 run takes about two minutes on
2 CPU cores (mostly PCA and t-SNE).

Examples:
  edge-runtime eda --dataset cifar10
  edge-runtime eda --dataset cifar100 --data-dir /data --out runs/eda-c100
  edge-runtime eda --dataset cifar10 --tsne-samples 500 --pca-samples 2000 --quiet   # quick look
"""
from __future__ import annotations

import argparse
from typing import Any, Dict, List

from ..config import flag_type
from . import require_train_extras


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", choices=["cifar10", "cifar100"], required=True)
    p.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ or cifar-100-python/ "
                                      "(default $EDGE_RUNTIME_DATA, else ~/.cache/edge-runtime/data)")
    p.add_argument("--out", help="output folder (default runs/eda-<dataset>)")
    p.add_argument("--tsne-samples", type=flag_type(int, lo=5), default=2000, metavar="N",
                   help="random train images for t-SNE (default 2000; at least 5)")
    p.add_argument("--pca-samples", type=flag_type(int, lo=3), default=10000, metavar="N",
                   help="random train images to fit PCA on (default 10000; at least 3)")
    p.add_argument("--seed", type=flag_type(int, lo=0), default=0, help="seed of every random choice (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _table(summary: Dict[str, Any]) -> List[str]:
    rows = ["| split | images | mean RGB (0-1) | std RGB (0-1) | classes min..max |", "|---|---:|---|---|---|"]
    for split in ("train", "test"):
        s = summary[split]
        rows.append("| %s | %d | %s | %s | %d..%d |" % (
            split, s["images"], " ".join("%.4f" % v for v in s["channels"]["mean"]),
            " ".join("%.4f" % v for v in s["channels"]["std"]), s["class_count_min"], s["class_count_max"]))
    marks = summary["pca"]["components_for"]
    rows.append("")
    rows.append("PCA components for 90/95/99 %% variance: %s" % " / ".join(str(marks[k]) for k in ("90", "95", "99")))
    return rows


def run(args: argparse.Namespace) -> int:
    require_train_extras()
    from pathlib import Path

    from train.data import load
    from train.eda import run_eda

    from ..fsio import check_writable

    out = check_writable(Path(args.out) if args.out else Path("runs") / ("eda-" + args.dataset), "--out",
                         directory=True)
    data = load(args.dataset, args.data_dir)
    summary = run_eda(data, out, tsne_samples=args.tsne_samples, pca_samples=args.pca_samples, seed=args.seed,
                      progress=not args.quiet)
    print("summary: %s" % summary["files"]["summary_md"])
    for line in _table(summary):
        print(line)
    return 0
