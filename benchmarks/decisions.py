#!/usr/bin/env python3
"""Measure decisions on labelled scenarios: configs side by side, the real Policy replayed over the model's outputs.

    python benchmarks/decisions.py --out benchmarks/decisions.json \
        --config before=benchmarks/decisions/vehicle.before.yaml --config after=deploy/configs/vehicle.yaml \
        --set held-out=deploy/scenarios/eval-s101.json,deploy/scenarios/eval-s102.json,deploy/scenarios/eval-s103.json

For each scenario set and config: the pooled figures of edge_runtime.tune.pool over the set's scenarios (each
scored by edge_runtime.score.score with the real edge_runtime.policy.Policy at the frame clock). The model (default:
the bundled INT8 CPU build on ONNX Runtime, as `edge-runtime run` picks it) runs once per frame per scenario.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from edge_runtime.cli._common import command_line
    from edge_runtime.config import load_config
    from edge_runtime.fsio import write_json_atomic
    from edge_runtime.policy import Policy
    from edge_runtime.scenario import load
    from edge_runtime.score import policy_actions, scenario_probs, score
    from edge_runtime.tune import pool

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", required=True, metavar="NAME=YAML")
    ap.add_argument("--set", action="append", required=True, metavar="NAME=A.json,B.json")
    ap.add_argument("--model", default=None)
    ap.add_argument("--grace", type=float, default=0.5)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    configs = [(n, p) for n, _, p in (c.partition("=") for c in args.config)]
    sets = [(n, [load(x) for x in s.split(",")]) for n, _, s in (c.partition("=") for c in args.set)]
    res = {"command": command_line(prog="python benchmarks/decisions.py"), "grace_s": args.grace,
           "host": "%s %s" % (platform.machine(), platform.processor() or platform.system()), "sets": {}}
    for set_name, scs in sets:
        t0 = time.perf_counter()
        probs, man, backend, _ = scenario_probs(scs, args.model)
        res.update(model=man["model"]["name"], precision=man.get("precision"), backend=backend,
                   calibration=man.get("calibration"))
        out = {"scenarios": [str(sc.path.relative_to(ROOT)) if sc.path.is_absolute() and ROOT in sc.path.parents
                             else str(sc.path) for sc in scs], "frames": sum(sc.frames for sc in scs), "configs": {}}
        for cname, cpath in configs:
            cfg = load_config(cpath)
            per = []
            for sc, p in zip(scs, probs):
                acts, _ = policy_actions(Policy.from_manifest(cfg.policy, man), p, sc.fps)
                per.append(score(sc, acts, args.grace, cfg.policy.default_action.name))
            pooled = pool(per)
            pooled["config"] = cpath
            pooled["per_scenario"] = [{k: s[k] for k in ("scenario", "missed_stop_segments", "stop_segments",
                                                         "reaction_frames", "false_stop_in_go", "go_in_stop",
                                                         "changes_per_min", "unknown_default_share")} for s in per]
            out["configs"][cname] = pooled
            print("%-10s %-7s missed %d/%d  reaction p90 %s  false STOP in GO %.2f %%  GO in STOP %.2f %%  "
                  "SLOW in GO %.2f %%  unknown->default %s" % (
                      set_name, cname, pooled["missed_stop_segments"], pooled["stop_segments"], pooled["reaction_p90"],
                      100 * (pooled["false_stop_in_go"] or 0), 100 * (pooled["go_in_stop"] or 0),
                      100 * (pooled["slow_in_go"] or 0), pooled["unknown_default_share"]))
        out["seconds"] = round(time.perf_counter() - t0, 1)
        res["sets"][set_name] = out
    write_json_atomic(args.out, res)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
