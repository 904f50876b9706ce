"""Training hyperparameters in one place: a frozen dataclass, overlaid by YAML, then by flags.

Precedence: dataclass defaults < ``--config`` YAML < command-line flags. Unknown YAML keys and
wrong types are one-line errors that name the key. The resolved config is saved beside the run.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from edge_runtime.errors import EdgeRuntimeError

OPTIMIZERS = ("sgd", "adam", "adadelta", "adamw")
SCHEDULES = ("cosine", "onecycle", "step", "none")
DEVICES = ("auto", "cpu", "cuda")
DISTILL_TARGETS = ("online", "cached")
DATASETS = ("cifar10", "cifar100")


def _opt(default: Any = None, *, factory: Any = None, group: str = "", help: Optional[str] = None,
         flag: Optional[str] = None, metavar: Optional[str] = None, choices: Optional[Sequence[str]] = None,
         parse: Optional[str] = None) -> Any:
    """A config field with its command-line flag described once (``edge_runtime/cli/train.py`` builds the flags).

    ``parse``: ``append`` (repeat the flag), ``csv`` (comma-separated list), ``kv`` (repeated KEY=VALUE);
    booleans become ``--name`` (default false) or ``--no-name`` (default true).
    """
    meta = {"group": group, "help": help, "flag": flag, "metavar": metavar, "choices": choices, "parse": parse}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


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
    subset: Optional[int] = _opt(None, group=WHAT, help="use N random train (and N test) images, for quick runs")
    # how long
    epochs: int = _opt(30, group=OPTIM)
    batch_size: int = _opt(128, group=OPTIM, help="global batch size (split across DDP processes)")
    time_budget: Optional[float] = _opt(None, group=OPTIM, metavar="SECONDS",
                                        help="train for this wall time; the LR schedule follows elapsed time")
    # optimizer
    optimizer: str = _opt("sgd", group=OPTIM, choices=OPTIMIZERS)
    lr: float = _opt(0.05, group=OPTIM, help="peak learning rate")
    momentum: float = _opt(0.9, group=OPTIM)
    nesterov: bool = _opt(True, group=OPTIM, help="plain momentum instead of Nesterov's (SGD)")
    weight_decay: float = _opt(5e-4, group=OPTIM, help="L2 on weights (not on norm layers or biases)")
    # schedule (per step)
    schedule: str = _opt("onecycle", group=OPTIM, choices=SCHEDULES, help="per-step LR schedule")
    warmup_epochs: float = _opt(0.0, group=OPTIM)                      # linear warm-up, for cosine
    # regularization
    label_smoothing: float = _opt(0.0, group=OPTIM)
    mixup: float = _opt(0.0, group=OPTIM, metavar="ALPHA", help="mixup Beta(alpha, alpha); 0 = off")
    cutout: int = _opt(0, group=OPTIM, metavar="PIXELS", help="cutout square side; 0 = off")
    crop_padding: int = _opt(4, group=OPTIM, metavar="PIXELS", help="random-crop padding; 0 = no random crop")
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
    distill_alpha: float = _opt(0.9, group=DISTILL, metavar="A",
                                help="loss = (1-A) * label loss + A * T^2 * KL(teacher || student) (default 0.9)")
    distill_temperature: float = _opt(4.0, group=DISTILL, metavar="T", help="softmax temperature (default 4)")
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

    def validate(self) -> "TrainConfig":
        def bad(key: str, got: Any, want: str) -> None:
            raise EdgeRuntimeError("config %s=%r is invalid; expected %s" % (key, got, want))
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        if self.schedule not in SCHEDULES:
            bad("schedule", self.schedule, "one of " + ", ".join(SCHEDULES))
        if self.device not in DEVICES:
            bad("device", self.device, "one of " + ", ".join(DEVICES))
        if self.dataset not in DATASETS:
            bad("dataset", self.dataset, "cifar10 or cifar100")
        if self.epochs < 1:
            bad("epochs", self.epochs, "an integer >= 1")
        if self.batch_size < 1:
            bad("batch_size", self.batch_size, "an integer >= 1")
        if not self.lr > 0:
            bad("lr", self.lr, "a number > 0")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", self.label_smoothing, "a number in [0, 1)")
        if self.subset is not None and self.subset < 1:
            bad("subset", self.subset, "an integer >= 1")
        if self.time_budget is not None and self.time_budget <= 0:
            bad("time_budget", self.time_budget, "seconds > 0")
        if not (self.freeze in ("none", "backbone") or self.freeze.startswith("until:")):
            bad("freeze", self.freeze, "none, backbone or until:<stage>")
        if not 0 <= self.distill_alpha <= 1:
            bad("distill_alpha", self.distill_alpha, "a number in [0, 1]")
        if not self.distill_temperature > 0:
            bad("distill_temperature", self.distill_temperature, "a number > 0")
        if self.distill_targets not in DISTILL_TARGETS:
            bad("distill_targets", self.distill_targets, "one of " + ", ".join(DISTILL_TARGETS))
        if self.teachers is not None and not self.teachers:
            bad("teachers", self.teachers, "a list of teacher checkpoints, or null for no distillation")
        if self.mixup < 0 or self.cutout < 0 or self.crop_padding < 0:
            bad("mixup/cutout/crop_padding", (self.mixup, self.cutout, self.crop_padding), "values >= 0")
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


_HINTS = typing.get_type_hints(TrainConfig)


def _check_type(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _check_type(key, value, inner)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EdgeRuntimeError("config key %r: got %r (%s), expected a number" % (key, value, type(value).__name__))
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EdgeRuntimeError("config key %r: got %r (%s), expected an integer" % (key, value, type(value).__name__))
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise EdgeRuntimeError("config key %r: got %r (%s), expected true or false" % (key, value, type(value).__name__))
        return value
    if hint is str:
        if not isinstance(value, str):
            raise EdgeRuntimeError("config key %r: got %r (%s), expected a string" % (key, value, type(value).__name__))
        return value
    if origin in (list, List):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise EdgeRuntimeError("config key %r: got %r, expected a list of strings" % (key, value))
        return list(value)
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise EdgeRuntimeError("config key %r: got %r, expected a mapping" % (key, value))
        return dict(value)
    return value


def overlay(base: TrainConfig, values: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """``base`` with ``values`` applied; unknown keys and wrong types name the key."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise EdgeRuntimeError("%s: unknown key(s) %s; valid keys: %s" % (where, ", ".join(unknown), ", ".join(sorted(known))))
    checked = {k: _check_type(k, v, _HINTS[k]) for k, v in values.items()}
    return dataclasses.replace(base, **checked)


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
