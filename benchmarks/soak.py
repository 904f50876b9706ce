"""Soak: resident memory of `edge-runtime run` over a long run at a camera's frame rate.

Runs ``python -m edge_runtime run SOURCE --duration S --quiet`` (default ``synthetic://?rate=30`` with
``deploy/configs/vehicle.yaml`` and the bundled INT8 CPU model, sinks on: JSONL into a temporary folder, UDP to
127.0.0.1) as a child process, samples its RSS (``/proc/PID/status`` VmRSS) every ``--interval`` seconds and
writes a JSON with every sample, the growth after the warm-up (``--warmup``, the first minute by default) and
the least-squares slope. The goal it checks: RSS grows less than 1 MB over 30 minutes after the first minute.

    python benchmarks/soak.py --duration 1800 --out benchmarks/runtime-results/soak.json

``--code DIR --code-commit SHA`` runs the package from another tree (e.g. ``git archive SHA | tar -x -C /tmp/old``)
to measure a before/after on the same machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]


def rss_kb(pid: int) -> Optional[int]:
    try:
        for line in Path("/proc/%d/status" % pid).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def slope_kb_per_s(samples: List[Dict[str, float]]) -> Optional[float]:
    if len(samples) < 2:
        return None
    ts = [s["t_s"] for s in samples]
    ys = [s["rss_kb"] for s in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    den = sum((t - mt) ** 2 for t in ts)
    return None if den == 0 else sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den


GOAL_MB = 1.0  # over 30 minutes, after the first minute

#: the runs the report shows, in order: (file, what it measured)
RUNS = (("soak.before-fix.json", "before the fix: rings made with np.zeros (pages committed as they fill)"),
        ("soak.json", "after: rings written whole when made (edge_runtime/metrics.py)"))


def _load(results: Path, name: str) -> Optional[Dict[str, Any]]:
    path = results / name
    return json.loads(path.read_text()) if path.is_file() else None


def goal_rows(results: Path) -> List[str]:
    """The row of runtime.md's goals table (``runtime_bench.py report``), from ``soak.json``."""
    r = _load(results, "soak.json")
    if not r or r.get("growth_after_warmup_mb") is None:
        return []
    span = r["measured_span_s"]
    g = r["growth_after_warmup_mb"]
    full = span >= 1800 - r["interval_s"] - 1
    return ["| RSS growth < 1 MB over 30 minutes after the first minute (synthetic:// at 30 FPS) | INT8 CPU (default) | "
            "%+.3f MB from %g s to %.0f s (%.0f s measured%s; slope %.3f KB/s, %+.3f MB projected over 30 min) | %s |"
            % (g, r["warmup_s"], r["warmup_s"] + span, span, "" if full else ", shorter than the goal's 30 minutes",
               r["slope_kb_per_s"], r["projected_growth_30min_mb"],
               ("yes" if g < GOAL_MB and r["projected_growth_30min_mb"] < GOAL_MB else "no")
               + ("" if full else " (on the measured span)"))]


def report_lines(results: Path) -> List[str]:
    """The "Soak" section of benchmarks/runtime.md (``runtime_bench.py report`` appends it), from the soak JSONs."""
    runs: List[Tuple[str, str, Dict[str, Any]]] = []
    for name, what in RUNS:
        r = _load(results, name)
        if r:
            runs.append((name, what, r))
    if not runs:
        return []
    out = ["", "## Soak: resident memory at 30 FPS (`benchmarks/soak.py`)", "",
           "`edge-runtime run synthetic://?rate=30 --quiet` with `deploy/configs/vehicle.yaml` (JSONL and UDP sinks on) and",
           "the bundled INT8 CPU model, RSS sampled every 10 s by `benchmarks/soak.py`; growth is measured from the first",
           "sample after the first minute. Each run's command and every sample are in its JSON.", "",
           "| run | code | measured | RSS at 60 s | RSS at end | growth | slope | projected over 30 min |",
           "|---|---|---|---|---|---|---|---|"]
    for name, what, r in runs:
        cv = r.get("code_version") or {}
        out.append("| %s (`%s`) | %s | %.0f s (%d samples) | %.2f MB | %.2f MB | %+.3f MB | %.3f KB/s | %+.3f MB |" % (
            what, name, (cv.get("commit") or "?")[:7] if isinstance(cv, dict) else "?", r["measured_span_s"],
            len(r["samples"]), r["rss_after_warmup_mb"], r["rss_last_mb"], r["growth_after_warmup_mb"],
            r["slope_kb_per_s"], r["projected_growth_30min_mb"]))
    out += ["", "Commands: " + "; ".join("`%s`" % r["command"] for _n, _w, r in runs) + ".", "",
            "The cause of the growth before the fix: the timing ring (65536 rows of 6 float64 = 48 bytes a frame) was",
            "made with `np.zeros`, which only reserves address space; the kernel commits each page the first time the",
            "loop writes into it, so resident memory rose by 48 bytes x 30 FPS = 1.44 KB/s until the ring was full",
            "(36 minutes at 30 FPS), the slope measured before the fix. `RingTable` now writes the whole array when it",
            "is made (`tests/test_metrics.py` checks that filling it adds nothing)."]
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="synthetic://?rate=30")
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800: the goal's 30 minutes)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="growth is measured from the first sample after this")
    ap.add_argument("--config", default=str(ROOT / "deploy" / "configs" / "vehicle.yaml"))
    ap.add_argument("--model", default=None, help="artifact (default: run's default, the bundled INT8 CPU build)")
    ap.add_argument("--code", default=str(ROOT), help="checkout whose edge_runtime runs (default: this one)")
    ap.add_argument("--code-commit", default=None,
                    help="the commit --code was exported from (a `git archive` has no .git to ask)")
    ap.add_argument("--out", required=True, help="JSON to write")
    a = ap.parse_args(argv)
    if a.duration <= a.warmup:
        ap.error("--duration must be longer than --warmup")
    cmd = [sys.executable, "-m", "edge_runtime", "run", a.source, "--config", a.config, "--duration", str(a.duration),
           "--quiet"] + (["--model", a.model] if a.model else [])
    work = tempfile.mkdtemp(prefix="soak-")  # the config's relative JSONL path lands here
    env = dict(os.environ, PYTHONPATH=str(Path(a.code).resolve()))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples: List[Dict[str, float]] = []
    try:
        next_t = t0 + a.interval
        while proc.poll() is None:
            time.sleep(max(0.0, min(1.0, next_t - time.monotonic())))
            if time.monotonic() >= next_t:
                kb = rss_kb(proc.pid)
                if kb is not None and proc.poll() is None:
                    samples.append({"t_s": round(time.monotonic() - t0, 2), "rss_kb": kb})
                next_t += a.interval
            if time.monotonic() - t0 > a.duration + 120:
                proc.kill()
                break
        out, err = proc.communicate(timeout=60)
    except BaseException:
        proc.kill()
        raise
    after = [s for s in samples if s["t_s"] >= a.warmup]
    growth = (after[-1]["rss_kb"] - after[0]["rss_kb"]) / 1024.0 if len(after) >= 2 else None
    span = (after[-1]["t_s"] - after[0]["t_s"]) if len(after) >= 2 else None
    slope = slope_kb_per_s(after)
    res: Dict[str, Any] = {
        "command": " ".join(shlex.quote(x) for x in ["python", "benchmarks/soak.py"] + (argv or sys.argv[1:])),
        "child_command": " ".join(shlex.quote(x) for x in cmd),
        "code": str(Path(a.code).resolve()),
        "returncode": proc.returncode,
        "summary_line": out.strip().splitlines()[-1] if out.strip() else "",
        "stderr_tail": err.strip().splitlines()[-5:],
        "duration_s": a.duration, "interval_s": a.interval, "warmup_s": a.warmup,
        "measured_span_s": span,
        "rss_first_mb": round(samples[0]["rss_kb"] / 1024.0, 2) if samples else None,
        "rss_after_warmup_mb": round(after[0]["rss_kb"] / 1024.0, 2) if after else None,
        "rss_last_mb": round(samples[-1]["rss_kb"] / 1024.0, 2) if samples else None,
        "growth_after_warmup_mb": None if growth is None else round(growth, 3),
        "slope_kb_per_s": None if slope is None else round(slope, 4),
        "projected_growth_30min_mb": None if slope is None else round(slope * 1800 / 1024.0, 3),
        "goal": "RSS grows < 1 MB over 30 minutes after the first minute",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_end": os.getloadavg()},
        "samples": samples,
    }
    if Path(a.code).resolve() == ROOT:
        sys.path.insert(0, str(ROOT))
        from edge_runtime.manifest import code_version

        res["code_version"] = code_version()
    else:  # another tree (e.g. a `git archive` of an older commit): what the caller says it is
        res["code_version"] = {"commit": a.code_commit, "dirty": None, "path": str(Path(a.code).resolve())}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print("%s: %d samples; RSS %.1f MB after %.0f s -> %.1f MB at %.0f s: %+.3f MB (slope %.3f KB/s); rc %s" % (
        a.out, len(samples), res["rss_after_warmup_mb"] or 0, a.warmup, res["rss_last_mb"] or 0,
        samples[-1]["t_s"] if samples else 0, growth or 0.0, slope or 0.0, proc.returncode))
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
