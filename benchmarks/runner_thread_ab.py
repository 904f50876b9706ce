"""Before/after of the runner's own thread (edge_runtime/runner_thread.py): the loop hands every inference to a
daemon thread and waits for it, so that a hung backend can be abandoned. What does the hand-over cost?

Runs `python -m edge_runtime run` from two trees, interleaved round by round (old/new, then new/old), on the bundled
demo clip: *throughput* (``--rate 0``: frames as fast as the loop takes them) and *paced* (the config's 30 FPS: the
summary's capture->decision p99); then the hand-over alone (:func:`micro`). Writes every run's summary line, the
medians and the hand-over's percentiles to a JSON.

    git archive OLD edge_runtime deploy | tar -x -C /tmp/ab-old
    python benchmarks/runner_thread_ab.py --old /tmp/ab-old --old-commit OLD --new . --rounds 3 \\
        --out benchmarks/runtime-results/runner_thread_ab.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"(\d+) frames in ([\d.]+) s, ([\d.]+) FPS, capture->decision p99 ([\d.na]+) ms")


def one(code: Path, extra: List[str], model: str, config: str) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "edge_runtime", "run", str(ROOT / "deploy" / "demo" / "cifar10-demo.mp4"),
           "--model", model, "--config", config, "--quiet"] + extra
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "runner-thread-ab"
    work.mkdir(exist_ok=True)
    p = subprocess.run(cmd, cwd=str(work), capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(code.resolve())))
    m = LINE.search(p.stdout)
    if p.returncode != 0 or m is None:
        raise SystemExit("run failed (%d): %s %s" % (p.returncode, p.stdout[-300:], p.stderr[-300:]))
    return {"frames": int(m.group(1)), "seconds": float(m.group(2)), "fps": float(m.group(3)),
            "p99_ms": float(m.group(4)), "line": m.group(0)}


def micro(code: Path, model: str, blocks: int = 10, per_block: int = 30) -> Dict[str, Any]:
    """The hand-over alone, in this process: ``Runner.infer`` of one frame called directly vs through
    ``RunnerThread.call``, once per 1/30 s (the thread asleep in between, as at 30 FPS), interleaved in blocks."""
    sys.path.insert(0, str(code.resolve()))
    import numpy as np

    from edge_runtime.backends import runner_for
    from edge_runtime.runner_thread import RunnerThread

    runner = runner_for(model, threads=1)
    runner.activate()
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    thread = RunnerThread()
    ms: Dict[str, List[float]] = {"direct": [], "runner_thread": []}
    for b in range(blocks):
        for mode in (("direct", "runner_thread") if b % 2 == 0 else ("runner_thread", "direct")):
            for _ in range(per_block):
                time.sleep(1 / 30.0)
                t0 = time.perf_counter()
                if mode == "direct":
                    runner.infer(x)
                else:
                    thread.call(runner.infer, x)
                ms[mode].append((time.perf_counter() - t0) * 1e3)
    thread.close()
    out: Dict[str, Any] = {}
    for mode, v in ms.items():
        p50, p90, p99 = np.percentile(v, [50, 90, 99])
        out[mode] = {"n": len(v), "p50_ms": round(float(p50), 4), "p90_ms": round(float(p90), 4),
                     "p99_ms": round(float(p99), 4), "max_ms": round(float(max(v)), 4)}
    return out


def report_lines(results: Path) -> List[str]:
    """The section of benchmarks/runtime.md (``runtime_bench.py report`` appends it), from runner_thread_ab.json."""
    path = results / "runner_thread_ab.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    h = r["hand_over_paced_30fps"]
    out = ["", "## The runner's own thread: what the hand-over costs (`benchmarks/runner_thread_ab.py`)", "",
           "Every backend call runs on the runner's daemon thread (so `Runtime.stop()` can abandon a hung one). "
           "*Now*: %s; *before*: %s, the commit before the runner thread. Load average at the end: %s (a training job "
           "and other work shared the 2 cores, so the end-to-end rounds below are dominated by that noise). "
           "Command: `%s`." % (r["new"]["commit"], r["old"]["commit"],
                               " / ".join("%.1f" % x for x in r["machine"]["load_avg_end"]), r["command"]), "",
           "| one frame's `Runner.infer`, once per 1/30 s (ms) | n | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
    for mode, label in (("direct", "called on the loop's thread (before)"),
                        ("runner_thread", "through `RunnerThread.call` (now)")):
        x = h[mode]
        out.append("| %s | %d | %.3f | %.3f | %.3f | %.3f |" % (label, x["n"], x["p50_ms"], x["p90_ms"], x["p99_ms"],
                                                             x["max_ms"]))
    out += ["", "| `edge-runtime run` on the demo clip, rounds interleaved | before: each round | now: each round |",
            "|---|---|---|"]
    for mode, label, key, unit in (("throughput", "throughput, `--rate 0` (FPS)", "fps", "%.0f"),
                                   ("paced_30fps", "capture->decision p99 at 30 FPS (ms)", "p99_ms", "%.2f")):
        out.append("| %s | %s | %s |" % (label, ", ".join(unit % x[key] for x in r["runs"][mode]["old"]),
                                         ", ".join(unit % x[key] for x in r["runs"][mode]["new"])))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True)
    ap.add_argument("--old-commit", required=True)
    ap.add_argument("--new", default=str(ROOT))
    ap.add_argument("--new-commit", default=None, help="default: git HEAD of --new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default=str(ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.int8-cpu.onnx"))
    ap.add_argument("--config", default=str(ROOT / "deploy" / "configs" / "vehicle.yaml"))
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    new_commit = a.new_commit or subprocess.run(["git", "-C", a.new, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()
    trees = {"old": Path(a.old), "new": Path(a.new)}
    modes = {"throughput": ["--rate", "0", "--max-frames", "750"], "paced_30fps": ["--max-frames", "300"]}
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {m: {"old": [], "new": []} for m in modes}
    for r in range(a.rounds):
        order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
        for mode, extra in modes.items():
            for which in order:
                res = one(trees[which], extra, a.model, a.config)
                runs[mode][which].append(res)
                print("round %d %s %s: %s" % (r + 1, mode, which, res["line"]), flush=True)
    hand_over = micro(trees["new"], a.model)
    print("hand-over alone:", json.dumps(hand_over), flush=True)
    summary = {mode: {which: {"median_fps": statistics.median(x["fps"] for x in rs),
                              "median_p99_ms": statistics.median(x["p99_ms"] for x in rs)}
                      for which, rs in per.items()} for mode, per in runs.items()}
    res_all = {"command": " ".join(shlex.quote(x) for x in ["python", "benchmarks/runner_thread_ab.py"]
                                   + (argv if argv is not None else sys.argv[1:])),
               "old": {"path": str(trees["old"].resolve()), "commit": a.old_commit},
               "new": {"path": str(trees["new"].resolve()), "commit": new_commit},
               "modes": modes, "summary": summary, "hand_over_paced_30fps": hand_over, "runs": runs,
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "load_avg_end": os.getloadavg()}}
    Path(a.out).write_text(json.dumps(res_all, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
