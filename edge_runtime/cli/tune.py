"""Tune the policy on labelled scenarios: sweep thresholds and debounce, report the Pareto front, write the YAML.

The model runs once over every frame of each SCENARIO (its .json); each swept config then only replays the
policy (edge_runtime/tune.py), so hundreds of configs take seconds. Swept: each rule's min_confidence
(--thresholds RULE=v1,v2,...; default 0.2-0.9 for every rule), trigger k/n (--kn 2/3,1/1,...), release m,
min hold and an optional uncertainty gate (--gate: frames whose top-class probability is below it ask for the
default action; 0 = off). --max-configs samples that grid (seeded) when it is larger; the base config is
always evaluated too.

A config that misses a STOP segment in any scenario is never recommended. Among the others: the Pareto front
over (reaction p90, false-STOP share in GO, GO during STOP), and the chosen one: reaction p90 <=
--max-reaction-frames; then the least GO during STOP (within --max-go-in-stop); then false STOP within
--max-false-stop (or the lowest); then the least chatter (spurious changes per minute). Writes tune.json,
tune.md, pareto.png to --out and the chosen config to --out-config (comments state its measured figures and the scenarios). Probabilities are calibrated
with the model manifest's temperature when it has one.

Examples:
  edge-runtime tune deploy/scenarios/tune-s1.json deploy/scenarios/tune-s2.json --config deploy/configs/vehicle.yaml
  edge-runtime tune runs/sc/*.json --kn 2/3,3/4 --release-m 4,8 --min-hold-ms 0,500,1000 --max-configs 300
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Sequence, Tuple

from ..config import flag_type
from ._common import command_line
from ..figures import png_bytes


def _list(item: Callable[[str], Any], what: str) -> Callable[[str], List[Any]]:
    """An argparse ``type=`` for a comma-separated list, each value checked by ``item`` (a :func:`flag_type`):
    ``--gate 0.2,1.5`` -> ``argument --gate: expected a number in [0, 1], got '1.5' (in '0.2,1.5')``."""
    def parse(s: str) -> List[Any]:
        vals = [x.strip() for x in s.split(",") if x.strip()]
        if not vals:
            raise argparse.ArgumentTypeError("expected %s, got %r" % (what, s))
        out = []
        for v in vals:
            try:
                out.append(item(v))
            except argparse.ArgumentTypeError as exc:
                raise argparse.ArgumentTypeError("%s%s" % (exc, " (in %r)" % s if len(vals) > 1 else "")) from None
        return out
    parse.__name__ = "list"
    return parse


def _kn(s: str) -> List[Tuple[int, int]]:
    out = []
    for part in s.split(","):
        k, _, n = part.partition("/")
        try:
            kn = (int(k), int(n))
        except ValueError:
            kn = (0, 0)
        if not 1 <= kn[0] <= kn[1]:
            raise argparse.ArgumentTypeError("expected K/N,... with integers 1 <= K <= N (e.g. 2/3), got %r%s"
                                             % (part, " (in %r)" % s if "," in s else ""))
        out.append(kn)
    return out


_PROB = flag_type(float, lo=0, hi=1)


def _thresholds(s: str) -> Tuple[str, List[float]]:
    rule, _, vals = s.partition("=")
    if not rule or not vals:
        raise argparse.ArgumentTypeError("expected RULE=V1,V2,... (a rule's name, probabilities in [0, 1]), got %r" % s)
    return rule, _list(_PROB, "V1,V2,...")(vals)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenarios", type=Path, nargs="+", help="scenario .json files to tune on")
    p.add_argument("--model", type=Path, default=None, help="artifact (default: the bundled model, as run picks it)")
    p.add_argument("--config", type=Path, default=None, help="base runtime YAML (default vehicle.yaml)")
    p.add_argument("--backend", choices=["auto", "onnxruntime", "tensorrt", "torch"], default=None)
    p.add_argument("--threads", type=flag_type(int, lo=0), default=1)
    p.add_argument("--thresholds", type=_thresholds, action="append", default=[], metavar="RULE=V1,V2",
                   help="min_confidence values for one rule (by name); repeat per rule (default 0.2,0.3,...,0.9)")
    p.add_argument("--kn", type=_kn, default=[(1, 1), (2, 2), (2, 3), (3, 4)], metavar="K/N,...")
    p.add_argument("--release-m", type=_list(flag_type(int, lo=1), "M,..."), default=[2, 4, 6], metavar="M,...")
    p.add_argument("--min-hold-ms", type=_list(flag_type(float, lo=0), "MS,..."), default=[0, 250, 500, 1000, 1500],
                   metavar="MS,...")
    p.add_argument("--gate", type=_list(_PROB, "P,..."), default=[0.0], metavar="P,...",
                   help="uncertainty gate values (top-class probability; 0 = off)")
    p.add_argument("--max-configs", type=flag_type(int, lo=1), default=400,
                   help="sample the grid down to this many (seeded)")
    p.add_argument("--seed", type=flag_type(int, lo=0), default=0)
    p.add_argument("--max-reaction-frames", type=flag_type(float, lo=0), default=3.0, help="reaction p90 goal (frames)")
    p.add_argument("--max-false-stop", type=_PROB, default=0.05, help="false-STOP share goal in GO segments")
    p.add_argument("--max-go-in-stop", type=_PROB, default=0.0, help="GO-during-STOP share allowed (the worst mistake)")
    p.add_argument("--grace", type=flag_type(float, lo=0), default=0.5, metavar="S")
    p.add_argument("--out", type=Path, default=Path("runs/tune"))
    p.add_argument("--out-config", type=Path, default=None,
                   help="the chosen YAML (default OUT/tuned.yaml); an existing file that tune did not write is "
                        "replaced only with --force (the base config or a scenario never)")
    p.add_argument("--force", action="store_true", help="let --out-config replace a file tune did not write")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import yaml

    from ..config import load_config
    from ..errors import EdgeRuntimeError
    from ..fsio import check_writable, write_bytes_atomic, write_json_atomic, write_text_atomic
    from ..scenario import load
    from ..score import scenario_probs
    from ..tune import Params, Replay, choose, grid, pareto, sweep, tuned_yaml
    from .run import default_config

    cfg_path = args.config or default_config()
    cfg = load_config(cfg_path)
    pol = cfg.policy
    names = [pol.rule_label(i) for i in range(len(pol.rules))]
    ths: Dict[str, List[float]] = {}
    for rule, vals in args.thresholds:
        if rule not in names:
            raise EdgeRuntimeError("--thresholds %s=...: %s has no rule named %r; its rules: %s"
                                   % (rule, cfg_path, rule, ", ".join(names)))
        ths[rule] = vals
    default_th = [round(0.1 * i, 2) for i in range(2, 10)]
    th_lists = [ths.get(n, default_th) for n in names]
    check_writable(args.out, "--out", directory=True)
    check_out_config(args.out_config or Path(args.out) / "tuned.yaml", [Path(cfg_path)] + list(args.scenarios),
                     args.force)
    scs = [load(s) for s in args.scenarios]
    probs, man, backend, t_model = scenario_probs(scs, args.model, args.backend, args.threads)
    ds = man["dataset"]
    sc_names = ds.get("superclasses") or {}
    rp = Replay(pol, ds["class_names"], scs, probs, sc_names.get("names"), sc_names.get("fine_to_coarse"))
    full = grid(len(names), th_lists, args.kn, args.release_m, args.min_hold_ms, args.gate)
    rng = np.random.default_rng(args.seed)
    params = [full[i] for i in sorted(rng.choice(len(full), args.max_configs, replace=False))] \
        if len(full) > args.max_configs else full
    d = pol.debounce
    base = Params(tuple(float(r.min_confidence) for r in pol.rules), d.trigger_k, d.trigger_n, d.release_m,
                  float(d.min_hold_ms), float(pol.uncertain_below or 0.0))
    params = [base] + [p for p in params if p != base]
    rows, t_sweep = sweep(rp, params, args.grace)
    frames = sum(sc.frames for sc in scs)
    front = pareto(rows)
    best = choose(rows, args.max_reaction_frames, args.max_false_stop, args.max_go_in_stop)

    def plain(r: Mapping[str, Any]) -> Dict[str, Any]:
        out = {k: v for k, v in r.items() if k != "params"}
        out["policy"] = r["params"].label(names)
        return out

    res = {
        "command": command_line(args), "model": man["model"]["name"], "backend": backend,
        "calibration": man.get("calibration"), "base_config": str(cfg_path),
        "scenarios": [str(s) for s in args.scenarios], "frames": frames, "configs": len(rows),
        "grid_size": len(full), "seconds_model": round(t_model, 2), "seconds_sweep": round(t_sweep, 2),
        "configs_per_s": round(len(rows) / max(t_sweep, 1e-9), 1),
        "base": plain(rows[0]), "chosen": plain(best) if best else None,
        "pareto": [plain(r) for r in front], "all": [plain(r) for r in rows],
    }
    out = Path(args.out)
    write_json_atomic(out / "tune.json", res)
    md = _markdown(res)
    write_text_atomic(out / "tune.md", md)
    files = [out / "tune.json", out / "tune.md"]
    try:
        write_bytes_atomic(out / "pareto.png", _png(rows, front, best, res))
        files.append(out / "pareto.png")
    except ImportError:
        pass
    print(md, end="")
    if best is None:
        print("no swept config caught every STOP segment: nothing recommended (widen --thresholds or --kn)")
        for f in files:
            print("wrote %s" % f)
        return 1
    base_yaml = yaml.safe_load(Path(cfg_path).read_text())
    text = tuned_yaml(base_yaml, best["params"], names, best, [str(s) for s in args.scenarios], res["command"],
                      res["model"], backend)
    dest = args.out_config or out / "tuned.yaml"
    load_config_text_check(text, dest)
    write_text_atomic(dest, text)
    files.append(dest)
    for f in files:
        print("wrote %s" % f)
    return 0


TUNED_HEAD = "# Tuned by: "  # the first line of every YAML tune writes (edge_runtime.tune.tuned_yaml)


def check_out_config(dest: Path, inputs: Sequence[Path], force: bool) -> None:
    """Refuse, before the model runs, an --out-config that would destroy a file: one of the inputs (the base config,
    a scenario; always) or an existing file tune did not write (unless ``force``); or one that cannot be written."""
    from ..errors import EdgeRuntimeError
    from ..fsio import check_writable

    check_writable(dest, "--out-config")
    if not dest.exists():
        return
    for p in inputs:
        try:
            if p.exists() and dest.samefile(p):
                raise EdgeRuntimeError("--out-config %s: is an input of this run (%s); writing the tuned YAML would "
                                       "replace it; choose another file" % (dest, p))
        except OSError:
            pass
    if force:
        return
    try:
        with open(str(dest), "rb") as fh:
            ours = fh.read(len(TUNED_HEAD)).decode("utf-8", "replace") == TUNED_HEAD
    except OSError:
        ours = False
    if not ours:
        raise EdgeRuntimeError("--out-config %s: exists and was not written by tune (%d bytes); pass --force to "
                               "replace it, or choose another file" % (dest, dest.stat().st_size))


def load_config_text_check(text: str, dest: Path) -> None:
    """The YAML we are about to write must parse as a runtime config (refuse to write a broken one)."""
    import yaml

    from ..config import parse_config

    parse_config(yaml.safe_load(text), origin=str(dest))


def _f(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return "%.2f %%" % (100 * v) if pct else "%g" % v


def _markdown(res: Dict[str, Any]) -> str:
    lines = ["## Policy sweep: %d configs over %d frames of %d scenario(s)" % (res["configs"], res["frames"],
                                                                           len(res["scenarios"])), "",
             "Model %s, %s. Model pass %.1f s (once per frame), sweep %.1f s (%.0f configs/s)." % (
                 res["model"], res["backend"], res["seconds_model"], res["seconds_sweep"], res["configs_per_s"]), "",
             "| | policy | missed STOP | reaction p50/p90/max (frames) | false STOP in GO | GO in STOP | SLOW in GO "
             "| changes/min (spurious) | unknown -> default |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(tag: str, r: Dict[str, Any]) -> str:
        return "| %s | %s | %d of %d | %s / %s / %s | %s | %s | %s | %s | %s |" % (
            tag, r["policy"], r["missed_stop_segments"], r["stop_segments"], _f(r["reaction_p50"]),
            _f(r["reaction_p90"]), _f(r["reaction_max"]), _f(r["false_stop_in_go"], True), _f(r["go_in_stop"], True),
            _f(r["slow_in_go"], True), "%s (%s)" % (_f(r["changes_per_min"]), _f(r.get("spurious_per_min"))),
            _f(r["unknown_default_share"], True))

    lines.append(row("base", res["base"]))
    if res["chosen"]:
        lines.append(row("**chosen**", res["chosen"]))
    lines += ["", "Pareto front (no missed STOP; reaction p90 vs false STOP vs GO in STOP):", "",
              lines[4], lines[5]]
    for r in res["pareto"][:25]:
        lines.append(row("", r))
    if len(res["pareto"]) > 25:
        lines.append("| ... %d more in tune.json | |" % (len(res["pareto"]) - 25))
    return "\n".join(lines) + "\n"


def _png(rows: Sequence[Mapping[str, Any]], front: Sequence[Mapping[str, Any]], best: Any, res: Dict[str, Any]) -> bytes:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def xy(rs: Sequence[Mapping[str, Any]]) -> Tuple[List[float], List[float]]:
        return ([100 * (r["false_stop_in_go"] or 0.0) for r in rs],
                [r["reaction_p90"] if r["reaction_p90"] is not None else float("nan") for r in rs])

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    bad = [r for r in rows if r["missed_stop_segments"] > 0]
    ok = [r for r in rows if r["missed_stop_segments"] == 0]
    if bad:
        ax.scatter(*xy(bad), s=10, c="#cccccc", marker="x", label="misses a STOP segment (%d)" % len(bad))
    ax.scatter(*xy(ok), s=12, c="#9fb7cf", label="no missed STOP (%d)" % len(ok))
    # The front is over three objectives; in these two axes only its members that no other config beats on both
    # plotted ones form a line (a staircase); the rest are better on GO during STOP, which the colour shows.
    plain2 = sorted((x, y) for x, y in zip(*xy(ok)) if y == y)
    stair, low = [], float("inf")
    for x, y in plain2:
        if y < low:
            stair.append((x, y))
            low = y
    if stair:
        sx = [p[0] for p in stair] + [plain2[-1][0]]
        sy = [p[1] for p in stair] + [stair[-1][1]]
        ax.step(sx, sy, where="post", c="#555555", lw=1, ls="--", label="best trade-off in these two axes")
    if front:
        fx, fy = xy(front)
        sc = ax.scatter(fx, fy, s=28, c=[100 * (r["go_in_stop"] or 0.0) for r in front], cmap="plasma",
                        edgecolors="#d62728", lw=0.8, zorder=3,
                        label="Pareto front over 3 objectives (%d)" % len(front))
        fig.colorbar(sc, ax=ax, pad=0.01).set_label("GO during STOP segments (%), front only", fontsize=8)
    if best is not None:
        bx, by = xy([best])
        ax.scatter(bx, by, s=140, facecolors="none", edgecolors="black", lw=1.5, zorder=4, label="chosen")
    b0x, b0y = xy([rows[0]])
    ax.scatter(b0x, b0y, s=80, marker="D", c="#ff9f1c", zorder=4, label="base config")
    ax.set_xlabel("false STOP share in GO segments (%), after the grace")
    ax.set_ylabel("reaction p90 to STOP segments (frames)")
    ax.set_title("%d configs, %s (%s)" % (len(rows), res["model"], res["backend"]), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)
