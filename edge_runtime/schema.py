"""The pieces every typed config section is declared with: :class:`ConfigError` and :func:`opt`.

A section is a frozen dataclass living beside the code it configures (the policy's in
:mod:`edge_runtime.policy_config`, each sink's in :mod:`edge_runtime.sinks`, the source's and the run's in
:mod:`edge_runtime.config`). Its fields carry their constraints (:func:`opt`); the one typed parser,
:mod:`edge_runtime.config`, checks YAML values and CLI flags against them, so a key and its flag obey the
same rule. Cross-field checks live in the section's ``__post_init__`` and raise :class:`ConfigError` with the
field name; the parser prefixes the key path.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

from .errors import EdgeRuntimeError

__all__ = ["ConfigError", "opt"]


class ConfigError(EdgeRuntimeError):
    """A config value is wrong. Raised with the field name; the parser prefixes the full key path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__("%s: %s" % (key, message) if key else message)
        self.key = key
        self.detail = " ".join(str(message).split())


def opt(default: Any = dataclasses.MISSING, lo: Optional[float] = None, hi: Optional[float] = None,
        lo_open: bool = False, choices: Optional[Sequence[str]] = None) -> Any:
    """A dataclass field carrying the constraints the parser checks (range, allowed strings).

    ``default`` may be a value, ``dataclasses.MISSING`` (the key is required) or a dataclass type
    (its default instance).
    """
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "choices": tuple(choices) if choices else None}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
