"""Score decisions against a labelled scenario: reaction to STOP, missed STOPs, wrong-action time, chatter.

SCENARIO is a scenario's .json (deploy/scenarios/*.json, deploy/demo/cifar10-demo.json, or one made by
edge-runtime scenario). The decisions come from:
  --events LOG.jsonl   a recorded run on the scenario's video (every event names its frame), no model needed; or
  --model / --config   the model run offline over every frame and the config's policy replayed at the scenario's
                       frame clock (default: the bundled model's build for ONNX Runtime and vehicle.yaml).
Probabilities are calibrated with the model manifest's temperature when it has one.

Figures (edge_runtime/score.py): per STOP segment the reaction in frames and ms (p50/p90/max) and the missed
ones; for each expected action the share of its frames decided as each other action, each segment's first
--grace seconds excluded (GO during STOP is the worst; STOP during GO is the false-STOP share); decision changes
and the spurious ones (into an action the truth does not ask for); the share of unknown-object frames decided
as the default action. Writes score.json, score.md and timeline.png (truth band, decision band, top-class
confidence) to --out.

Examples:
  edge-runtime score deploy/demo/cifar10-demo.json --events runs/vehicle/events.jsonl
  edge-runtime score deploy/scenarios/eval-s101.json --config deploy/configs/vehicle.yaml --out runs/score
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", type=Path, help="the scenario's .json")
    p.add_argument("--events", type=Path, default=None, help="JSONL event log of a run on the scenario's video")
    p.add_argument("--model", type=Path, default=None, help="artifact to run offline (default: the bundled model)")
    p.add_argument("--config", type=Path, default=None, help="runtime YAML whose policy decides (default vehicle.yaml)")
    p.add_argument("--backend", choices=["auto", "onnxruntime", "tensorrt", "torch"], default=None)
    p.add_argument("--threads", type=flag_type(int, lo=0), default=1, help="CPU threads for ONNX Runtime / PyTorch")
    p.add_argument("--grace", type=flag_type(float, lo=0), default=0.5, metavar="S",
                   help="seconds excluded at each segment's start")
    p.add_argument("--out", type=Path, default=Path("runs/score"), help="folder for score.json/.md and timeline.png")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import EdgeRuntimeError
    from ..fsio import check_writable
    from ..policy import Policy
    from ..scenario import load
    from ..score import actions_from_events, policy_actions, scenario_probs, score, write_report
    from .run import default_config

    check_writable(args.out, "--out", directory=True)
    sc = load(args.scenario)
    if args.events is not None:
        if args.model is not None:
            raise EdgeRuntimeError("give --events (score a recorded log) or --model (run the model), not both")
        acts, conf = actions_from_events(sc, args.events)
        how = "events %s" % args.events
        default = sc.meta.get("default_action")
    else:
        cfg = load_config(args.config or default_config())
        (probs,), man, backend, _ = scenario_probs([sc], args.model, args.backend, args.threads)
        pol = Policy.from_manifest(cfg.policy, man)
        acts, conf = policy_actions(pol, probs, sc.fps)
        how = "%s, %s, policy %s" % (man["model"]["name"], backend, args.config or "vehicle.yaml")
        default = cfg.policy.default_action.name
    res = score(sc, acts, args.grace, default)
    res.update(decisions=how, command=command_line(args))
    title = "%s: %s" % (sc.name, how)
    files = write_report(args.out, res, sc, acts, conf, title)
    from ..score import markdown

    print(markdown(res, title), end="")
    for f in files:
        print("wrote %s" % f)
    return 0
