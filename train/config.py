"""Training hyperparameters in one place: a frozen dataclass, overlaid by YAML, then by flags.

Precedence: dataclass defaults < ``--config`` YAML < command-line flags. Every value goes through the one typed
parser (:mod:`edge_runtime.schema`), like the runtime config and the manifest: unknown keys, wrong types, ranges and
choices are one-line errors ``<origin>: <key>: expected <what>, got <value>``. The resolved config is saved beside
the run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.schema import ConfigError, Parser, opt, parse

OPTIMIZERS = ("sgd", "adam", "adadelta", "adamw")
SCHEDULES = ("cosine", "onecycle", "step", "none")
DEVICES = ("auto", "cpu", "cuda")
DISTILL_TARGETS = ("online", "cached")
DATASETS = ("cifar10", "cifar100")


def _opt(default: Any = None, *, factory: Any = None, group: str = "", help: Optional[str] = None,
         flag: Optional[str] = None, metavar: Optional[str] = None, choices: Optional[Sequence[str]] = None,
         parse: Optional[str] = None, lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
         hi_open: bool = False) -> Any:
    """A config field: its constraints (``lo``/``hi``/``choices``, checked by :mod:`edge_runtime.schema`'s parser) and
    its command-line flag, described once (``edge_runtime/cli/train.py`` builds the flags).

    ``parse``: ``append`` (repeat the flag), ``csv`` (comma-separated list), ``kv`` (repeated KEY=VALUE);
    booleans become ``--name`` (default false) or ``--no-name`` (default true).
    """
    return opt(default, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices, factory=factory,
               group=group, help=help, flag=flag, metavar=metavar, parse=parse)


WHAT, OPTIM, TRANSFER, DISTILL, RUN = "what to train", "optimization", "transfer learning", "knowledge distillation", "run"


@dataclass(frozen=True)
class TrainConfig:
    # what to train
    model: str = _opt("mobilenetv2_paper", group=WHAT, help="model name (see `edge-runtime models`)")
    model_kwargs: Dict[str, Any] = _opt(factory=dict, group=WHAT, flag="--model-arg", metavar="KEY=VALUE", parse="kv",
                                        help="builder option, repeatable (e.g. activation=relu for lenet5)")
    dataset: str = _opt("cifar10", group=WHAT, choices=DATASETS)
    data_dir: Optional[str] = _opt(None, group=WHAT,  # default: $EDGE_RUNTIME_DATA or ~/.cache/edge-runtime/data
                                   help="folder holding cifar-10-batches-py/ or cifar-100-python/")
    download: bool = _opt(False, group=WHAT, help="fetch the official archive if missing")
    classes: Optional[List[str]] = _opt(None, group=WHAT, parse="csv",
                                        help="comma-separated class names: train on these only (relabelled in this order)")
    subset: Optional[int] = _opt(None, group=WHAT, lo=1, help="use N random train (and N test) images, for quick runs")
    # how long
    epochs: int = _opt(30, group=OPTIM, lo=1)
    batch_size: int = _opt(128, group=OPTIM, lo=1, help="global batch size (split across DDP processes)")
    time_budget: Optional[float] = _opt(None, group=OPTIM, metavar="SECONDS", lo=0, lo_open=True,
                                        help="train for this wall time; the LR schedule follows elapsed time")
    # optimizer
    optimizer: str = _opt("sgd", group=OPTIM, choices=OPTIMIZERS)
    lr: float = _opt(0.05, group=OPTIM, lo=0, lo_open=True, help="peak learning rate")
    momentum: float = _opt(0.9, group=OPTIM)
    nesterov: bool = _opt(True, group=OPTIM, help="plain momentum instead of Nesterov's (SGD)")
    weight_decay: float = _opt(5e-4, group=OPTIM, help="L2 on weights (not on norm layers or biases)")
    # schedule (per step)
    schedule: str = _opt("onecycle", group=OPTIM, choices=SCHEDULES, help="per-step LR schedule")
    warmup_epochs: float = _opt(0.0, group=OPTIM)                      # linear warm-up, for cosine
    # regularization
    label_smoothing: float = _opt(0.0, group=OPTIM, lo=0, hi=1, hi_open=True)
    mixup: float = _opt(0.0, group=OPTIM, lo=0, metavar="ALPHA", help="mixup Beta(alpha, alpha); 0 = off")
    cutout: int = _opt(0, group=OPTIM, lo=0, metavar="PIXELS", help="cutout square side; 0 = off")
    average_from: Optional[float] = _opt(None, group=OPTIM, lo=0, hi=1, hi_open=True, metavar="P",
                                         help="also average the weights at the end of every epoch that ends at or "
                                              "after this fraction of the schedule (SWA), recompute BatchNorm "
                                              "statistics on the training images, evaluate the average once: "
                                              "average.pt, and best.pt when it scores higher (e.g. 0.75; default off)")
    crop_padding: int = _opt(4, group=OPTIM, lo=0, metavar="PIXELS", help="random-crop padding; 0 = no random crop")
    flip: bool = _opt(True, group=OPTIM, help="no random horizontal flip")
    # transfer learning
    init_from: Optional[str] = _opt(None, group=TRANSFER, metavar="PARENT.pt",
                                    help="start from a parent checkpoint; its head is replaced unless it has exactly these "
                                         "classes")
    freeze: str = _opt("none", group=TRANSFER, help="none | backbone | until:<stage>")
    unfreeze_at: Optional[int] = _opt(None, group=TRANSFER, metavar="EPOCH",
                                      help="train everything from this epoch on (1-based)")
    # knowledge distillation (train/distill.py)
    teachers: Optional[List[str]] = _opt(None, group=DISTILL, flag="--teacher", metavar="TEACHER.pt", parse="append",
                                         help="learn from this trained checkpoint too (same dataset and classes); repeat "
                                              "for an ensemble")
    distill_alpha: float = _opt(0.9, group=DISTILL, lo=0, hi=1, metavar="A",
                                help="loss = (1-A) * label loss + A * T^2 * KL(teacher || student) (default 0.9)")
    distill_temperature: float = _opt(4.0, group=DISTILL, lo=0, lo_open=True, metavar="T", help="softmax temperature (default 4)")
    distill_targets: str = _opt("online", group=DISTILL, choices=DISTILL_TARGETS,
                                help="online: teachers see every augmented batch (exact; default); cached: teachers run "
                                     "once on each image and its mirror before training (crop/cutout unseen; far cheaper "
                                     "on a CPU)")
    distill_cache: Optional[str] = _opt(None, group=DISTILL, metavar="DIR",
                                        help="where cached teacher targets are kept and reused across runs (default "
                                             "$EDGE_RUNTIME_CACHE/teacher-targets, else ~/.cache/edge-runtime/"
                                             "teacher-targets)")
    # machinery
    seed: int = _opt(0, group=RUN)
    device: str = _opt("auto", group=RUN, choices=DEVICES)
    amp: bool = _opt(True, group=RUN, help="no bf16 autocast on CUDA")
    channels_last: bool = _opt(True, group=RUN,
                               help="keep NCHW memory (channels_last is the default: 1.1-2.3x faster on this CPU)")
    compile: bool = _opt(False, group=RUN, help="torch.compile the model")
    eval_every: int = _opt(1, group=RUN, metavar="N", help="evaluate every N epochs (and at the end)")
    out: str = _opt("runs/train", group=RUN, help="output folder (default runs/train)")

    def __post_init__(self) -> None:  # the checks no single-field rule expresses
        if not isinstance(self.freeze, str) or not (self.freeze in ("none", "backbone") or self.freeze.startswith("until:")):
            raise ConfigError("freeze", "expected none, backbone or until:<stage>, got %r" % self.freeze)
        if self.teachers is not None and not self.teachers:
            raise ConfigError("teachers", "expected a list of teacher checkpoints, or null for no distillation, got []")

    def validate(self, where: str = "config") -> "TrainConfig":
        """Check every field by the parser's rules (a config built in Python, not read from YAML or flags)."""
        parse(TrainConfig, self.to_dict(), where, parser=_PARSER)
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


#: training values may be empty strings (as before: e.g. ``data_dir: ''``); a model name is checked by the registry
_PARSER = Parser(nonempty_str=False)


def overlay(base: TrainConfig, values: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """``base`` with ``values`` applied; unknown keys, wrong types, ranges and choices are one line naming ``where``
    and the key."""
    return parse(TrainConfig, values, where, parser=_PARSER, base=base)  # type: ignore[no-any-return]


def load_yaml(path: Path) -> Dict[str, Any]:
    """A YAML mapping of TrainConfig keys (or a grid), read with edge_runtime.config.read_yaml."""
    from edge_runtime.config import read_yaml

    data = read_yaml(path, "expected a YAML file with TrainConfig keys")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EdgeRuntimeError("%s: expected a mapping of config keys at the top level, got %s" % (path, type(data).__name__))
    return data


def save_yaml(path: Path, cfg: TrainConfig) -> None:
    from edge_runtime.fsio import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
