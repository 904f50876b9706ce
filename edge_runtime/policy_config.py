"""The policy's configuration (``policy:`` in the runtime YAML), beside :mod:`edge_runtime.policy`, which it configures.

Rules (class or superclass -> STOP/SLOW/GO, each with a minimum confidence), the default action, debouncing,
the latch and the fail-safe timeouts. Fields carry their constraints (:func:`~edge_runtime.schema.opt`); the
typed parser in :mod:`edge_runtime.config` reads the YAML into these classes (``edge_runtime.config`` re-exports
them). Checks that span fields are here too: no rules, a rule without classes, two rules with one name,
``trigger_k > trigger_n`` are one-line errors naming the key.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

from .errors import EdgeRuntimeError
from .policy import Action
from .schema import ConfigError, opt

__all__ = ["Rule", "DebounceConfig", "LatchConfig", "TimeoutsConfig", "PolicyConfig"]


@dataclasses.dataclass(frozen=True)
class Rule:
    """Frames whose probability MASS on ``classes`` plus the fine classes of ``superclasses`` is at least
    ``min_confidence`` ask for ``action``.

    Mass, not argmax: a CIFAR-100 model looking at a fox may spread 0.7 over wolf, fox and raccoon while
    its argmax is "lawn_mower" at 0.3; the rule asks "is this one of those?", and the mass answers it.
    """

    action: Action
    classes: Tuple[str, ...] = ()
    superclasses: Tuple[str, ...] = ()
    min_confidence: float = opt(0.5, lo=0, hi=1)
    #: A short label for logs and sinks ("animals"); defaults to ``rules[i]``.
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.classes and not self.superclasses:
            raise ConfigError("", "a rule needs classes or superclasses (or both)")


@dataclasses.dataclass(frozen=True)
class DebounceConfig:
    """Trigger a more restrictive action when ``trigger_k`` of the last ``trigger_n`` frames ask for it (or
    for something stricter); release it after ``release_m`` consecutive frames that ask for less, and not
    before it has been held ``min_hold_ms``."""

    trigger_k: int = opt(2, lo=1)
    trigger_n: int = opt(3, lo=1)
    release_m: int = opt(5, lo=1)
    min_hold_ms: float = opt(1000.0, lo=0)

    def __post_init__(self) -> None:
        if self.trigger_k > self.trigger_n:
            raise ConfigError("trigger_k", "%d is more than trigger_n (%d)" % (self.trigger_k, self.trigger_n))


@dataclasses.dataclass(frozen=True)
class LatchConfig:
    """``stop``: a STOP from a rule stays until :meth:`Policy.reset` (for machines that must not restart by
    themselves). ``faults``: fail-safe STOPs (lost camera, inference error, ...) latch too."""

    stop: bool = False
    faults: bool = False


@dataclasses.dataclass(frozen=True)
class TimeoutsConfig:
    """Fail-safe limits, in milliseconds.

    ``source_timeout_ms``: no fresh frame for this long -> STOP. ``max_frame_age_ms``: a frame older
    than this when the loop takes it -> STOP (its content is history). ``deadline_ms``: a decision later
    than this after capture -> ``deadline_action`` (STOP or SLOW).
    """

    source_timeout_ms: float = opt(500.0, lo=0, lo_open=True)
    max_frame_age_ms: float = opt(200.0, lo=0, lo_open=True)
    deadline_ms: float = opt(250.0, lo=0, lo_open=True)
    deadline_action: Action = opt(Action.STOP, choices=("STOP", "SLOW"))


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Rules, the default action for frames no rule claims, debouncing, latch and fail-safe timeouts."""

    rules: Tuple[Rule, ...]
    default_action: Action = Action.GO
    debounce: DebounceConfig = opt(DebounceConfig)
    latch: LatchConfig = opt(LatchConfig)
    timeouts: TimeoutsConfig = opt(TimeoutsConfig)
    #: uncertainty gate: a frame whose top-class probability is below this looks like none of the classes and asks
    #: for ``default_action`` whatever the rules say (None: off). Calibrated probabilities make it meaningful.
    uncertain_below: Optional[float] = opt(None, lo=0, hi=1)

    def __post_init__(self) -> None:
        if not self.rules:
            raise ConfigError("rules", "no rules: the robot could never STOP on what it sees; add at least one rule "
                                       "(action, classes, min_confidence; see deploy/configs/vehicle.yaml)")
        seen: Dict[str, int] = {}
        for i in range(len(self.rules)):
            label = self.rule_label(i)
            if label in seen:
                raise ConfigError("rules[%d].name" % i, "%r is also the name of rules[%d]; give every rule its own "
                                                        "name (logs and sinks report it)" % (label, seen[label]))
            seen[label] = i

    def rule_label(self, i: int) -> str:
        """The label a rule reports: its ``name`` or ``rules[i]``."""
        return self.rules[i].name or "rules[%d]" % i

    def validate_against(self, class_names: Sequence[str], superclass_names: Optional[Sequence[str]] = None,
                         path: str = "policy") -> None:
        """Check every rule's names against the model's; unknown names raise one line listing the valid ones."""
        known = set(class_names)
        known_super = set(superclass_names or ())
        for i, rule in enumerate(self.rules):
            for name in rule.classes:
                if name not in known:
                    raise EdgeRuntimeError("%s.rules[%d].classes: unknown class %r; the model's classes are: %s"
                                           % (path, i, name, ", ".join(class_names)))
            if rule.superclasses and not superclass_names:
                raise EdgeRuntimeError("%s.rules[%d].superclasses: the model has no superclasses (its manifest lists "
                                       "none; CIFAR-100 models have 20); use classes, one of: %s"
                                       % (path, i, ", ".join(class_names)))
            for name in rule.superclasses:
                if name not in known_super:
                    raise EdgeRuntimeError("%s.rules[%d].superclasses: unknown superclass %r; the model's superclasses "
                                           "are: %s" % (path, i, name, ", ".join(superclass_names or ())))
