"""Score decisions against a labelled scenario (:mod:`edge_runtime.scenario`): how good are they?

The decisions come either from a recorded JSONL event log of ``edge-runtime run`` on the scenario's video
(:func:`actions_from_events`: every event names its frame, and between two events the output holds), or from
running a model and a config over the scenario's frames offline (:func:`model_outputs` once, then the real
:class:`~edge_runtime.policy.Policy` at the scenario's frame clock, :func:`policy_actions`).

What :func:`score` measures (frames at the scenario's FPS; ``grace`` default 0.5 s)

- The truth is cut into action segments: maximal runs of frames with the same expected action.
- Per STOP segment, the reaction: frames from its first frame to the first frame decided STOP (and in ms);
  a STOP segment with no STOP frame is MISSED. Reaction p50/p90/max over the caught ones.
- Wrong-action shares: for each expected action, the share of its frames (each segment's first ``grace``
  excluded: the policy may still be releasing the previous segment's action) decided as each other action.
  ``GO during STOP`` is the worst mistake; ``STOP during GO`` (false STOP) costs time.
- Chatter: decision changes, and the spurious ones: changes INTO an action the truth does not ask for.
- Unknown segments (frames that are no CIFAR object): the share decided as the default action (after the grace).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import EdgeRuntimeError
from .fsio import PathLike, write_bytes_atomic, write_json_atomic, write_text_atomic
from .scenario import ACTIONS, Scenario, read_frames, truth
from .figures import png_bytes

__all__ = ["score", "actions_from_events", "model_outputs", "policy_actions", "runs", "markdown", "timeline_png",
           "write_report", "GRACE_S"]

GRACE_S = 0.5
_COLORS = {0: "#2ca02c", 1: "#ff9f1c", 2: "#d62728"}


def runs(x: np.ndarray) -> List[Tuple[int, int, int]]:
    """Maximal runs of equal values: (start, end, value)."""
    x = np.asarray(x)
    if not len(x):
        return []
    cut = np.flatnonzero(np.diff(x)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(x)]])
    return [(int(s), int(e), int(x[s])) for s, e in zip(starts, ends)]


def score(sc: Scenario, actions: np.ndarray, grace_s: float = GRACE_S, default_action: Optional[str] = None,
          truth_runs: Optional[List[Tuple[int, int, int]]] = None) -> Dict[str, Any]:
    """The figures above for per-frame decided ``actions`` (0 GO, 1 SLOW, 2 STOP; -1 = no decision yet)."""
    fps = sc.fps
    tr = truth(sc)
    a = np.asarray(actions)
    if a.shape != tr.shape:
        raise EdgeRuntimeError("%d decisions for a scenario of %d frames" % (len(a), len(tr)))
    g = int(round(grace_s * fps))
    segs = truth_runs if truth_runs is not None else runs(tr)
    reactions: List[int] = []
    missed: List[Dict[str, Any]] = []
    per_stop: List[Dict[str, Any]] = []
    counts = np.zeros((3, 3), np.int64)
    is_stop = a == 2
    for s, e, v in segs:
        if v == 2:
            hit = np.flatnonzero(is_stop[s:e])
            if len(hit):
                reactions.append(int(hit[0]))
                per_stop.append({"start": s, "end": e, "reaction_frames": int(hit[0]),
                                 "reaction_ms": round(hit[0] * 1e3 / fps, 1)})
            else:
                missed.append({"start": s, "end": e})
                per_stop.append({"start": s, "end": e, "reaction_frames": None, "missed": True})
        if e - s > g:
            counts[v] += np.bincount(np.clip(a[s + g:e], 0, 2), minlength=3)[:3]
    share = {}
    for v in range(3):
        tot = int(counts[v].sum())
        share[ACTIONS[v]] = {ACTIONS[d]: (float(counts[v, d] / tot) if tot else None) for d in range(3) if d != v}
        share[ACTIONS[v]]["frames"] = tot
    ch = np.flatnonzero(np.diff(a) != 0) + 1
    ch = ch[a[ch - 1] >= 0]  # the first decision after startup is no change
    spurious = int(np.sum(a[ch] != tr[ch]))
    unk = np.zeros(len(tr), bool)
    for seg in sc.segments:
        if seg.kind == "unknown" and seg.end - seg.start > g:
            unk[seg.start + g:seg.end] = True
    default = ACTIONS.index(default_action or sc.meta.get("default_action", "SLOW"))
    rx = np.array(reactions, np.float64)
    res = {
        "scenario": sc.name, "frames": int(len(tr)), "fps": fps, "grace_s": grace_s,
        "stop_segments": int(sum(1 for _, _, v in segs if v == 2)), "missed_stop_segments": len(missed),
        "missed": missed,
        "reaction_frames": {"p50": _pct(rx, 50), "p90": _pct(rx, 90), "max": float(rx.max()) if len(rx) else None,
                            "mean": float(rx.mean()) if len(rx) else None},
        "reaction_ms": {k: (None if v is None else round(v * 1e3 / fps, 1))
                        for k, v in [("p50", _pct(rx, 50)), ("p90", _pct(rx, 90)),
                                     ("max", float(rx.max()) if len(rx) else None)]},
        "share": share,
        "false_stop_in_go": share["GO"]["STOP"], "go_in_stop": share["STOP"]["GO"],
        "changes": int(len(ch)), "spurious_changes": spurious,
        "changes_per_min": round(len(ch) / (len(tr) / fps / 60.0), 2),
        "unknown_frames": int(unk.sum()),
        "unknown_default_share": float(np.mean(a[unk] == default)) if unk.any() else None,
        "stop_segments_detail": per_stop,
        "reactions": reactions,
    }
    return res


def _pct(x: np.ndarray, q: float) -> Optional[float]:
    """The q-th percentile, rounded up to an observed value (a reaction is a whole number of frames)."""
    if not len(x):
        return None
    xs = np.sort(x)
    return float(xs[int(np.ceil(q / 100.0 * (len(xs) - 1)))])


# ------------------------------------------------------------------------------------------ decisions in
def actions_from_events(sc: Scenario, path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """(per-frame action, per-frame top-class confidence or NaN) from a JSONL event log: each event with a
    ``frame`` (or ``media_ms``) sets the output from that frame on; frames before the first are -1. A log that
    several runs appended to is scored for its last run (from its last ``startup`` change)."""
    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("event log not found: %s; record one with edge-runtime run SCENARIO_VIDEO (the JSONL "
                               "sink writes it)" % p)
    ev: List[Tuple[int, int, float]] = []
    for ln, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError:
            raise EdgeRuntimeError("%s:%d is not JSON; pass the JSONL log written by edge-runtime run" % (p, ln))
        if d.get("reason") == "startup" and d.get("event") == "change":
            ev = []  # a log appended to by several runs: the last run is the one scored
        if d.get("action") not in ACTIONS:
            continue
        f = None
        if d.get("media_ms") is not None:
            f = int(round(float(d["media_ms"]) * sc.fps / 1e3))
        elif d.get("frame") is not None:
            f = int(d["frame"])
        if f is None or f < 0 or f >= sc.frames:
            continue  # startup, final and watchdog events name no frame of this clip
        ev.append((f, ACTIONS.index(d["action"]), float(d["confidence"]) if d.get("confidence") is not None else np.nan))
    if not ev:
        raise EdgeRuntimeError("%s has no events that name a frame (a 'frame' or 'media_ms' field); record it with "
                               "this version of edge-runtime run" % p)
    acts = np.full(sc.frames, -1, np.int8)
    conf = np.full(sc.frames, np.nan)
    ev.sort(key=lambda x: x[0])
    for i, (f, act, c) in enumerate(ev):
        end = ev[i + 1][0] if i + 1 < len(ev) else sc.frames
        acts[f:end] = act
        conf[f] = c
    return acts, conf


def model_outputs(sc: Scenario, runner: Any, manifest: Mapping[str, Any], batch: int = 64) -> np.ndarray:
    """The model's logits for every frame of the scenario, (frames, classes) float32: each frame decoded,
    preprocessed as the runtime does (the manifest's preprocessing, BGR input) and inferred once."""
    from .preprocess import Preprocessor

    prep = Preprocessor(dict(manifest["preprocess"]), bgr=True)
    fixed = getattr(runner, "fixed_batch", None)
    bs = 1 if fixed == 1 else (fixed or batch)
    outs: List[np.ndarray] = []
    buf: List[np.ndarray] = []

    def flush() -> None:
        if not buf:
            return
        x = np.concatenate(buf)
        n = len(x)
        if fixed and n < fixed:
            x = np.concatenate([x, np.repeat(x[-1:], fixed - n, 0)])
        outs.append(np.asarray(runner.infer(x), np.float32).reshape(len(x), -1)[:n])
        buf.clear()

    for img in read_frames(sc):
        buf.append(prep(img))
        if len(buf) >= bs:
            flush()
    flush()
    logits = np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
    if len(logits) != sc.frames:
        raise EdgeRuntimeError("%s: decoded %d frames, the scenario says %d; regenerate it" % (sc.media, len(logits),
                                                                                             sc.frames))
    return logits


def policy_actions(policy: Any, probs: np.ndarray, fps: float) -> Tuple[np.ndarray, np.ndarray]:
    """Run the real Policy over per-frame probabilities at the frame clock (frame i at i / fps): per-frame
    action and top-class confidence."""
    acts = np.empty(len(probs), np.int8)
    for i in range(len(probs)):
        acts[i] = int(policy.decide(probs[i], i / fps, frame_index=i).action)
    return acts, probs.max(axis=1) if len(probs) else np.zeros(0)


# --------------------------------------------------------------------------------------------- reports
def markdown(res: Mapping[str, Any], title: str = "") -> str:
    def f(v: Optional[float], pct: bool = False) -> str:
        if v is None:
            return "-"
        return "%.1f %%" % (100 * v) if pct else "%g" % v

    rf, rm = res["reaction_frames"], res["reaction_ms"]
    lines = ["## %s" % (title or "Score: %s" % res["scenario"]), "",
             "| figure | value |", "|---|---:|",
             "| STOP segments caught | %d of %d (missed %d) |" % (res["stop_segments"] - res["missed_stop_segments"],
                                                                 res["stop_segments"], res["missed_stop_segments"]),
             "| reaction p50 / p90 / max | %s / %s / %s frames (%s / %s / %s ms) |" % (
                 f(rf["p50"]), f(rf["p90"]), f(rf["max"]), f(rm["p50"]), f(rm["p90"]), f(rm["max"])),
             "| false STOP in GO (after %.1f s grace) | %s |" % (res["grace_s"], f(res["false_stop_in_go"], True)),
             "| GO during STOP | %s |" % f(res["go_in_stop"], True),
             "| changes (spurious) | %d (%d), %.1f per minute |" % (res["changes"], res["spurious_changes"],
                                                                    res["changes_per_min"]),
             "| unknown frames decided as the default | %s of %d |" % (f(res["unknown_default_share"], True),
                                                                     res["unknown_frames"]),
             "", "Wrong-action share per expected action (frames after the grace):", "",
             "| expected | frames | GO | SLOW | STOP |", "|---|---:|---:|---:|---:|"]
    for e in ACTIONS:
        row = res["share"][e]
        lines.append("| %s | %d | %s |" % (e, row["frames"], " | ".join("-" if d == e else f(row[d], True)
                                                                       for d in ACTIONS)))
    return "\n".join(lines) + "\n"


def timeline_png(sc: Scenario, actions: np.ndarray, confidence: Optional[np.ndarray], title: str) -> bytes:
    """Truth band, decision band and the top-class confidence over time."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fps = sc.fps
    fig, axes = plt.subplots(3, 1, figsize=(12, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 1, 2]})
    for ax, x, label in ((axes[0], truth(sc), "truth"), (axes[1], np.asarray(actions), "decision")):
        for s, e, v in runs(x):
            ax.axvspan(s / fps, e / fps, color=_COLORS.get(v, "#bbbbbb"), lw=0)
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    for seg in sc.segments:
        if seg.kind == "unknown":
            axes[0].axvspan(seg.start / fps, seg.end / fps, ymin=0.0, ymax=0.35, color="black", lw=0)
    if confidence is not None:
        t = np.arange(len(confidence)) / fps
        c = np.asarray(confidence, np.float64)
        ok = np.isfinite(c)
        sparse = ok.sum() < len(c) / 3  # from an event log: known only at the events, so points, not a line
        axes[2].plot(t[ok], c[ok], lw=0 if sparse else 0.7, color="#1f77b4", marker="o" if sparse else None, ms=3)
        if sparse:
            axes[2].set_title("top-class confidence at the logged events", fontsize=7, loc="left")
    axes[2].set_ylim(0, 1.02)
    axes[2].set_xlim(0, len(actions) / fps)
    axes[2].set_ylabel("top-class\nconfidence", rotation=0, ha="right", va="center")
    axes[2].set_xlabel("time (s) at %g FPS" % fps)
    axes[0].legend(handles=[Patch(color=_COLORS[i], label=ACTIONS[i]) for i in range(3)]
                   + [Patch(color="black", label="unknown object")], ncol=4, fontsize=7, loc="upper right",
                   bbox_to_anchor=(1.0, 1.9))
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    return png_bytes(fig, dpi=90)


def write_report(out_dir: PathLike, res: Dict[str, Any], sc: Scenario, actions: np.ndarray,
                 confidence: Optional[np.ndarray], title: str) -> List[str]:
    """``score.json``, ``score.md`` and ``timeline.png`` in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths = [out / "score.json", out / "score.md", out / "timeline.png"]
    write_json_atomic(paths[0], res)
    write_text_atomic(paths[1], markdown(res, title))
    try:
        png = timeline_png(sc, actions, confidence, title)
    except ImportError:
        return [str(p) for p in paths[:2]]  # no matplotlib (a robot): the numbers only
    write_bytes_atomic(paths[2], png)
    return [str(p) for p in paths]


def scenario_probs(scenarios: Sequence[Scenario], model: Optional[PathLike] = None, backend: Optional[str] = None,
                   threads: Optional[int] = 1) -> Tuple[List[np.ndarray], Dict[str, Any], str, float]:
    """(per-scenario calibrated probabilities, manifest, backend name, seconds) for a model artifact (default: the
    bundled model's build for the backend, as ``edge-runtime run`` picks it); each frame is inferred once."""
    import time

    from .calibration import probabilities
    from .cli.run import default_model
    from .runtime import load_model

    path = Path(model) if model is not None else default_model(backend)
    runner, man = load_model(path, backend or "auto", threads=threads)
    t0 = time.perf_counter()
    with runner:
        probs = [probabilities(model_outputs(sc, runner, man), man) for sc in scenarios]
    return probs, man, "%s (%s)" % (runner.name, path.name), time.perf_counter() - t0
