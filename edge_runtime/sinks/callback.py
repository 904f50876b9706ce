"""The callback sink: a Python callable (``module:function`` in a config, any callable from the API) called with
each decision on the sink's own thread."""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Optional

from ..errors import EdgeRuntimeError
from ..policy import Decision
from ..schema import opt
from .base import Sink, SinkEvent

__all__ = ["CallbackSinkOptions", "CallbackSink", "import_target"]


@dataclasses.dataclass(frozen=True)
class CallbackSinkOptions:
    """A Python callable ``module:function`` taking a Decision; every decision or only changes."""

    target: str
    every_decision: bool = False
    heartbeat_s: Optional[float] = opt(None, lo=0, lo_open=True)


class CallbackSink(Sink):
    """Calls ``fn(decision)`` on the sink's worker thread (so a slow callback cannot stall the loop)."""

    def __init__(self, fn: Callable[[Decision], Any], every_decision: bool = False,
                 heartbeat_s: Optional[float] = None, name: Optional[str] = None) -> None:
        if not callable(fn):
            raise TypeError("CallbackSink needs a callable, got %r" % (fn,))
        self.fn = fn
        self.every_decision = every_decision
        self.heartbeat_s = heartbeat_s
        self.name = name or "callback:%s" % getattr(fn, "__name__", type(fn).__name__)

    def write(self, event: SinkEvent) -> None:
        self.fn(event.decision)


def import_target(target: str) -> Callable[[Decision], Any]:
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise EdgeRuntimeError("callback sink: target %r must be 'module:function'" % target)
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise EdgeRuntimeError("callback sink: cannot import %s (%s)" % (target, exc))
    if not callable(obj):
        raise EdgeRuntimeError("callback sink: %s is not callable" % target)
    return obj  # type: ignore[no-any-return]
