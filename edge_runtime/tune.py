"""Tune the policy on labelled scenarios: sweep its parameters, replay, keep the Pareto front, write the chosen YAML.

The model's outputs are computed ONCE per frame of each scenario (:func:`edge_runtime.score.model_outputs`, then
calibrated probabilities, :func:`edge_runtime.calibration.probabilities`); every swept config then only replays
the pure policy over them. The replay is split like the policy itself:

- per frame (vectorized over all frames): each rule's probability mass is computed once (``probs @ masks``);
  a config's thresholds turn it into the action each frame asks for (strictest rule that fires, else the
  default; with an uncertainty gate, frames whose top-class probability is below it ask for the default);
- over time (:func:`debounce`): the trigger k-of-n / release m / min-hold state machine of
  :meth:`Policy._step`, as a tight integer loop (the same arithmetic, frame i at time i / fps; a test checks it
  decision for decision against :class:`~edge_runtime.policy.Policy`).

Selection: a config that misses a STOP segment in any scenario is never recommended. Among the others the
Pareto front over (reaction p90, false-STOP share in GO, GO during STOP) is reported, and :func:`choose` picks:
react within ``max_reaction_frames`` (p90), then the least GO during STOP (the worst mistake), then false STOP
within its goal (or the lowest), then the least chatter; if none reacts that fast, the fastest.
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeRuntimeError
from .scenario import ACTIONS, Scenario, truth
from .score import runs, score

__all__ = ["Params", "debounce", "Replay", "sweep", "grid", "pareto", "choose", "tuned_yaml"]


@dataclasses.dataclass(frozen=True)
class Params:
    """One point of the sweep."""

    thresholds: Tuple[float, ...]
    trigger_k: int
    trigger_n: int
    release_m: int
    min_hold_ms: float
    gate: float = 0.0  # uncertainty gate: top-class probability below it -> default (0: off)

    def label(self, rule_names: Sequence[str]) -> str:
        th = " ".join("%s>=%.2f" % (r, t) for r, t in zip(rule_names, self.thresholds))
        return "%s k%d/n%d m%d hold %g ms%s" % (th, self.trigger_k, self.trigger_n, self.release_m, self.min_hold_ms,
                                               " gate %.2f" % self.gate if self.gate > 0 else "")


def debounce(acts: Any, fps: float, k: int, n: int, m: int, min_hold_ms: float) -> np.ndarray:
    """The policy's debounce over per-frame requested actions (a sequence or array; 0 GO, 1 SLOW, 2 STOP), frame i at i / fps, for
    valid frames without latch or deadline: :meth:`Policy._step` as integer arithmetic. Returns the output per frame."""
    a = [int(x) for x in acts]
    out = np.empty(len(a), np.int8)
    hold = min_hold_ms / 1e3
    hist: collections.deque = collections.deque()
    ge1 = ge2 = 0
    level = -1
    since = 0.0
    clear_run = clear_max = 0
    for i, c in enumerate(a):
        t = i / fps
        if len(hist) == n:
            old = hist.popleft()
            ge1 -= old >= 1
            ge2 -= old >= 2
        hist.append(c)
        ge1 += c >= 1
        ge2 += c >= 2
        if level < 0:
            level, since, clear_run, clear_max = c, t, 0, 0
            out[i] = c
            continue
        if level < 2 and ge2 >= k:
            level, since, clear_run, clear_max = 2, t, 0, 0
        elif level < 1 and ge1 >= k:
            level, since, clear_run, clear_max = 1, t, 0, 0
        if c < level:
            clear_run += 1
            if c > clear_max:
                clear_max = c
            if clear_run >= m and t - since >= hold:
                level, since, clear_run, clear_max = clear_max, t, 0, 0
                keep = list(hist)[-min(m, n):]
                hist = collections.deque(keep)
                ge1 = sum(1 for x in keep if x >= 1)
                ge2 = sum(1 for x in keep if x >= 2)
        else:
            clear_run = clear_max = 0
        out[i] = level
    return out


class Replay:
    """Model outputs of one or more scenarios, ready to replay any :class:`Params` of a policy's rule set."""

    def __init__(self, policy_config: Any, class_names: Sequence[str], scenarios: Sequence[Scenario],
                 probs: Sequence[np.ndarray], superclass_names: Optional[Sequence[str]] = None,
                 fine_to_coarse: Optional[Sequence[int]] = None) -> None:
        from .policy import Policy

        pol = Policy(policy_config, class_names, superclass_names, fine_to_coarse)
        self.config = policy_config
        self.rule_names = [policy_config.rule_label(i) for i in range(len(policy_config.rules))]
        self.rule_actions = [int(r.action) for r in policy_config.rules]
        self.default = int(policy_config.default_action)
        self.scenarios = list(scenarios)
        self.mass = [np.asarray(p, np.float64) @ pol._masks.T for p in probs]  # (frames, rules) per scenario
        self.top = [np.asarray(p, np.float64).max(axis=1) for p in probs]
        self.truth_runs = [runs(truth(sc)) for sc in self.scenarios]
        self._asks: Dict[Tuple[Tuple[float, ...], float], List[np.ndarray]] = {}

    def asks(self, thresholds: Sequence[float], gate: float = 0.0) -> List[np.ndarray]:
        """Per scenario, the action each frame asks for (cached per thresholds + gate)."""
        key = (tuple(float(t) for t in thresholds), float(gate))
        hit = self._asks.get(key)
        if hit is not None:
            return hit
        th = np.asarray(key[0]) - 1e-9  # the policy's slack for masses summed from float32
        out = []
        for mass, top in zip(self.mass, self.top):
            act = np.full(len(mass), self.default, np.int8)
            fires = mass >= th
            for a in (0, 1, 2):  # GO, SLOW, STOP: the strictest rule that fires wins
                idx = [i for i, ra in enumerate(self.rule_actions) if ra == a]
                if idx:
                    act[fires[:, idx].any(axis=1)] = a
            if gate > 0:
                act[top < gate] = self.default
            out.append(act)
        if len(self._asks) > 4096:
            self._asks.clear()
        self._asks[key] = out
        return out

    def decisions(self, p: Params) -> List[np.ndarray]:
        return [debounce(a, sc.fps, p.trigger_k, p.trigger_n, p.release_m, p.min_hold_ms)
                for a, sc in zip(self.asks(p.thresholds, p.gate), self.scenarios)]

    def evaluate(self, p: Params, grace_s: float = 0.5) -> Dict[str, Any]:
        """Pooled figures over the scenarios (and each scenario's own)."""
        per = [score(sc, d, grace_s, truth_runs=tr) for sc, d, tr in zip(self.scenarios, self.decisions(p),
                                                                          self.truth_runs)]
        return pool(per)


def pool(per: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """One set of figures from several scenarios' scores: counts add up, reactions are pooled."""
    rx = np.array([r for s in per for r in s["reactions"]], np.float64)

    def share(exp: str, dec: str) -> Optional[float]:
        num = sum(s["share"][exp][dec] * s["share"][exp]["frames"] for s in per if s["share"][exp][dec] is not None)
        den = sum(s["share"][exp]["frames"] for s in per)
        return float(num / den) if den else None

    unk_n = sum(s["unknown_frames"] for s in per)
    unk = sum((s["unknown_default_share"] or 0.0) * s["unknown_frames"] for s in per)
    minutes = sum(s["frames"] / s["fps"] for s in per) / 60.0
    return {
        "missed_stop_segments": int(sum(s["missed_stop_segments"] for s in per)),
        "stop_segments": int(sum(s["stop_segments"] for s in per)),
        "reaction_p50": float(np.percentile(rx, 50)) if len(rx) else None,
        "reaction_p90": float(np.sort(rx)[int(np.ceil(0.9 * (len(rx) - 1)))]) if len(rx) else None,
        "reaction_max": float(rx.max()) if len(rx) else None,
        "false_stop_in_go": share("GO", "STOP"), "slow_in_go": share("GO", "SLOW"),
        "go_in_stop": share("STOP", "GO"), "go_in_slow": share("SLOW", "GO"),
        "changes_per_min": round(sum(s["changes"] for s in per) / max(minutes, 1e-9), 2),
        "spurious_per_min": round(sum(s["spurious_changes"] for s in per) / max(minutes, 1e-9), 2),
        "unknown_default_share": float(unk / unk_n) if unk_n else None,
        "scenarios": [s["scenario"] for s in per],
    }


def grid(n_rules: int, thresholds: Sequence[Sequence[float]], kn: Sequence[Tuple[int, int]], release_m: Sequence[int],
         min_hold_ms: Sequence[float], gates: Sequence[float]) -> List[Params]:
    if len(thresholds) != n_rules:
        raise EdgeRuntimeError("%d threshold lists for %d rules" % (len(thresholds), n_rules))
    return [Params(tuple(th), k, n, m, h, g) for th in itertools.product(*thresholds) for (k, n) in kn
            for m in release_m for h in min_hold_ms for g in gates]


def sweep(replay: Replay, params: Sequence[Params], grace_s: float = 0.5) -> Tuple[List[Dict[str, Any]], float]:
    """Evaluate every config; returns (rows, seconds)."""
    t0 = time.perf_counter()
    rows = []
    for p in params:
        r = replay.evaluate(p, grace_s)
        r["params"] = p
        rows.append(r)
    return rows, time.perf_counter() - t0


def _key(r: Mapping[str, Any]) -> Tuple[float, float, float]:
    inf = float("inf")
    return (r["reaction_p90"] if r["reaction_p90"] is not None else inf,
            r["false_stop_in_go"] if r["false_stop_in_go"] is not None else 0.0,
            r["go_in_stop"] if r["go_in_stop"] is not None else 0.0)


def pareto(rows: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The configs that miss no STOP segment and that no other such config beats on all of (reaction p90,
    false-STOP share in GO, GO during STOP); sorted by false-STOP share."""
    ok = [r for r in rows if r["missed_stop_segments"] == 0]
    keys = [_key(r) for r in ok]
    front = []
    for i, r in enumerate(ok):
        ki = keys[i]
        dominated = any(all(a <= b for a, b in zip(kj, ki)) and kj != ki for kj in keys)
        if not dominated:
            front.append(r)
    seen, out = set(), []
    for r in sorted(front, key=lambda r: (_key(r)[1], _key(r)[0], _key(r)[2], r["changes_per_min"])):
        k = _key(r)
        if k not in seen:  # one config per point (ties: fewest changes first)
            seen.add(k)
            out.append(r)
    return out


def choose(rows: Sequence[Mapping[str, Any]], max_reaction_frames: float = 3.0, max_false_stop: float = 0.05,
           max_go_in_stop: float = 0.0) -> Optional[Mapping[str, Any]]:
    """The recommended config (None when every config misses a STOP segment). Among those that miss none and react
    within ``max_reaction_frames`` (p90): the safest first (GO during STOP within ``max_go_in_stop``, or the lowest
    share any of them has); of those, the ones whose false-STOP share is within ``max_false_stop`` (or the lowest
    one's); of those, the least chatter (spurious changes per minute), then SLOW in GO, then false STOP. If none
    reacts that fast: the fastest."""
    ok = [r for r in rows if r["missed_stop_segments"] == 0]
    if not ok:
        return None
    fast = [r for r in ok if r["reaction_p90"] is not None and r["reaction_p90"] <= max_reaction_frames]
    if not fast:
        return min(ok, key=lambda r: (_key(r)[0], _key(r)[2], _key(r)[1]))
    safe_bar = max(max_go_in_stop, min(_key(r)[2] for r in fast)) + 1e-12
    safe = [r for r in fast if _key(r)[2] <= safe_bar]
    bar = max(max_false_stop, min(_key(r)[1] for r in safe)) + 1e-12
    good = [r for r in safe if _key(r)[1] <= bar]
    return min(good, key=lambda r: (r.get("spurious_per_min", 0.0), r["slow_in_go"] or 0.0, _key(r)[1], _key(r)[0]))


def tuned_yaml(base: Mapping[str, Any], p: Params, rule_names: Sequence[str], figures: Mapping[str, Any],
               scenarios: Sequence[str], command: str, model: str, backend: str) -> str:
    """The base config (parsed YAML) with the chosen policy parameters, headed by comments stating the measured
    figures and the scenarios they come from."""
    import copy

    import yaml

    data = copy.deepcopy(dict(base))
    pol = data.setdefault("policy", {})
    for rule, th in zip(pol.get("rules", []), p.thresholds):
        rule["min_confidence"] = round(float(th), 4)
    deb = pol.setdefault("debounce", {})
    deb.update(trigger_k=p.trigger_k, trigger_n=p.trigger_n, release_m=p.release_m, min_hold_ms=p.min_hold_ms)
    if p.gate > 0:
        pol["uncertain_below"] = round(float(p.gate), 4)
    else:
        pol.pop("uncertain_below", None)

    def f(v: Optional[float], pct: bool = False) -> str:
        return "-" if v is None else ("%.2f %%" % (100 * v) if pct else "%g" % v)

    head = [
        "# Tuned by: %s" % command,
        "# Model: %s (%s); thresholds are calibrated probabilities when the model's manifest has a calibration" % (
            model, backend),
        "# Scenarios: %s" % ", ".join(scenarios),
        "# Measured on them with this policy: missed STOP segments %d of %d; reaction p50 %s / p90 %s / max %s frames;" % (
            figures["missed_stop_segments"], figures["stop_segments"], f(figures["reaction_p50"]),
            f(figures["reaction_p90"]), f(figures["reaction_max"])),
        "#   false STOP in GO (after the grace) %s; GO during STOP %s; SLOW in GO %s; %s changes/min; unknown -> default %s" % (
            f(figures["false_stop_in_go"], True), f(figures["go_in_stop"], True), f(figures["slow_in_go"], True),
            figures["changes_per_min"], f(figures["unknown_default_share"], True)),
        "# Policy: %s" % p.label(rule_names),
        "",
    ]
    return "\n".join(head) + yaml.safe_dump(data, sort_keys=False)
