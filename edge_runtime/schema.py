"""The one typed parser: plain data (YAML, JSON, flags) -> frozen dataclasses, with one error style.

A section is a frozen dataclass living beside the code it configures (the policy's in
:mod:`edge_runtime.policy_config`, each sink's in :mod:`edge_runtime.sinks`, the source's and the run's in
:mod:`edge_runtime.config`, the training config in ``train/config.py``, the manifest's required keys in
:mod:`edge_runtime.manifest`). Its fields carry their constraints (:func:`opt`: range, allowed strings); the
:class:`Parser` checks types (bool, int, float, str, enums, ``Optional``, ``Tuple``/``List``/``Dict``,
nested dataclasses), ranges, choices, unknown and missing keys, so a key, its CLI flag and a manifest value
obey the same rule. Cross-field checks live in the section's ``__post_init__`` and raise :class:`ConfigError`
with the field name; the parser prefixes the key path. Every mistake is one line::

    <origin>: <key.path>: expected <what>, got <value> (<what to do>)
    vehicle.yaml: policy.rules[2].min_confidence: expected a number in [0, 1], got 'high'
    train.yaml: lrr: unknown key; expected one of model, ..., out (fix its spelling or remove it)

(the ``(<what to do>)`` part is the parser's ``hint``, given where the expectation alone does not say it). A
dataclass with ``_schema_open = True`` accepts keys it does not declare (the manifest keeps them as a dict).

Stdlib only, Python 3.8 (this module runs on the robot).
"""
from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union, get_type_hints

from .errors import EdgeRuntimeError

__all__ = ["ConfigError", "opt", "Parser", "parse", "describe", "range_text", "check_range"]


class ConfigError(EdgeRuntimeError):
    """A config value is wrong. Raised with the field name; the parser prefixes the full key path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__("%s: %s" % (key, message) if key else message)
        self.key = key
        self.detail = " ".join(str(message).split())


def opt(default: Any = dataclasses.MISSING, lo: Optional[float] = None, hi: Optional[float] = None,
        lo_open: bool = False, choices: Optional[Sequence[str]] = None, hi_open: bool = False,
        factory: Optional[Callable[[], Any]] = None, **extra: Any) -> Any:
    """A dataclass field carrying the constraints the parser checks (range, allowed strings).

    ``default`` may be a value, ``dataclasses.MISSING`` (the key is required) or a dataclass type
    (its default instance); ``factory`` makes a mutable default. ``extra`` is kept in the field's metadata for
    other readers (the training CLI builds its flags from ``group``, ``help``, ``flag``...). On a list or tuple
    the range and choices apply to each item.
    """
    meta = dict(extra)
    meta.update({"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
                 "choices": tuple(choices) if choices else None})
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def describe(value: Any) -> str:
    """How a received value is shown in an error: strings quoted, YAML/JSON spellings for the rest."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def range_text(meta: Mapping[str, Any]) -> str:
    """`` in [0, 1]``, `` > 0``, `` >= 1``, `` <= 5`` or nothing, from a field's metadata."""
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return " in %s%g, %g%s" % ("(" if meta.get("lo_open") else "[", lo, hi, ")" if meta.get("hi_open") else "]")
    if lo is not None:
        return " %s %g" % (">" if meta.get("lo_open") else ">=", lo)
    if hi is not None:
        return " %s %g" % ("<" if meta.get("hi_open") else "<=", hi)
    return ""


def check_range(value: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        return False
    return hi is None or value < hi or (value == hi and not meta.get("hi_open"))


def _join(path: str, key: str) -> str:
    return "%s.%s" % (path, key) if path else key


#: a parser for one dataclass type that needs its own rules (the runtime config's sinks): (parser, data, path)
Special = Callable[["Parser", Any, str], Any]


class Parser:
    """Turns plain data into dataclasses, naming the key path of every mistake (``EdgeRuntimeError``, one line).

    ``special`` maps a dataclass type to its own parse function; ``skip`` names fields that are never keys
    (e.g. where a config was read from); ``nonempty_str`` refuses ``''`` for a ``str`` field.
    """

    def __init__(self, special: Optional[Mapping[type, Special]] = None, skip: Sequence[str] = ("origin",),
                 nonempty_str: bool = True, hint: str = "") -> None:
        self.special = dict(special or {})
        self.skip = tuple(skip)
        self.nonempty_str = nonempty_str
        self.hint = hint

    def _say(self, path: str, text: str) -> EdgeRuntimeError:
        return EdgeRuntimeError("%s%s%s" % (path + ": " if path else "", text, " (%s)" % self.hint if self.hint else ""))

    def error(self, path: str, what: str, got: Any) -> EdgeRuntimeError:
        """``<path>: expected <what>, got <value> (<hint>)``."""
        return self._say(path, "expected %s, got %s" % (what, describe(got)))

    def value(self, tp: Any, data: Any, path: str, meta: Mapping[str, Any]) -> Any:
        origin = getattr(tp, "__origin__", None)
        args: Tuple[Any, ...] = tuple(getattr(tp, "__args__", ()) or ())
        if origin is Union:  # Optional[X]
            if data is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.value(inner[0], data, path, meta)
        if origin in (tuple, Tuple, list, List):
            if not isinstance(data, (list, tuple)):
                raise self.error(path, "a list", data)
            items = [self.value(args[0] if args else Any, x, "%s[%d]" % (path, i), meta) for i, x in enumerate(data)]
            return tuple(items) if origin in (tuple, Tuple) else items
        if origin in (dict, Dict):
            if not isinstance(data, Mapping):
                raise self.error(path, "a mapping", data)
            val_tp = args[1] if len(args) == 2 else Any
            out: Dict[str, Any] = {}
            for k, v in data.items():
                if not isinstance(k, str):
                    raise self.error(path, "a mapping with string keys", k)
                out[k] = self.value(val_tp, v, "%s.%s" % (path, k), {})
            return out
        if tp is Any:
            return data
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self.enum(tp, data, path, meta)
        if tp is bool:
            if not isinstance(data, bool):
                raise self.error(path, "true or false", data)
            return data
        if tp is int:
            if isinstance(data, bool) or not isinstance(data, int) or not check_range(data, meta):
                raise self.error(path, "an integer" + range_text(meta), data)
            return data
        if tp is float:
            ok = isinstance(data, (int, float)) and not isinstance(data, bool)
            if not ok or not math.isfinite(float(data)) or not check_range(float(data), meta):
                raise self.error(path, "a number" + range_text(meta), data)
            return float(data)
        if tp is str:
            if not isinstance(data, str) or (self.nonempty_str and not data):
                raise self.error(path, "a non-empty string" if self.nonempty_str else "a string", data)
            choices = meta.get("choices")
            if choices and data not in choices:
                raise self.error(path, "one of " + ", ".join(choices), data)
            return data
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, data, path)
        raise TypeError("schema parser: unsupported type %r at %s" % (tp, path))  # a bug in the schema

    def enum(self, tp: Type[enum.Enum], data: Any, path: str, meta: Mapping[str, Any]) -> Any:
        names = list(meta.get("choices") or [m.name for m in tp])
        if isinstance(data, str) and data.upper() in names:
            return tp[data.upper()]
        raise self.error(path, "one of " + ", ".join(names), data)

    def fields(self, cls: Any, data: Any, path: str, partial: bool = False) -> Dict[str, Any]:
        """The checked constructor arguments of ``cls`` from the mapping ``data`` (``partial``: no key is required)."""
        if not isinstance(data, Mapping):
            raise self.error(path, "a mapping", data)
        fields = [f for f in dataclasses.fields(cls) if f.init and f.name not in self.skip]
        names = [f.name for f in fields]
        if not getattr(cls, "_schema_open", False):
            for key in data:
                if key not in names:
                    raise EdgeRuntimeError("%s: unknown key; expected one of %s (fix its spelling or remove it)"
                                           % (_join(path, str(key)), ", ".join(names)))
        hints = get_type_hints(cls)
        kwargs: Dict[str, Any] = {}
        for f in fields:
            sub = _join(path, f.name)
            if f.name not in data:
                if not partial and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                    raise self._say(sub, "missing (required)")
                continue
            kwargs[f.name] = self.value(hints[f.name], data[f.name], sub, f.metadata)
        return kwargs

    def build(self, cls: Any, kwargs: Mapping[str, Any], path: str, base: Any = None) -> Any:
        """``cls(**kwargs)`` (or ``base`` with ``kwargs`` replaced); a :class:`ConfigError` gets the key path."""
        try:
            return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
        except ConfigError as exc:
            raise self._say(_join(path, exc.key) if exc.key else path, exc.detail) from None

    def dataclass(self, cls: Any, data: Any, path: str) -> Any:
        if cls in self.special:
            return self.special[cls](self, data, path)
        return self.build(cls, self.fields(cls, data, path), path)

    def update(self, obj: Any, data: Any, path: str = "") -> Any:
        """``obj`` (a dataclass instance) with the keys of ``data`` checked and replaced."""
        return self.build(type(obj), self.fields(type(obj), data, path, partial=True), path, base=obj)


def parse(cls: Any, data: Any, origin: str, parser: Optional[Parser] = None, base: Any = None) -> Any:
    """``data`` -> a ``cls`` instance (or ``base`` updated with ``data``'s keys); a mistake is one line
    ``<origin>: <key.path>: expected <what>, got <value> (<parser's hint>)``."""
    p = parser or Parser()
    try:
        return p.update(base, data) if base is not None else p.dataclass(cls, data, "")
    except EdgeRuntimeError as exc:
        raise EdgeRuntimeError("%s: %s" % (origin, exc)) from None
