"""The policy: class probabilities and time in, STOP / SLOW / GO out. Pure, small, and failing safe.

:class:`Policy` is a deterministic function of (probabilities, the time you pass in, its own small
state). It never reads a clock, a camera or a model, so every behaviour below is tested by feeding it
scripted probability sequences and timestamps.

Per frame (:meth:`Policy.evaluate`)
    Each rule sums the probability MASS of its classes (its ``classes`` plus every fine class of its
    ``superclasses``) and fires when the mass reaches its ``min_confidence``. Mass rather than argmax:
    a CIFAR-100 model looking at a dog may put 0.25 on "wolf", 0.2 on "fox" and 0.2 on "raccoon" while
    its argmax is "lawn_mower" at 0.3; "is this an animal?" is the question a rule asks, and the mass
    (0.65) is the model's answer to it. Among the rules that fire, STOP beats SLOW beats GO; when none
    fires, the frame asks for the ``default_action``. A ``GO`` rule therefore only matters when the
    default is stricter (``vehicle.yaml``: default SLOW, GO only on confident open-sky/water classes).

Over time (:meth:`Policy.decide`)
    Escalation: the output becomes action A (stricter than now) when ``trigger_k`` of the last
    ``trigger_n`` valid frames asked for A or something stricter (two STOP frames and one SLOW frame
    out of three give SLOW at k=2). Release: after ``release_m`` consecutive frames that ask for less
    than the output, and not before the output has been held ``min_hold_ms``, the output steps down
    to the strictest action among those clear frames (a STOP released by SLOW-and-GO frames becomes
    SLOW, which then needs its own clear frames). A latched STOP (``latch.stop``) stays STOP until
    :meth:`Policy.reset`, whatever the frames say.

Fail-safe, each with its own :class:`Reason`
    ``startup`` until the first valid frame; ``source_timeout`` when :meth:`Policy.tick` finds no fresh
    frame for ``source_timeout_ms``; ``stale_frame`` for a frame older than ``max_frame_age_ms``;
    ``inference_error``; ``non_finite`` outputs; ``bad_output`` (wrong length, or not probabilities:
    pass softmax outputs, see :func:`softmax`); ``deadline_miss`` when capture-to-decision latency
    exceeds ``deadline_ms`` (configurable STOP or SLOW); ``shutdown`` / ``end_of_stream`` /
    ``source_failed`` from :meth:`Policy.shutdown`, after which every call returns that final STOP.
    A fault sets the output to STOP and then releases like any other STOP (``release_m`` clear frames
    and ``min_hold_ms``), so a flickering camera cannot make the output flap at frame rate. Only
    startup ends on the first valid frame.

Threading: call ``decide``/``tick``/``shutdown`` from one thread (the loop). :meth:`Policy.reset` may
be called from any thread or a signal handler; it takes effect at the next :meth:`decide`.
"""
from __future__ import annotations

import collections
import dataclasses
import enum
import math
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeRuntimeError

if TYPE_CHECKING:  # pragma: no cover
    from .policy_config import PolicyConfig

__all__ = ["Action", "Reason", "Decision", "Evaluation", "Policy", "softmax", "FAILSAFE_REASONS"]


class Action(enum.IntEnum):
    """What the machine may do, ordered by restrictiveness: ``STOP > SLOW > GO`` (``max`` is the safe merge)."""

    GO = 0
    SLOW = 1
    STOP = 2

    def __str__(self) -> str:
        return self.name


class Reason(str, enum.Enum):
    """Why a decision is what it is. The ``value`` is the stable code written to logs and sinks."""

    #: a rule fired on this frame and the output follows it
    RULE = "rule"
    #: no rule fired; the output is the default action
    DEFAULT = "default"
    #: the frame asks for something stricter, but not yet k of the last n frames did
    PENDING = "pending"
    #: the frame asks for less, but release needs more clear frames or the minimum hold time
    HOLD = "hold"
    #: a latched STOP, released only by reset()
    LATCHED = "latched"
    # fail-safe STOPs
    STARTUP = "startup"
    SOURCE_TIMEOUT = "source_timeout"
    STALE_FRAME = "stale_frame"
    INFERENCE_ERROR = "inference_error"
    NON_FINITE = "non_finite"
    BAD_OUTPUT = "bad_output"
    DEADLINE_MISS = "deadline_miss"
    # final STOPs
    SHUTDOWN = "shutdown"
    END_OF_STREAM = "end_of_stream"
    SOURCE_FAILED = "source_failed"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def failsafe(self) -> bool:
        """True for the reasons that force an action regardless of what the model sees."""
        return self in FAILSAFE_REASONS


FAILSAFE_REASONS = frozenset([
    Reason.STARTUP, Reason.SOURCE_TIMEOUT, Reason.STALE_FRAME, Reason.INFERENCE_ERROR, Reason.NON_FINITE,
    Reason.BAD_OUTPUT, Reason.DEADLINE_MISS, Reason.SHUTDOWN, Reason.END_OF_STREAM, Reason.SOURCE_FAILED])
_FINAL_REASONS = (Reason.SHUTDOWN, Reason.END_OF_STREAM, Reason.SOURCE_FAILED)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What one frame alone asks for, before debouncing (:meth:`Policy.evaluate`)."""

    action: Action
    #: label of the rule behind ``action``; None when no rule fired (the default action)
    rule: Optional[str]
    #: that rule's probability mass; None for the default
    score: Optional[float]
    #: the most probable class and its probability
    class_name: str
    confidence: float


@dataclasses.dataclass(frozen=True)
class Decision:
    """One output of the policy. Times are in seconds on the caller's clock (``time.monotonic()``).

    ``changed`` is True when the action, the latch, or a fail-safe reason differs from the previous
    decision (a STOP that stays STOP while its reason goes from ``rule`` to ``hold`` is no change; a STOP
    whose reason becomes ``source_timeout`` is). Sinks that report "one line per change" use it.
    """

    action: Action
    reason: Reason
    t: float
    seq: int
    changed: bool = False
    latched: bool = False
    rule: Optional[str] = None
    score: Optional[float] = None
    class_name: Optional[str] = None
    confidence: Optional[float] = None
    frame_age_s: Optional[float] = None
    latency_s: Optional[float] = None
    detail: str = ""
    #: the source's index of the frame behind this decision (None for decisions made without a frame)
    frame_index: Optional[int] = None
    #: for a file source: the frame's time in the media, seconds from its start
    media_time_s: Optional[float] = None
    #: with several cameras or ``regions:``: the camera and region whose decision this output is (None: the single
    #: source, the whole frame) and every (camera, region)'s own latest decision (:mod:`edge_runtime.regions`)
    camera: Optional[str] = None
    region: Optional[str] = None
    regions: Tuple["Decision", ...] = ()

    @property
    def failsafe(self) -> bool:
        return self.reason.failsafe

    @property
    def t_capture(self) -> Optional[float]:
        """When the frame behind this decision was captured (``t - latency_s``), if known."""
        return None if self.latency_s is None else self.t - self.latency_s

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready, with stable keys (None where a value does not apply); times in ms."""

        def r(x: Optional[float], k: int) -> Optional[float]:
            return None if x is None else round(float(x), k)

        return {
            "seq": self.seq, "t": r(self.t, 6), "action": self.action.name, "reason": self.reason.value,
            "changed": self.changed, "latched": self.latched, "rule": self.rule, "score": r(self.score, 4),
            "class": self.class_name, "confidence": r(self.confidence, 4),
            "frame_age_ms": r(None if self.frame_age_s is None else self.frame_age_s * 1e3, 3),
            "latency_ms": r(None if self.latency_s is None else self.latency_s * 1e3, 3),
            "detail": self.detail,
            "frame": self.frame_index, "t_capture": r(self.t_capture, 6),
            "media_ms": r(None if self.media_time_s is None else self.media_time_s * 1e3, 3),
            "camera": self.camera, "region": self.region,
            "regions": [{"camera": d.camera, "region": d.region, "action": d.action.name, "reason": d.reason.value,
                         "rule": d.rule, "score": r(d.score, 4), "class": d.class_name,
                         "confidence": r(d.confidence, 4)} for d in self.regions],
        }

    def summary(self) -> str:
        """One human line: ``STOP rule animals 0.83 | dog 0.61 | 2.1 ms``."""
        parts = ["%-4s %s" % (self.action.name, self.reason.value)]
        if self.camera is not None or self.region is not None:
            parts[0] += " [%s]" % "/".join(x for x in (self.camera, self.region) if x is not None)
        if self.latched and self.reason is not Reason.LATCHED:
            parts[0] += " (latched)"
        if self.rule is not None and self.score is not None:
            parts[0] += " %s %.2f" % (self.rule, self.score)
        if self.class_name is not None and self.confidence is not None:
            parts.append("%s %.2f" % (self.class_name, self.confidence))
        if self.latency_s is not None:
            parts.append("%.1f ms" % (self.latency_s * 1e3))
        if self.detail:
            parts.append(self.detail)
        return " | ".join(parts)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64 (Runners return logits; :meth:`Policy.decide` takes probabilities).
    Array methods and in-place ufuncs only: this runs once per frame on the loop's thread."""
    z = np.array(logits, dtype=np.float64)  # a copy, worked on in place
    z -= z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


class Policy:
    """Rules + debounce + fail-safes, as configured by a :class:`~edge_runtime.config.PolicyConfig`.

    ``class_names`` (and for superclass rules ``superclass_names`` and ``fine_to_coarse``) come from the
    model's manifest; :meth:`from_manifest` reads them there. Unknown names raise
    :class:`~edge_runtime.errors.EdgeRuntimeError` listing the valid ones.
    """

    #: Allowed deviation of the probabilities' sum from 1 (FP16/INT8 outputs are not exact).
    SUM_TOLERANCE = 0.02

    def __init__(self, config: "PolicyConfig", class_names: Sequence[str],
                 superclass_names: Optional[Sequence[str]] = None,
                 fine_to_coarse: Optional[Sequence[int]] = None) -> None:
        config.validate_against(class_names, superclass_names)
        self.config = config
        self.class_names: List[str] = list(class_names)
        n = len(self.class_names)
        f2c = None
        if any(rule.superclasses for rule in config.rules):
            if fine_to_coarse is None or len(fine_to_coarse) != n:
                raise EdgeRuntimeError("policy: superclass rules need the model's fine_to_coarse map with one entry per "
                                       "class (%d); the manifest's dataset.superclasses lacks it" % n)
            f2c = np.asarray(fine_to_coarse, dtype=np.int64)
        masks = np.zeros((len(config.rules), n), dtype=np.float64)
        for i, rule in enumerate(config.rules):
            for name in rule.classes:
                masks[i, self.class_names.index(name)] = 1.0
            for sname in rule.superclasses:
                assert f2c is not None and superclass_names is not None
                masks[i, f2c == list(superclass_names).index(sname)] = 1.0
        self._masks = masks
        self._rule_action = [rule.action for rule in config.rules]
        self._rule_min = [float(rule.min_confidence) for rule in config.rules]
        self._rule_label = [config.rule_label(i) for i in range(len(config.rules))]
        #: the uncertainty gate (policy.uncertain_below): top-class probability below it -> the default action
        self._gate: Optional[float] = getattr(config, "uncertain_below", None)
        #: rule indices grouped by action, strictest action first (the per-frame scan in _evaluate)
        self._by_action = [(a, [i for i, ra in enumerate(self._rule_action) if ra is a])
                           for a in (Action.STOP, Action.SLOW, Action.GO)]
        self._by_action = [(a, idx) for a, idx in self._by_action if idx]
        deb, to = config.debounce, config.timeouts
        self._k, self._n, self._m = deb.trigger_k, deb.trigger_n, deb.release_m
        self._hold = deb.min_hold_ms / 1e3
        self._source_timeout = to.source_timeout_ms / 1e3
        self._max_age = to.max_frame_age_ms / 1e3
        self._deadline = to.deadline_ms / 1e3
        self._deadline_action = to.deadline_action
        self._clear_state()

    @classmethod
    def from_manifest(cls, config: "PolicyConfig", manifest: Mapping[str, Any]) -> "Policy":
        """Build from a model manifest (``dataset.class_names`` and optional ``dataset.superclasses``)."""
        ds = manifest["dataset"]
        sc = ds.get("superclasses") or {}
        return cls(config, ds["class_names"], sc.get("names"), sc.get("fine_to_coarse"))

    # ------------------------------------------------------------------------------------------ state
    def _clear_state(self) -> None:
        self._t0: Optional[float] = None
        self._last_frame_t: Optional[float] = None
        self._level: Optional[Action] = None  # None: startup, no valid frame yet
        self._since = 0.0
        self._history: Deque[Action] = collections.deque(maxlen=self._n)
        self._clear_run = 0
        self._clear_max = Action.GO
        self._latched = False
        self._reset_requested = False
        self._final: Optional[Decision] = None
        self._last: Optional[Decision] = None
        self._seq = 0
        self._counts: Dict[str, int] = {}
        self._frame: Tuple[Optional[int], Optional[float]] = (None, None)  # (index, media time) of the frame now decided

    @property
    def current(self) -> Optional[Decision]:
        """The latest decision (None before the first call)."""
        return self._last

    @property
    def latched(self) -> bool:
        return self._latched

    @property
    def poll_interval_s(self) -> float:
        """How long the loop should wait for a frame before calling :meth:`tick` (a quarter of the source
        timeout, at most 50 ms), so a stalled source is noticed within ``source_timeout_ms`` + this."""
        return min(self._source_timeout / 4.0, 0.05)

    def stats(self) -> Dict[str, int]:
        """Decisions counted by reason code (``stale_frame``, ``deadline_miss``, ...) and in total."""
        out = dict(self._counts)
        out["decisions"] = self._seq
        return out

    def reset(self) -> None:
        """Release a latched STOP at the next :meth:`decide` (thread- and signal-safe: sets a flag).

        The debounce window starts afresh: if ``trigger_k`` new frames still ask for STOP, it latches
        again; otherwise the output follows the ordinary release rules (``release_m`` clear frames,
        ``min_hold_ms``).
        """
        self._reset_requested = True

    # -------------------------------------------------------------------------------------- per frame
    def _check(self, probs: Optional[np.ndarray]) -> Tuple[Optional[np.ndarray], Optional[Reason], str]:
        """Valid probabilities -> (p, None, ""); otherwise (None, reason, what was wrong)."""
        n = len(self.class_names)
        if probs is None:
            return None, Reason.BAD_OUTPUT, "no output"
        p = np.asarray(probs)
        if p.ndim == 2 and p.shape[0] == 1:
            p = p[0]
        if p.shape != (n,) or p.dtype.kind not in "fiu":
            return None, Reason.BAD_OUTPUT, "expected %d probabilities, got shape %s dtype %s" % (n, p.shape, p.dtype)
        total = float(p.sum())  # NaN or infinite as soon as one output is: one reduction checks both
        if not math.isfinite(total):
            bad = int((~np.isfinite(p)).sum())
            if bad:  # (a finite sum that overflowed falls through to "not probabilities" below)
                return None, Reason.NON_FINITE, "%d of %d outputs are NaN or infinite" % (bad, n)
        if abs(total - 1.0) > self.SUM_TOLERANCE or float(p.min()) < -1e-3:
            return None, Reason.BAD_OUTPUT, ("outputs are not probabilities (sum %.4g, min %.4g); apply softmax to "
                                             "logits first (edge_runtime.policy.softmax)" % (total, float(p.min())))
        return p, None, ""

    def evaluate(self, probs: np.ndarray) -> Evaluation:
        """What one frame asks for by the rules alone (no debounce, no state). Raises
        :class:`ValueError` for outputs that are not valid probabilities."""
        p, bad, detail = self._check(probs)
        if p is None:
            raise ValueError("%s: %s" % (bad, detail))
        return self._evaluate(p)

    def _evaluate(self, p: np.ndarray) -> Evaluation:
        top = int(p.argmax())
        name, conf = self.class_names[top], float(p[top])
        gate = self._gate
        if gate is not None and conf < gate:  # looks like none of the classes: the default action
            return Evaluation(self.config.default_action, None, None, name, conf)
        if self._by_action:
            scores = (self._masks @ p.astype(np.float64, copy=False)).tolist()
            for action, rules in self._by_action:  # STOP, then SLOW, then GO: the strictest rule that fired wins
                best = -1
                for i in rules:
                    # a mass summed from float32 may round just under its threshold: 1e-9 of slack
                    if scores[i] >= self._rule_min[i] - 1e-9 and (best < 0 or scores[i] > scores[best]):
                        best = i
                if best >= 0:
                    return Evaluation(action, self._rule_label[best], scores[best], name, conf)
        return Evaluation(self.config.default_action, None, None, name, conf)

    # ------------------------------------------------------------------------------------ entry points
    def decide(self, probs: Optional[np.ndarray], t: float, frame_age_s: Optional[float] = None,
               latency_s: Optional[float] = None, error: Optional[str] = None, frame_index: Optional[int] = None,
               media_time_s: Optional[float] = None) -> Decision:
        """The decision for one frame.

        ``probs``: class probabilities, shape ``(C,)`` or ``(1, C)`` (None with ``error``).
        ``t``: now, on the same clock as the frame's capture stamp (``time.monotonic()``).
        ``frame_age_s``: how old the frame was when the loop took it from the source.
        ``latency_s``: capture to now (what ``deadline_ms`` bounds).
        ``error``: the inference error's text, if inference failed.
        ``frame_index`` / ``media_time_s``: which frame this is (the source's index; a file's media time); copied
        into the decision so events can be lined up with the video.
        """
        if self._final is not None:
            return self._repeat(self._final, t)
        self._frame = (frame_index, media_time_s)
        self._begin(t)
        if self._reset_requested:  # fresh evidence from here: a STOP still in view latches again
            self._reset_requested = False
            self._latched = False
            self._history.clear()
        stale = frame_age_s is not None and frame_age_s > self._max_age
        if not stale:
            self._last_frame_t = t
        if error is not None:
            return self._fault(t, Reason.INFERENCE_ERROR, str(error), frame_age_s=frame_age_s, latency_s=latency_s)
        p, bad, detail = self._check(probs)
        if p is None:
            assert bad is not None
            return self._fault(t, bad, detail, frame_age_s=frame_age_s, latency_s=latency_s)
        ev = self._evaluate(p)
        if stale:
            assert frame_age_s is not None
            return self._fault(t, Reason.STALE_FRAME, "frame is %.0f ms old (max_frame_age_ms %g)"
                               % (frame_age_s * 1e3, self._max_age * 1e3), ev.rule, ev.score, ev.class_name,
                               ev.confidence, frame_age_s, latency_s)
        self._step(ev.action, t)
        assert self._level is not None
        if latency_s is not None and latency_s > self._deadline:
            action = self._deadline_action
            if action >= self._level:
                self._enter(action, t)
                if action is Action.STOP and self.config.latch.faults:
                    self._latched = True
                return self._emit(Action.STOP if self._latched else action, Reason.DEADLINE_MISS, t,
                                  "decided %.1f ms after capture (deadline_ms %g)"
                                  % (latency_s * 1e3, self._deadline * 1e3), ev.rule, ev.score, ev.class_name,
                                  ev.confidence, frame_age_s, latency_s)
        if self._latched:
            return self._emit(Action.STOP, Reason.LATCHED, t, "reset() releases it", ev.rule, ev.score,
                              ev.class_name, ev.confidence, frame_age_s, latency_s)
        level = self._level
        if level == ev.action:
            reason, detail = (Reason.RULE if ev.rule is not None else Reason.DEFAULT), ""
        elif level > ev.action:
            held = t - self._since
            reason = Reason.HOLD
            detail = "%s held: %d/%d clear frames, %.2f/%.2f s" % (level.name, self._clear_run, self._m,
                                                                   held, self._hold)
        else:
            reason = Reason.PENDING
            votes = sum(1 for x in self._history if x >= ev.action)
            detail = "%s pending: %d of the last %d frames (needs %d)" % (ev.action.name, votes, len(self._history),
                                                                         self._k)
        return self._emit(level, reason, t, detail, ev.rule, ev.score, ev.class_name, ev.confidence, frame_age_s,
                          latency_s)

    def tick(self, t: float) -> Decision:
        """Call when the source gave no frame: STOP (``source_timeout``) once no fresh frame has come for
        ``source_timeout_ms``; otherwise the current decision again (``changed`` False)."""
        if self._final is not None:
            return self._repeat(self._final, t)
        self._frame = (None, None)
        self._begin(t)
        ref = self._last_frame_t if self._last_frame_t is not None else self._t0
        assert ref is not None
        if t - ref > self._source_timeout:
            return self._fault(t, Reason.SOURCE_TIMEOUT, "no fresh frame for %.0f ms (source_timeout_ms %g)"
                               % ((t - ref) * 1e3, self._source_timeout * 1e3))
        if self._last is None:
            return self._emit(Action.STOP, Reason.STARTUP, t, detail="waiting for the first valid frame")
        return self._repeat(self._last, t)

    def shutdown(self, t: float, reason: Reason = Reason.SHUTDOWN, detail: str = "") -> Decision:
        """The final STOP (``shutdown``, ``end_of_stream`` or ``source_failed``); every later call returns it."""
        if reason not in _FINAL_REASONS:
            raise ValueError("shutdown reason must be one of %s, got %r" % ([r.value for r in _FINAL_REASONS], reason))
        if self._final is not None:
            return self._repeat(self._final, t)
        self._frame = (None, None)
        self._final = self._emit(Action.STOP, reason, t, detail=detail)
        return self._final

    # ------------------------------------------------------------------------------------------ steps
    def _begin(self, t: float) -> None:
        if self._t0 is None:
            self._t0 = t

    def _enter(self, level: Action, t: float) -> None:
        self._level = level
        self._since = t
        self._clear_run = 0
        self._clear_max = Action.GO

    def _step(self, c: Action, t: float) -> None:
        """Debounce one valid frame that asks for ``c``."""
        self._history.append(c)
        stop_votes = sum(1 for x in self._history if x is Action.STOP)
        if self.config.latch.stop and stop_votes >= self._k:
            self._latched = True  # k of the last n frames ask for STOP: latch (also right after a reset)
        if self._level is None:  # the first valid frame ends startup
            self._enter(c, t)
            return
        for action in (Action.STOP, Action.SLOW):
            if action <= self._level:
                break
            if sum(1 for x in self._history if x >= action) >= self._k:
                self._enter(action, t)
                break
        if c < self._level:
            self._clear_run += 1
            self._clear_max = max(self._clear_max, c)
            if self._clear_run >= self._m and t - self._since >= self._hold:
                self._enter(self._clear_max, t)
                # forget older, stricter frames so they cannot re-trigger what was just released
                keep = list(self._history)[-min(self._m, self._n):]
                self._history = collections.deque(keep, maxlen=self._n)
        else:
            self._clear_run = 0
            self._clear_max = Action.GO

    def _fault(self, t: float, reason: Reason, detail: str, rule: Optional[str] = None,
               score: Optional[float] = None, class_name: Optional[str] = None, confidence: Optional[float] = None,
               frame_age_s: Optional[float] = None, latency_s: Optional[float] = None) -> Decision:
        """A fail-safe STOP. During startup it leaves startup pending; afterwards the output becomes STOP and
        releases by the ordinary rules."""
        if self._level is not None:
            self._enter(Action.STOP, t)
            self._history.clear()
            if self.config.latch.faults:
                self._latched = True
        return self._emit(Action.STOP, reason, t, detail, rule, score, class_name, confidence, frame_age_s, latency_s)

    def _emit(self, action: Action, reason: Reason, t: float, detail: str = "", rule: Optional[str] = None,
              score: Optional[float] = None, class_name: Optional[str] = None, confidence: Optional[float] = None,
              frame_age_s: Optional[float] = None, latency_s: Optional[float] = None) -> Decision:
        """The decision, with ``changed`` against the previous one (explicit arguments: this runs per frame)."""
        prev = self._last
        key = (action, self._latched, reason if reason.failsafe else None)
        changed = prev is None or key != (prev.action, prev.latched, prev.reason if prev.reason.failsafe else None)
        self._seq += 1
        d = Decision(action, reason, t, self._seq, changed, self._latched, rule, score, class_name, confidence,
                     frame_age_s, latency_s, detail, self._frame[0], self._frame[1])
        self._counts[reason.value] = self._counts.get(reason.value, 0) + 1
        self._last = d
        return d

    def _repeat(self, d: Decision, t: float) -> Decision:
        self._seq += 1
        self._counts[d.reason.value] = self._counts.get(d.reason.value, 0) + 1
        again = dataclasses.replace(d, t=t, seq=self._seq, changed=False)
        self._last = again if self._final is None else self._last
        return again
