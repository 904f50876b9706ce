"""Train a CIFAR-10/100 classifier; writes checkpoints, metrics, curves and a manifest.

Examples:
  edge-runtime train --model lenet5 --epochs 30 --out runs/lenet5
  edge-runtime train --config train/configs/recipes/mobilenetv2_paper.yaml --out runs/mnv2p
  edge-runtime train --out runs/mnv2p --resume                 # continue an interrupted run exactly
  edge-runtime train --config runs/mnv2p/config.yaml --init-from runs/mnv2p/last.pt --epochs 60 --out runs/mnv2p-60
                                                               # train a finished run on, with a new schedule
  edge-runtime train --model mobilenetv2_paper --init-from runs/c100/best.pt --freeze backbone --unfreeze-at 5
  edge-runtime train --model mobilenetv2_paper --teacher big.pt --teacher other.pt --distill-targets cached
  torchrun --nproc_per_node 2 -m edge_runtime train ...          # DistributedDataParallel (gloo on CPU)

Precedence: built-in defaults < --config YAML (same keys as the flags, with underscores) < flags.
In --out: last.pt, best.pt, metrics.csv, curves.png, config.yaml, manifest.json; average.pt with --average-from.
Ctrl-C (or SIGTERM) stops at the next step and saves last.pt there: --resume continues bit for bit.
Data: --data-dir, else $EDGE_RUNTIME_DATA, else ~/.cache/edge-runtime/data (official python layout).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Tuple

from ..errors import EdgeRuntimeError
from . import require_train_extras


def _kv(text: str) -> Dict[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE, got %r" % text)
    return {key: yaml.safe_load(value)}


def _csv(text: str) -> List[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


_SCALARS = {"int": int, "float": float, "str": str}


def _flag_spec(f: Any, hint: Any) -> Tuple[str, Dict[str, Any]]:
    """The argparse flag and options of one TrainConfig field, from its type and metadata."""
    import typing

    meta = f.metadata
    name = meta.get("flag") or "--" + f.name.replace("_", "-")
    kw: Dict[str, Any] = {"dest": f.name, "help": meta.get("help"), "default": None}
    if meta.get("metavar"):
        kw["metavar"] = meta["metavar"]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint
    parse = meta.get("parse")
    if base is bool:
        if f.default is True:
            return "--no-" + f.name.replace("_", "-"), dict(kw, action="store_false")
        return name, dict(kw, action="store_true")
    if parse == "kv":
        return name, dict(kw, action="append", type=_kv)
    if parse == "append":
        return name, dict(kw, action="append")
    if parse == "csv":
        return name, dict(kw, type=_csv)
    if meta.get("choices"):
        kw["choices"] = list(meta["choices"])
    kw["type"] = _SCALARS.get(getattr(base, "__name__", ""), str)
    return name, kw


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, generated from the dataclass (help and flag names live in train/config.py)."""
    import dataclasses
    import typing

    try:
        from train.config import TrainConfig
    except ImportError:  # a robot install without the training extras: `train --help` still lists the run flags
        TrainConfig = None  # type: ignore[assignment,misc]
        p.set_defaults(_flags_need=require_train_extras)  # `train --model x` there: what to install, in one line
    groups: Dict[str, Any] = {}
    if TrainConfig is not None:
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(TrainConfig):
            group = f.metadata.get("group") or "run"
            if group not in groups:
                groups[group] = p.add_argument_group(group)
                if group == "run":
                    groups[group].add_argument("--config", metavar="YAML", help="YAML with the same keys; flags override it")
            flag, kw = _flag_spec(f, hints[f.name])
            groups[group].add_argument(flag, **kw)
    g = groups.get("run") or p.add_argument_group("run")
    if "run" not in groups:
        g.add_argument("--config", metavar="YAML", help="YAML with the same keys; flags override it")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out from last.pt, exactly (its own length: to train a finished "
                        "run longer, start a new run with --init-from OUT/last.pt)")
    g.add_argument("--quiet", action="store_true", help="no progress bars: one log line per epoch")
    g.add_argument("--json", action="store_true", help="end with the result as one JSON line instead of the summary")


def run(args: argparse.Namespace) -> int:
    require_train_extras()
    import dataclasses
    from pathlib import Path

    from train import checkpoint
    from train.config import TrainConfig, load_yaml, overlay
    from train.trainer import describe_result, fit

    from ._common import command_line

    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None}
    if flags.get("model_kwargs"):
        merged: Dict[str, Any] = {}
        for kv in flags["model_kwargs"]:
            merged.update(kv)
        flags["model_kwargs"] = merged
    if args.resume:
        out = Path(flags.get("out", TrainConfig.out))
        last = out / "last.pt"
        if not last.is_file():
            raise EdgeRuntimeError("--resume: nothing to resume in %s (no last.pt); start a new run without --resume" % out)
        saved = checkpoint.load(last)["config"]
        allowed = {"out", "epochs", "device", "data_dir", "distill_cache"}
        extra = sorted(set(flags) - allowed)
        if extra or args.config:
            raise EdgeRuntimeError("--resume continues the saved config of %s; only --device, --data-dir and --distill-cache "
                                   "may change (got %s)" % (last, ", ".join(extra + (["--config"] if args.config else []))))
        cfg = overlay(overlay(TrainConfig(), saved, str(last)), flags, "flags")
    else:
        cfg = TrainConfig()
        if args.config:
            cfg = overlay(cfg, load_yaml(Path(args.config)), args.config)
        cfg = overlay(cfg, flags, "flags")
    from ..fsio import check_writable

    check_writable(cfg.out, "--out", directory=True)  # before reading data or building the model
    progress = not args.quiet and sys.stderr.isatty()  # not a terminal (a log file): plain lines, no bars
    summary = fit(cfg, resume=args.resume, progress=progress, command=command_line(args))
    if summary:
        acc = summary.get("accuracy", {})
        if args.json:
            print(json.dumps({"out": cfg.out, "model": cfg.model, "top1": acc.get("top1"),
                              "top1_first1000": acc.get("top1_first1000"), "epoch": acc.get("epoch")}))
        else:
            print(describe_result(Path(cfg.out)))
    return 0
