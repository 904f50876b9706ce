"""Calibration sets for INT8: class-balanced, seeded subsets of a TRAIN split (never the test split).

  make   write calib/<dataset>-train-<N>.npz (uint8 images + labels) and its .npz.json (source indices,
         class names, seed, sha256); the same dataset, seed and count give the same bytes everywhere
  show   check a set (hash, shapes) and print its description

Examples:
  edge-runtime calib make --dataset cifar10 --per-class 100 --data-dir ~/data
  edge-runtime calib make --dataset cifar100 --per-class 10 --seed 0 --out calib/
  edge-runtime calib show calib/cifar10-train-1000.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="calib_command", metavar="ACTION", parser_class=type(p))
    mk = sub.add_parser("make", help="make a calibration set from the train split")
    mk.add_argument("--dataset", choices=["cifar10", "cifar100"], required=True)
    mk.add_argument("--per-class", type=flag_type(int, lo=1), default=100, help="images per class (default 100)")
    mk.add_argument("--seed", type=flag_type(int, lo=0), default=0, help="selection seed (default 0)")
    mk.add_argument("--data-dir", type=Path, default=None, help="dataset root (default $EDGE_RUNTIME_DATA)")
    mk.add_argument("--out", type=Path, default=Path("calib"), help="output folder (default calib/)")
    mk.add_argument("--force", action="store_true", help="replace an existing set")
    sh = sub.add_parser("show", help="check and describe a calibration set")
    sh.add_argument("path", type=Path)


def run(args: argparse.Namespace) -> int:
    from .. import calib
    from ..errors import EdgeRuntimeError
    from ..manifest import sidecar_path

    if args.calib_command == "make":
        from ..fsio import check_writable

        check_writable(args.out, "--out", directory=True)  # before reading the dataset
        out = calib.make(args.dataset, args.per_class, args.seed, args.data_dir, args.out, args.force, command_line(args))
        cs = calib.load(out)
        print("wrote %s (%d images, %d per class, seed %d, sha256 %s) and %s" % (
            out, len(cs), args.per_class, args.seed, cs.meta["sha256"][:16], sidecar_path(out)))
        return 0
    if args.calib_command == "show":
        cs = calib.load(args.path)
        m = cs.meta
        print("%s: %d images from %s %s split, %d classes, %s per class, seed %s, sha256 %s (verified)" % (
            cs.path, len(cs), m["dataset"], m["split"], m["num_classes"], m["per_class"], m["seed"], m["sha256"][:16]))
        return 0
    raise EdgeRuntimeError("calib needs an action: make or show (see edge-runtime calib --help)")
