"""Training hyperparameters in one place: a frozen dataclass, overlaid by YAML, then by flags.

Precedence: dataclass defaults < ``--config`` YAML < command-line flags. Unknown YAML keys and
wrong types are one-line errors that name the key. The resolved config is saved beside the run.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from edge_runtime.errors import EdgeRuntimeError

OPTIMIZERS = ("sgd", "adam", "adadelta", "adamw")
SCHEDULES = ("cosine", "onecycle", "step", "none")
DEVICES = ("auto", "cpu", "cuda")
DISTILL_TARGETS = ("online", "cached")


@dataclass(frozen=True)
class TrainConfig:
    # what to train
    model: str = "mobilenetv2_paper"
    model_kwargs: Dict[str, Any] = field(default_factory=dict)   # builder options, e.g. {activation: relu}
    dataset: str = "cifar10"                                     # cifar10 | cifar100
    data_dir: Optional[str] = None                               # default: $EDGE_RUNTIME_DATA or ~/.cache/edge-runtime/data
    download: bool = False                                       # fetch the official archive if missing
    classes: Optional[List[str]] = None                          # train on these classes only (transfer tasks)
    subset: Optional[int] = None                                 # N random train images (and N test) for quick runs
    # how long
    epochs: int = 30
    batch_size: int = 128
    time_budget: Optional[float] = None                          # seconds; LR schedule follows wall time, stops at it
    # optimizer
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4                                   # not applied to norm layers and biases
    # schedule (per step)
    schedule: str = "onecycle"
    warmup_epochs: float = 0.0                                   # linear warm-up, for cosine
    # regularization
    label_smoothing: float = 0.0
    mixup: float = 0.0                                           # Beta(alpha, alpha); 0 = off
    cutout: int = 0                                              # square side in pixels; 0 = off
    crop_padding: int = 4
    flip: bool = True
    # transfer learning
    init_from: Optional[str] = None                              # parent checkpoint; head replaced unless same classes
    freeze: str = "none"                                         # none | backbone | until:<stage>
    unfreeze_at: Optional[int] = None                            # epoch (1-based) at which everything trains
    # knowledge distillation (train/distill.py)
    teachers: Optional[List[str]] = None                         # teacher checkpoints; several = an ensemble
    distill_alpha: float = 0.9                                   # weight of the teachers' term (1 - alpha: labels)
    distill_temperature: float = 4.0                             # softmax temperature of both sides
    distill_targets: str = "online"                              # online (exact) | cached (teachers run once)
    # machinery
    seed: int = 0
    device: str = "auto"
    amp: bool = True                                             # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True                                   # NHWC model and batches (CPU and CUDA)
    compile: bool = False                                        # torch.compile the model
    eval_every: int = 1
    out: str = "runs/train"

    def validate(self) -> "TrainConfig":
        def bad(key: str, got: Any, want: str) -> None:
            raise EdgeRuntimeError("config %s=%r is invalid; expected %s" % (key, got, want))
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", self.optimizer, "one of " + ", ".join(OPTIMIZERS))
        if self.schedule not in SCHEDULES:
            bad("schedule", self.schedule, "one of " + ", ".join(SCHEDULES))
        if self.device not in DEVICES:
            bad("device", self.device, "one of " + ", ".join(DEVICES))
        if self.dataset not in ("cifar10", "cifar100"):
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
