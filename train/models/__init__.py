"""The model zoo: a registry of builders, looked up by name.

``create_model(name, num_classes=10, **kwargs)`` builds any registered model; an unknown name
lists the known ones; registering a name twice raises. Every model takes 32x32 RGB input.
Each entry records which module is the classifier head (replaced for transfer learning) and
its stages in order (for ``--freeze until:<stage>``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple

import torch.nn as nn

from edge_runtime.errors import EdgeRuntimeError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    head: str                       # attribute path of the classifier head, e.g. "fc" or "classifier"
    stages: Tuple[str, ...] = ()    # parameter-name prefixes in forward order
    paper: str = ""                 # how it relates to the paper
    defaults: Dict[str, Any] = field(default_factory=dict)


_REGISTRY: Dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in _REGISTRY:
        raise ValueError("model %r is already registered" % entry.name)
    _REGISTRY[entry.name] = entry
    return entry


def list_models() -> List[str]:
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EdgeRuntimeError("unknown model %r; known models: %s" % (name, ", ".join(list_models()))) from None


def create_model(name: str, num_classes: int = 10, **kwargs: Any) -> nn.Module:
    entry = get_entry(name)
    merged = dict(entry.defaults)
    merged.update(kwargs)
    try:
        return entry.builder(num_classes=num_classes, **merged)
    except TypeError as exc:
        raise EdgeRuntimeError("model %s does not take these options %s (%s)" % (name, sorted(merged), exc)) from None


from . import lenet, mobilenet, resnet  # noqa: E402,F401  (registration side effects)
