"""Train a CIFAR-10/100 classifier; writes checkpoints, metrics, curves and a manifest.

Examples:
  edge-runtime train --model lenet5 --epochs 30 --out runs/lenet5
  edge-runtime train --config train/configs/recipes/mobilenetv2_paper.yaml --out runs/mnv2p
  edge-runtime train --out runs/mnv2p --resume                 # continue an interrupted run exactly
  edge-runtime train --model mobilenetv2_paper --init-from runs/c100/best.pt --freeze backbone --unfreeze-at 5
  edge-runtime train --model mobilenetv2_paper --teacher big.pt --teacher other.pt --distill-targets cached
  torchrun --nproc_per_node 2 -m edge_runtime train ...          # DistributedDataParallel (gloo on CPU)

Precedence: built-in defaults < --config YAML (same keys as the flags, with underscores) < flags.
In --out: last.pt, best.pt, metrics.csv, curves.png, config.yaml, manifest.json.
Data: --data-dir, else $EDGE_RUNTIME_DATA, else ~/.cache/edge-runtime/data (official python layout).
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Dict

from ..errors import EdgeRuntimeError
from . import require_train_extras


def _kv(text: str) -> Dict[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE, got %r" % text)
    return {key: yaml.safe_load(value)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to train")
    g.add_argument("--model", help="model name (see `edge-runtime models`)")
    g.add_argument("--model-arg", dest="model_kwargs", action="append", type=_kv, metavar="KEY=VALUE",
                   help="builder option, repeatable (e.g. activation=relu for lenet5)")
    g.add_argument("--dataset", choices=["cifar10", "cifar100"])
    g.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ or cifar-100-python/")
    g.add_argument("--download", action="store_true", default=None, help="fetch the official archive if missing")
    g.add_argument("--classes", type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
                   help="comma-separated class names: train on these only (relabelled in this order)")
    g.add_argument("--subset", type=int, help="use N random train (and N test) images, for quick runs")
    g = p.add_argument_group("optimization")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int, help="global batch size (split across DDP processes)")
    g.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="train for this wall time; the LR schedule follows elapsed time")
    g.add_argument("--optimizer", choices=["sgd", "adam", "adadelta", "adamw"])
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--momentum", type=float)
    g.add_argument("--weight-decay", type=float, help="L2 on weights (not on norm layers or biases)")
    g.add_argument("--schedule", choices=["cosine", "onecycle", "step", "none"], help="per-step LR schedule")
    g.add_argument("--warmup-epochs", type=float)
    g.add_argument("--label-smoothing", type=float)
    g.add_argument("--mixup", type=float, metavar="ALPHA", help="mixup Beta(alpha, alpha); 0 = off")
    g.add_argument("--cutout", type=int, metavar="PIXELS", help="cutout square side; 0 = off")
    g = p.add_argument_group("transfer learning")
    g.add_argument("--init-from", metavar="PARENT.pt",
                   help="start from a parent checkpoint; its head is replaced unless it has exactly these classes")
    g.add_argument("--freeze", help="none | backbone | until:<stage>")
    g.add_argument("--unfreeze-at", type=int, metavar="EPOCH", help="train everything from this epoch on (1-based)")
    g = p.add_argument_group("knowledge distillation")
    g.add_argument("--teacher", dest="teachers", action="append", metavar="TEACHER.pt",
                   help="learn from this trained checkpoint too (same dataset and classes); repeat for an ensemble")
    g.add_argument("--distill-alpha", type=float, metavar="A",
                   help="loss = (1-A) * label loss + A * T^2 * KL(teacher || student) (default 0.9)")
    g.add_argument("--distill-temperature", type=float, metavar="T", help="softmax temperature (default 4)")
    g.add_argument("--distill-targets", choices=["online", "cached"],
                   help="online: teachers see every augmented batch (exact; default); cached: teachers run once on "
                        "each image and its mirror before training (crop/cutout unseen; far cheaper on a CPU)")
    g = p.add_argument_group("run")
    g.add_argument("--config", metavar="YAML", help="YAML with the same keys; flags override it")
    g.add_argument("--seed", type=int)
    g.add_argument("--device", choices=["auto", "cpu", "cuda"])
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g.add_argument("--no-amp", dest="amp", action="store_false", default=None, help="no bf16 autocast on CUDA")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None,
                   help="keep NCHW memory (channels_last is the default: 1.1-2.3x faster on this CPU)")
    g.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N epochs (and at the end)")
    g.add_argument("--out", help="output folder (default runs/train)")
    g.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    g.add_argument("--quiet", action="store_true", help="no progress bars: one log line per epoch")


_FLAG_KEYS = ("model", "dataset", "data_dir", "download", "classes", "subset", "epochs", "batch_size", "time_budget",
              "optimizer", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "label_smoothing", "mixup",
              "cutout", "init_from", "freeze", "unfreeze_at", "teachers", "distill_alpha", "distill_temperature",
              "distill_targets", "seed", "device", "compile", "amp", "channels_last", "eval_every", "out")


def run(args: argparse.Namespace) -> int:
    require_train_extras()
    from pathlib import Path

    from train import checkpoint
    from train.config import TrainConfig, load_yaml, overlay
    from train.trainer import fit

    flags = {k: getattr(args, k) for k in _FLAG_KEYS if getattr(args, k) is not None}
    if args.model_kwargs:
        merged: Dict[str, Any] = {}
        for kv in args.model_kwargs:
            merged.update(kv)
        flags["model_kwargs"] = merged
    if args.resume:
        out = Path(flags.get("out", TrainConfig.out))
        last = out / "last.pt"
        if not last.is_file():
            raise EdgeRuntimeError("--resume: nothing to resume in %s (no last.pt); start a new run without --resume" % out)
        saved = checkpoint.load(last)["config"]
        allowed = {"out", "epochs", "device", "data_dir"}
        extra = sorted(set(flags) - allowed)
        if extra or args.config:
            raise EdgeRuntimeError("--resume continues the saved config of %s; only --epochs, --device and --data-dir may "
                                   "change (got %s)" % (last, ", ".join(extra + (["--config"] if args.config else []))))
        cfg = overlay(overlay(TrainConfig(), saved, str(last)), flags, "flags")
    else:
        cfg = TrainConfig()
        if args.config:
            cfg = overlay(cfg, load_yaml(Path(args.config)), args.config)
        cfg = overlay(cfg, flags, "flags")
    from ..fsio import check_writable

    check_writable(cfg.out, "--out", directory=True)  # before reading data or building the model
    summary = fit(cfg, resume=args.resume, progress=not args.quiet, command=getattr(args, "_command_line", None))
    if summary:
        acc = summary.get("accuracy", {})
        print(json.dumps({"out": cfg.out, "model": cfg.model, "top1": acc.get("top1"),
                          "top1_first1000": acc.get("top1_first1000"), "epoch": acc.get("epoch")}))
    return 0
