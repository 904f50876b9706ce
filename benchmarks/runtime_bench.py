#!/usr/bin/env python3
"""Benchmarks of the on-robot loop (edge_runtime.runtime) on this CPU, with the bundled model.

    python benchmarks/runtime_bench.py latency      # the demo clip paced at 30 FPS (3 runs): capture->decision, deadline misses
    python benchmarks/runtime_bench.py paced        # the model alone: back-to-back vs once per 1/30 s (idle-core cost)
    python benchmarks/runtime_bench.py throughput   # the clip read as fast as the loop takes it vs backend-only
    python benchmarks/runtime_bench.py memory --seconds 600   # resident memory over a long 30 FPS run
    python benchmarks/runtime_bench.py ab --before /tmp/before --after /tmp/after --rounds 5
                                                    # two checkouts measured back to back, alternating (behaviour unchanged?)
    python benchmarks/runtime_bench.py report       # benchmarks/runtime.md from the JSON results (every figure)

Each measurement writes benchmarks/runtime-results/<name>.json with the machine, versions, load average and
the git commit (dirty or not) at the time (edge_runtime.bench.evidence). The loop runs exactly as `edge-runtime run` does (Runtime.from_config with
deploy/configs/vehicle.yaml), with its sinks (console replaced by nothing; JSONL and UDP kept, the
JSONL log under runs/bench/). Threads: 1 for ONNX Runtime (the runtime's default).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "runtime-results"
DEFAULT_MODEL = ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.onnx"
MODEL = DEFAULT_MODEL  # --model replaces it
CONFIG = ROOT / "deploy" / "configs" / "vehicle.yaml"
CLIP = ROOT / "deploy" / "demo" / "cifar10-demo.mp4"


def machine() -> Dict[str, Any]:
    """The evidence recorded with every result (the one machine probe, as edge-runtime bench records it)."""
    from edge_runtime.bench import evidence

    return evidence()


def q(st: Dict[str, Any], name: str) -> float:
    """A summary's ``p99`` etc.: ``p99_ms`` (edge_runtime.bench.statistics.summarize), or ``p99`` in results
    written before the one summary (the committed JSON of earlier runs)."""
    return float(st["%s_ms" % name] if "%s_ms" % name in st else st[name])


def config(jsonl: str) -> Any:
    """The runtime config as `edge-runtime run` uses it, console sink off, JSONL log at ``jsonl``."""
    from edge_runtime.bench import bench_config

    return bench_config(CONFIG, jsonl, rate=None, camera=False)


def runtime(source: str, rate: Any, loop: bool, name: str) -> Any:
    from edge_runtime.runtime import Runtime

    cfg = config(str(ROOT / "runs" / "bench" / ("%s.jsonl" % name)))
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, rate=rate, loop=loop))
    return Runtime.from_config(cfg, model=str(MODEL), source=source)


def _cmd(rest: str) -> str:
    model = "" if MODEL == DEFAULT_MODEL else "--model %s " % (
        MODEL.relative_to(ROOT) if MODEL.is_relative_to(ROOT) else MODEL)
    return "python benchmarks/runtime_bench.py %s%s" % (model, rest)


def _suffix() -> str:
    """Result files of the default model are <name>.json; another model's are <name>.<model file stem>.json."""
    return "" if MODEL == DEFAULT_MODEL else "." + MODEL.name[:-len(".onnx")]


def save(name: str, data: Dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data["machine"] = machine()
    data["model"] = str(MODEL.relative_to(ROOT)) if MODEL.is_relative_to(ROOT) else str(MODEL)
    path = OUT / ("%s%s.json" % (name, _suffix()))
    from edge_runtime.fsio import write_json_atomic

    write_json_atomic(path, data)
    print("wrote %s" % path)


def _pooled(runs: List[List[float]]) -> Dict[str, Any]:
    """The one latency summary over the samples of several runs, pooled (each run's raw samples in ms)."""
    from edge_runtime.bench.statistics import summarize

    return summarize(np.concatenate([np.asarray(r, np.float64) for r in runs]))


def cmd_latency(args: argparse.Namespace) -> None:
    """Each source ``--repeat`` times (fresh Runtime each); the report pools the runs' samples, so its p99 rests
    on repeat x 750 frames, and keeps every run's own figures beside it."""
    res: Dict[str, Any] = {"command": _cmd("latency --repeat %d" % args.repeat), "repeat": args.repeat}
    for label, src, frames in (("clip@30fps", str(CLIP), None), ("synthetic@30fps", "synthetic://?rate=30&width=160&height=160",
                                                                  args.synthetic_frames)):
        reps = []
        for i in range(args.repeat):
            rt = runtime(src, 30.0, False, "latency")
            if frames:
                rt.config = dataclasses.replace(rt.config, run=dataclasses.replace(rt.config.run, max_frames=frames))
            with rt:
                final = rt.run()
            rep = rt.report()
            rep["final"] = final.summary()
            rep["_latency"] = (rt.metrics.latency.values() * 1e3).tolist()
            rep["_stages"] = {s: (rt.metrics.stages[s].values() * 1e3).tolist() for s in rt.metrics.stages}
            reps.append(rep)
            lat = rep["decision_latency_ms"]
            print("%s run %d: %d frames, %.1f FPS, capture->decision p50 %.2f p90 %.2f p99 %.2f ms, deadline misses %d"
                  % (label, i + 1, rep["frames"], rep["fps"], q(lat, "p50"), q(lat, "p90"), q(lat, "p99"),
                     rep["deadline_misses"]))
        pooled = dict(reps[0])
        pooled["frames"] = sum(r["frames"] for r in reps)
        pooled["fps"] = round(float(np.mean([r["fps"] for r in reps])), 2)
        for k in ("deadline_misses", "stale_frames", "dropped_frames"):
            pooled[k] = sum(r[k] for r in reps)
        pooled["decision_latency_ms"] = _pooled([r["_latency"] for r in reps])
        pooled["stages_ms"] = {s: _pooled([r["_stages"][s] for r in reps]) for s in reps[0]["_stages"]}
        pooled["sinks"] = {k: {"errors": sum(r["sinks"][k]["errors"] for r in reps)} for k in reps[0]["sinks"]}
        pooled["runs"] = [{"frames": r["frames"], "fps": r["fps"], "decision_latency_ms": r["decision_latency_ms"],
                           "deadline_misses": r["deadline_misses"], "final": r["final"]} for r in reps]
        for r in reps + [pooled]:
            del r["_latency"], r["_stages"]
        lat = pooled["decision_latency_ms"]
        print("%s pooled: %d frames, capture->decision p50 %.2f p90 %.2f p99 %.2f ms" % (
            label, pooled["frames"], q(lat, "p50"), q(lat, "p90"), q(lat, "p99")))
        res[label] = pooled
    save("latency", res)


def cmd_paced(args: argparse.Namespace) -> None:
    """The model alone, outside the loop: ONNX Runtime (1 thread) on one preprocessed frame, back to back ("hot")
    and once per 1/30 s with the thread asleep in between ("paced", as in the 30 FPS loop). The difference is
    what an idle core costs the first inference after it wakes on this machine; the loop cannot do better."""
    from edge_runtime.backends import runner_for

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    res: Dict[str, Any] = {"command": _cmd("paced --frames %d" % args.frames)}
    with runner_for(MODEL, threads=1) as runner:
        for _ in range(100):
            runner.infer(x)
        hot = []
        for _ in range(args.frames):
            t = time.perf_counter()
            runner.infer(x)
            hot.append(time.perf_counter() - t)
        paced, second = [], []
        nxt = time.perf_counter()
        for _ in range(args.frames):
            nxt += 1.0 / 30.0
            time.sleep(max(0.0, nxt - time.perf_counter()))
            t = time.perf_counter()
            runner.infer(x)
            t2 = time.perf_counter()
            runner.infer(x)  # the same call again, right after: is it the call or the idle core?
            paced.append(t2 - t)
            second.append(time.perf_counter() - t2)
    from edge_runtime.bench.statistics import summarize

    for name, v in (("hot", hot), ("paced_30fps", paced), ("paced_30fps_second_call", second)):
        res[name] = summarize(v, 1e3)
        print("%-24s p50 %.3f p90 %.3f p99 %.3f ms" % (name, res[name]["p50_ms"], res[name]["p90_ms"],
                                                       res[name]["p99_ms"]))
    save("paced", res)


def cmd_throughput(args: argparse.Namespace) -> None:
    """``--repeat`` rounds of (the loop on the clip, then the backend alone on one of its frames); the goal's figure
    is the median of the rounds' ratios (single one-second figures move by 20-30 % on this VM)."""
    from edge_runtime.backends import runner_for
    from edge_runtime.manifest import for_artifact
    from edge_runtime.preprocess import preprocess

    res: Dict[str, Any] = {"command": _cmd("throughput --frames %d --repeat %d" % (args.frames, args.repeat)),
                           "repeat": args.repeat, "rounds": []}
    man = for_artifact(MODEL)
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    ok, img = cap.read()
    cap.release()
    x = preprocess(img, man["preprocess"], bgr=True)
    reps = []
    for i in range(args.repeat):
        rt = runtime(str(CLIP), None, True, "throughput")  # no rate: a file is handed over losslessly, as fast as taken
        rt.config = dataclasses.replace(rt.config, run=dataclasses.replace(rt.config.run, max_frames=args.frames))
        with rt:
            rt.run()
        rep = rt.report()
        reps.append(rep)
        with runner_for(MODEL, threads=1) as runner:
            for _ in range(50):
                runner.infer(x)
            t0 = time.perf_counter()
            for _ in range(args.frames):
                runner.infer(x)
            backend_fps = args.frames / (time.perf_counter() - t0)
        res["rounds"].append({"loop_fps": rep["fps"], "backend_only_fps": backend_fps, "ratio": rep["fps"] / backend_fps})
        print("round %d: loop %.1f FPS from the file source vs backend-only %.1f FPS: %.1f %%" % (
            i + 1, rep["fps"], backend_fps, 100 * rep["fps"] / backend_fps))
    # the goal's figure: the median of the rounds' own ratios (each round pairs a loop run with the backend run
    # right after it, so a slow or fast stretch of the machine affects both sides of its ratio)
    ratios = [r["ratio"] for r in res["rounds"]]
    mid = int(np.argsort(ratios)[len(ratios) // 2])
    res["ratio"] = float(np.median(ratios))
    res["loop"] = reps[mid]  # the median round, for its stages
    res["loop_fps"] = float(np.median([r["loop_fps"] for r in res["rounds"]]))
    res["backend_only_fps"] = float(np.median([r["backend_only_fps"] for r in res["rounds"]]))
    print("median of the rounds' ratios: %.1f %% (median loop %.1f FPS, median backend-only %.1f FPS)" % (
        100 * res["ratio"], res["loop_fps"], res["backend_only_fps"]))
    save("throughput", res)


def cmd_memory(args: argparse.Namespace) -> None:
    import psutil

    proc = psutil.Process()
    samples: List[List[float]] = []
    rt = runtime(str(CLIP), 30.0, True, "memory")
    rt.config = dataclasses.replace(rt.config, run=dataclasses.replace(rt.config.run, duration_s=args.seconds))
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(args.every):
            samples.append([round(time.monotonic() - t0, 1), proc.memory_info().rss / 2**20])

    with rt:
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        rt.run()
        stop.set()
        th.join()
    rep = rt.report()
    rss = np.array([s[1] for s in samples])
    warm = [s for s in samples if s[0] >= 60.0] or samples
    res = {"command": _cmd("memory --seconds %g" % args.seconds), "seconds": args.seconds,
           "frames": rep["frames"], "fps": rep["fps"], "rss_mb_samples": samples,
           "rss_first_mb": float(rss[0]), "rss_after_60s_mb": float(warm[0][1]), "rss_last_mb": float(rss[-1]),
           "rss_max_mb": float(rss.max()), "growth_after_60s_mb": float(rss[-1] - warm[0][1]),
           "growth_total_mb": float(rss[-1] - rss[0]), "deadline_misses": rep["deadline_misses"],
           "decision_latency_ms": rep["decision_latency_ms"]}
    print("%d frames in %g s: RSS %.1f MB at first sample, %.1f MB after 60 s, %.1f MB at the end (growth after warm-up "
          "%.2f MB)" % (rep["frames"], args.seconds, rss[0], warm[0][1], rss[-1], res["growth_after_60s_mb"]))
    save("memory", res)


def _row(st: Dict[str, float]) -> str:
    return " | ".join("%.3f" % q(st, k) for k in ("mean", "p50", "p90", "p99", "max"))


def _load(name: str) -> Any:
    path = OUT / name
    return json.loads(path.read_text()) if path.is_file() else None


def _stage_table(label: str, rep: Dict[str, Any]) -> List[str]:
    out = ["", "## %s: per stage, ms" % label, "",
           "%d frames, %.1f FPS, stale %d, dropped %d, deadline misses %d, sink errors %d." % (
               rep["frames"], rep["fps"], rep["stale_frames"], rep["dropped_frames"], rep["deadline_misses"],
               sum(s["errors"] for s in rep["sinks"].values())), "",
           "| stage | mean | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
    for st in ["capture->read", "preprocess", "infer", "policy", "sinks"]:
        out.append("| %s | %s |" % (st, _row(rep["stages_ms"][st])))
    out.append("| **capture->decision** | %s |" % _row(rep["decision_latency_ms"]))
    return out


def _runs_p99(rep: Dict[str, Any]) -> str:
    return ", ".join("%.2f" % q(r["decision_latency_ms"], "p99") for r in rep.get("runs", []))


def _lines(tree: Path) -> Dict[str, int]:
    """``wc -l edge_runtime/**/*.py`` of a checkout: module -> lines."""
    out = {}
    for f in sorted((tree / "edge_runtime").rglob("*.py")):
        with open(f, "rb") as fh:
            out[str(f.relative_to(tree))] = sum(1 for _ in fh)
    return out


def _run_in(tree: Path, cmd: List[str], timeout: float) -> None:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run(cmd, cwd=str(tree), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       universal_newlines=True)
    if r.returncode != 0:
        raise SystemExit("in %s: %s failed (%d):\n%s" % (tree, " ".join(cmd), r.returncode, r.stdout[-3000:]))


def _one_round(tree: Path, model: str, args: argparse.Namespace) -> Dict[str, float]:
    """The three figures of issue #16's "behaviour unchanged" in one checkout, each by that checkout's own code."""
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="edge-runtime-ab-") as tmp:
        _run_in(tree, [py, "-m", "edge_runtime", "bench", "engine", model, "--vs-bare", "--warmup", "0.5", "--duration",
                       str(args.bare_seconds), "--out", tmp, "--no-progress"], 600)
        v = json.loads((Path(tmp) / "bench-engine.json").read_text())["details"]["vs_bare"]
    sfx = "." + Path(model).name[:-len(".onnx")]
    _run_in(tree, [py, "benchmarks/runtime_bench.py", "--model", model, "latency", "--repeat", "1",
                   "--synthetic-frames", "30"], 900)
    lat = json.loads((tree / "benchmarks" / "runtime-results" / ("latency%s.json" % sfx)).read_text())
    _run_in(tree, [py, "benchmarks/runtime_bench.py", "--model", model, "throughput", "--frames",
                   str(args.frames), "--repeat", "1"], 900)
    thr = json.loads((tree / "benchmarks" / "runtime-results" / ("throughput%s.json" % sfx)).read_text())
    return {"overhead_ms": float(v["overhead_median_ms"]), "p99_ms": q(lat["clip@30fps"]["decision_latency_ms"], "p99"),
            "ratio": float(thr["ratio"]), "loop_fps": float(thr["loop_fps"])}


def cmd_ab(args: argparse.Namespace) -> None:
    """Two checkouts (e.g. ``git worktree add /tmp/before ae0a782``; ``git worktree add /tmp/after HEAD``), measured
    back to back in alternating order for ``--rounds`` rounds; medians per checkout -> runtime-results/ab.json.
    Each checkout's own code measures itself (its bench engine --vs-bare, its runtime_bench latency/throughput); the
    results those scripts write land in that checkout's benchmarks/runtime-results/, never in this one."""
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    rel = "engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx"
    # default: one model file for both (the before checkout's), so only the code differs; --own-model: each
    # checkout's own bundled INT8 build (what `edge-runtime run` runs there)
    models = {k: str(t / rel) if args.own_model else str(trees["before"] / rel) for k, t in trees.items()}
    model = models["before"]
    res: Dict[str, Any] = {
        "command": "python benchmarks/runtime_bench.py ab --before %s --after %s --rounds %d --frames %d "
                   "--bare-seconds %g%s%s" % (args.before, args.after, args.rounds, args.frames, args.bare_seconds,
                                             " --own-model" if args.own_model else "",
                                             "" if args.name == "ab" else " --name %s" % args.name),
        "measured_model": ("each checkout's own %s" % rel) if args.own_model else
                          ("the before checkout's %s, in both" % rel),
        "rounds": args.rounds, "model": model, "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "commands": ["python -m edge_runtime bench engine %s --vs-bare --warmup 0.5 --duration %g" % (
            model if not args.own_model else rel, args.bare_seconds),
                     "python benchmarks/runtime_bench.py --model %s latency --repeat 1 --synthetic-frames 30" % (
                         model if not args.own_model else rel),
                     "python benchmarks/runtime_bench.py --model %s throughput --frames %d --repeat 1" % (
                         model if not args.own_model else rel, args.frames)]}
    per: Dict[str, Dict[str, List[float]]] = {k: {} for k in trees}
    global MODEL
    MODEL = DEFAULT_MODEL  # the file name: ab.json
    for i in range(args.rounds):
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            r = _one_round(trees[name], models[name], args)
            for k, v in r.items():
                per[name].setdefault(k, []).append(v)
            print("round %d %s: %s" % (i + 1, name, ", ".join("%s %.4g" % kv for kv in r.items())), flush=True)
        for name, tree in trees.items():  # saved after every round: a run cut short keeps its complete rounds
            commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                                    universal_newlines=True).stdout.strip()
            lines = _lines(tree)
            res[name] = {"tree": str(tree), "commit": commit, "rounds": per[name],
                         "medians": {k: float(np.median(v)) for k, v in per[name].items()},
                         "lines": lines, "lines_total": sum(lines.values())}
        res["rounds"] = i + 1
        res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        save(args.name, res)


def _accuracy(model: str) -> Dict[str, Any]:
    """A bundled model's top-1 and the backend that measured it, from its manifest (never typed by hand)."""
    man = json.loads((ROOT / "engines" / "bundled" / (model + ".json")).read_text())
    acc = man.get("accuracy") or {}
    return {"top1": acc.get("top1"), "by": acc.get("measured_with"), "n": acc.get("n"),
            "fp32_onnx": (acc.get("fp32_onnx") or {}).get("top1")}


def _rebuilt_note(lat8: Optional[Dict[str, Any]]) -> List[str]:
    """A line when the INT8 file's manifest is newer than its latency results (the build was re-made since)."""
    man = json.loads((ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.int8-cpu.onnx.json").read_text())
    when = (lat8 or {}).get("machine", {}).get("when")
    if lat8 is None or not when or str(man.get("created", "")) <= str(when):
        return []
    return ["**The INT8 build was re-made (its manifest: %s) after its loop figures below were measured (%s)**: its "
            "accuracy above is the new file's, its latency and throughput are the earlier build's; re-run `latency`, "
            "`throughput` and `paced` with `--model engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx` to refresh "
            "them." % (man.get("created"), when)]


def _pct_list(xs: Sequence[float]) -> str:
    return ", ".join("%.0f %%" % (100 * x) for x in xs)


def _loads(*results: Optional[Dict[str, Any]]) -> str:
    return ", ".join(" / ".join("%.2f" % x for x in r["machine"]["loadavg"]) for r in results if r)


def _ab_lines(ab: Dict[str, Any], sizes: bool = True) -> List[str]:
    """The before/after section (issue #16, "behaviour unchanged"), from runtime-results/ab.json."""
    out = ["", "## Before/after: %s vs %s, measured back to back" % (ab["before"]["commit"][:7], ab["after"]["commit"][:7]),
           "", "Command: `%s`. %d rounds; each round runs every measurement in both checkouts, the order of the "
           "checkouts reversed every other round (before first in round 1). The CPU was shared with a training run "
           "(load average %s at the start, %s at the end), so each figure is the median over the rounds, with every "
           "round's value beside it. Model: %s (the INT8 CPU build `edge-runtime run` runs), 1 thread." % (
               ab["command"], ab["rounds"], " / ".join("%.2f" % x for x in ab["loadavg_start"]),
               " / ".join("%.2f" % x for x in ab["loadavg_end"]), ab["measured_model"]), "",
           "| measurement | before (median) | after (median) | after - before | after's median within before's rounds? "
           "| before, each round | after, each round |",
           "|---|---|---|---|---|---|---|"]
    for side in ("before", "after"):  # backend-only FPS of each round = loop FPS / the round's ratio
        r = ab[side]["rounds"]
        r["backend_fps"] = [f / q_ for f, q_ in zip(r["loop_fps"], r["ratio"])]
        ab[side]["medians"]["backend_fps"] = float(np.median(r["backend_fps"]))
    for key, label, unit in (("overhead_ms", "runner overhead vs bare InferenceSession.run (median, ms)", "ms"),
                             ("p99_ms", "capture->decision p99, demo clip at 30 FPS (ms)", "ms"),
                             ("ratio", "loop throughput from a file / backend-only", "%"),
                             ("loop_fps", "loop throughput from a file (FPS)", ""),
                             ("backend_fps", "backend-only `Runner.infer` in a tight loop, same round (FPS)", "")):
        b, a = ab["before"]["medians"][key], ab["after"]["medians"][key]
        f = (lambda v: "%.1f %%" % (100 * v)) if unit == "%" else ((lambda v: "%.3f" % v) if unit else
                                                                    (lambda v: "%.0f" % v))
        d = ("%+.1f points" % (100 * (a - b))) if unit == "%" else (("%+.3f" % (a - b)) if unit else "%+.0f" % (a - b))
        br = ab["before"]["rounds"][key]
        inside = "yes" if min(br) <= a <= max(br) else ("no, above" if a > max(br) else "no, below")
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (label, f(b), f(a), d, inside, ", ".join(f(v) for v in br),
                                                            ", ".join(f(v) for v in ab["after"]["rounds"][key])))
    out += ["", "Commands run in each checkout, per round: %s." % "; ".join("`%s`" % c for c in ab["commands"])]
    if not sizes:
        return out
    out += ["", "Module sizes (`wc -l edge_runtime/**/*.py`): before %d lines in %d modules, after %d lines in %d "
            "modules. The largest after the change:" % (ab["before"]["lines_total"], len(ab["before"]["lines"]),
                                                         ab["after"]["lines_total"], len(ab["after"]["lines"])), "",
            "| module | before | after |", "|---|---|---|"]
    bl, al = ab["before"]["lines"], ab["after"]["lines"]
    for mod in sorted(set(bl) | set(al), key=lambda m: -max(al.get(m, 0), bl.get(m, 0)))[:16]:
        out.append("| %s | %s | %s |" % (mod, bl.get(mod, "-"), al.get(mod, "-")))
    return out


def cmd_report(args: argparse.Namespace) -> None:
    """benchmarks/runtime.md (or ``--out``): every figure on the page is read from runtime-results/*.json or a
    manifest."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    soak: Any = None
    runner_thread_ab: Any = None
    try:  # benchmarks/soak.py: its goal row and section, when it is there
        import soak as _soak  # type: ignore[import-not-found,unused-ignore]

        soak = _soak
    except ImportError:
        pass
    try:  # benchmarks/runner_thread_ab.py: the runner thread's cost, when it is there
        import runner_thread_ab as _rta  # type: ignore[import-not-found,unused-ignore]

        runner_thread_ab = _rta
    except ImportError:
        pass
    lat, thr, mem, paced = _load("latency.json"), _load("throughput.json"), _load("memory.json"), _load("paced.json")
    sfx = ".mobilenetv2_cifar_x0_5.int8-cpu.json"
    mem = _load("memory" + sfx) or mem  # the default build's run when there is one
    lat8, thr8, paced8 = _load("latency" + sfx), _load("throughput" + sfx), _load("paced" + sfx)
    earlier = _load("throughput" + sfx[:-5] + ".earlier-sets.json")
    abs_ = [a for a in (_load("ab.json"), _load("ab.own-model.json")) if a]
    a8, a32 = _accuracy("mobilenetv2_cifar_x0_5.int8-cpu.onnx"), _accuracy("mobilenetv2_cifar_x0_5.onnx")
    m = lat["machine"]
    out = ["# The on-robot loop on this CPU (bundled MobileNetV2 x0.5, ONNX Runtime)", "",
           "Produced by `python benchmarks/runtime_bench.py report`: every figure on this page is read from the JSON in "
           "`benchmarks/runtime-results/` (each with the command that produced it) or from a model's manifest.",
           "The loop is `edge_runtime.runtime.Runtime` exactly as `edge-runtime run` runs it, with",
           "`deploy/configs/vehicle.yaml` (its JSONL and UDP sinks on, console off) and `--threads 1`. Two builds of the",
           "bundled model: *INT8 CPU* `engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx` (%.2f %% CIFAR-10 test top-1 "
           "on %s images, measured with %s; its manifest), what `edge-runtime run` and `make demo` run on ONNX Runtime "
           "by default, and *FP32* `engines/bundled/mobilenetv2_cifar_x0_5.onnx` (%.2f %% measured with ONNX Runtime on "
           "the same images, recorded as `fp32_onnx` in the INT8 manifest; its own manifest quotes %.2f %%, measured "
           "with PyTorch on the checkpoint it was exported from; TensorRT's default source, `--model` on a CPU)." % (
               a8["top1"], a8["n"], a8["by"], a8["fp32_onnx"], a32["top1"]),
           "No TensorRT figure: TensorRT cannot run here."] + _rebuilt_note(lat8) + ["",
           "Machine: %s, %s cores (a VM), Python %s, numpy %s, onnxruntime %s, OpenCV %s. Load average (1/5/15 min) at "
           "the FP32 latency run %s, INT8 latency run %s, FP32 throughput run %s, INT8 throughput run %s%s." % (
               m["cpu"], m["cores"], m["python"], m["numpy"], m["onnxruntime"], m["opencv"], _loads(lat), _loads(lat8),
               _loads(thr), _loads(thr8),
               (", at the end of the memory run %s" % _loads(mem)) if mem else ""),
           "", "## Goals", "", "| goal | model | measured | met |", "|---|---|---|---|"]
    for name, L in (("INT8 CPU (default)", lat8), ("FP32", lat)):
        if not L:
            continue
        clip = L["clip@30fps"]
        p99 = q(clip["decision_latency_ms"], "p99")
        out.append("| capture->decision p99 <= 3 ms (demo clip at 30 FPS) | %s | %.2f ms pooled over %d runs (%d frames; "
                   "each run: %s; p50 %.2f) | %s |" % (
                       name, p99, L.get("repeat", 1), clip["frames"], _runs_p99(clip), q(clip["decision_latency_ms"], "p50"),
                       "yes" if p99 <= 3 else "no, by %.2f ms" % (p99 - 3)))
    for name, T in (("INT8 CPU (default)", thr8), ("FP32", thr)):
        if T:
            out.append("| loop throughput from a file >= 80 %% of backend-only | %s | %.1f %%, the median of %d rounds' "
                       "loop/backend ratios (each round: %s; median FPS %.0f vs %.0f) | %s |" % (
                           name, 100 * T["ratio"], T.get("repeat", 1), _pct_list([r["ratio"] for r in T["rounds"]]),
                           T["loop_fps"], T["backend_only_fps"], "yes" if T["ratio"] >= 0.8 else "no"))
    for name, L in (("INT8 CPU (default)", lat8), ("FP32", lat)):
        if L:
            clip, syn = L["clip@30fps"], L["synthetic@30fps"]
            misses = clip["deadline_misses"] + syn["deadline_misses"]
            out.append("| 30 FPS source: no deadline miss (deadline_ms %g) | %s | %d misses in %d + %d frames (clip, "
                       "synthetic://) | %s |" % (clip["deadline_ms"], name, misses, clip["frames"], syn["frames"],
                                                 "yes" if misses == 0 else "no"))
    if mem:
        out.append("| RSS growth < 10 MB over 10 minutes | %s | %+.2f MB from 60 s to %g s (%+.2f MB from the "
                   "first sample) | %s |" % ("INT8 CPU (default)" if "int8" in mem.get("model", "") else "FP32",
                                             mem["growth_after_60s_mb"], mem["seconds"], mem["growth_total_mb"],
                                             ("yes" if mem["growth_after_60s_mb"] < 10 else "no")
                                             + ("" if mem["seconds"] >= 600 else " (shorter run)")))
    if soak is not None:
        out += soak.goal_rows(OUT)  # benchmarks/soak.py: 30 minutes at 30 FPS
    if paced:
        out += ["", "## The model alone: back to back vs once per 1/30 s (`paced`)", "",
                "ONNX Runtime, 1 thread, one frame, outside the loop. *Hot*: calls back to back. *Paced*: one call every",
                "1/30 s with the thread asleep in between, as in the 30 FPS loop; *second call*: the same call again right",
                "after the paced one.", "", "| model | hot p50 | hot p99 | paced p50 | paced p99 | second call p50 |",
                "|---|---|---|---|---|---|"]
        for name, P in (("INT8 CPU (default)", paced8), ("FP32", paced)):
            if P:
                out.append("| %s | %.3f | %.3f | %.3f | %.3f | %.3f |" % (
                    name, q(P["hot"], "p50"), q(P["hot"], "p99"), q(P["paced_30fps"], "p50"), q(P["paced_30fps"], "p99"),
                    q(P["paced_30fps_second_call"], "p50")))
    if lat8:
        out += _stage_table("Demo clip paced at 30 FPS, INT8 CPU (default), %d runs pooled" % lat8.get("repeat", 1),
                            lat8["clip@30fps"])
    out += _stage_table("Demo clip paced at 30 FPS, FP32, %d runs pooled" % lat.get("repeat", 1), lat["clip@30fps"])
    out += _stage_table("synthetic://?rate=30 (160x160), FP32, %d runs pooled" % lat.get("repeat", 1),
                        lat["synthetic@30fps"])
    if thr8:
        out += _stage_table("Demo clip read as fast as the loop takes it (throughput), INT8 CPU (default)", thr8["loop"])
    out += _stage_table("Demo clip read as fast as the loop takes it (throughput), FP32", thr["loop"])
    if mem:
        s = mem["rss_mb_samples"]
        pick = [s[i] for i in sorted(set([0] + list(range(0, len(s), max(1, len(s) // 10))) + [len(s) - 1]))]
        out += ["", "## Resident memory over %g s at 30 FPS (demo clip, looped)" % mem["seconds"], "",
                "%d frames; capture->decision p99 %.2f ms (load average at the end %s); deadline misses %d." % (
                    mem["frames"], q(mem["decision_latency_ms"], "p99"), _loads(mem), mem["deadline_misses"]), "",
                "| t (s) | " + " | ".join("%g" % x[0] for x in pick) + " |", "|---|" + "---|" * len(pick),
                "| RSS (MB) | " + " | ".join("%.1f" % x[1] for x in pick) + " |"]
    if soak is not None:
        out += soak.report_lines(OUT)
    if runner_thread_ab is not None:
        out += runner_thread_ab.report_lines(OUT)
    for i, ab in enumerate(abs_):
        out += _ab_lines(ab, sizes=i == len(abs_) - 1)
    out += ["", "## Reading these numbers", ""] + notes(lat, lat8, thr, thr8, paced, earlier, a8)
    from edge_runtime.fsio import write_text_atomic

    dest = Path(args.out) if getattr(args, "out", None) else ROOT / "benchmarks" / "runtime.md"
    write_text_atomic(dest, "\n".join(out) + "\n")
    print("wrote %s" % dest)


def notes(lat: Dict[str, Any], lat8: Optional[Dict[str, Any]], thr: Dict[str, Any], thr8: Optional[Dict[str, Any]],
          paced: Optional[Dict[str, Any]], earlier: Optional[Dict[str, Any]], a8: Dict[str, Any]) -> List[str]:
    """The explanations under the tables; every figure in them is computed from the results passed in."""
    t = thr8 or thr
    rounds = [r["ratio"] for r in t["rounds"]]
    pol = t["loop"]["stages_ms"]["policy"]
    out = [
        "- capture->decision runs from the grabber thread's `time.monotonic()` stamp (taken when the frame is decoded) to",
        "  the policy's decision. The grabber thread also preprocesses each frame (160x160 BGR -> centre crop -> INTER_AREA",
        "  32x32 -> normalize) before handing it over, so frame N+1 is decoded and preprocessed on one core while frame N is",
        "  in inference on the other; *preprocess* is timed there and still counts in capture->decision, and *capture->read*",
        "  is the rest (hand-over and waiting to be read). Sinks run after the decision, on their own threads.",
        "- Throughput: the loop's thread does only inference, softmax, the policy (its stage: p50 %.3f ms in the %s "
        "throughput run) and" % (q(pol, "p50"), "INT8" if thr8 else "FP32"),
        "  the hand-over to the sinks. With the %s build the loop's frame takes %.3f ms (1 / its median FPS) against %.3f ms "
        "for the" % ("INT8" if thr8 else "FP32", 1e3 / t["loop_fps"], 1e3 / t["backend_only_fps"]),
        "  bare model in a tight loop (backend-only: one preprocessed frame, the same session): inference in the loop",
        "  shares the machine with the grabber thread decoding and preprocessing on the other core. The video is decoded",
        "  with one FFmpeg thread (`source.decode_threads: 1`): FFmpeg's default, a thread per core, puts a decoder",
        "  thread on the inference core. Single one-second rounds on this VM move a lot (this set's rounds: %.0f %% to "
        "%.0f %%)," % (100 * min(rounds), 100 * max(rounds)),
        "  hence the median of the rounds' own ratios."]
    if earlier and thr8:
        sets = ", ".join("%.1f %%" % (100 * st["ratio_median"]) for st in earlier["sets"])
        out += ["  For the INT8 build the figure sits near the goal: earlier 9-round sets with the same code gave %s" % sets,
                "  (`runtime-results/throughput.mobilenetv2_cifar_x0_5.int8-cpu.earlier-sets.json`), the %d-round set in "
                "the table %.1f %%, all %d rounds pooled %.1f %%." % (
                    thr8["repeat"], 100 * thr8["ratio"], earlier["pooled_rounds"], 100 * earlier["pooled_ratio_median"])]
    if paced:
        out += ["- Latency: at 30 FPS the model itself runs slower than back to back (the `paced` table: the first call",
                "  after 33 ms of sleep, against the next call right after it). This VM's idle cores wake slowly, and no",
                "  setting inside it changes that (tried: one pinned core, a 1 ms keep-awake poll, `/dev/cpu_dma_latency`:",
                "  the VM has no cpuidle driver). The FP32 model alone at 30 Hz has a p99 of %.2f ms, and the loop around "
                "it" % q(paced["paced_30fps"], "p99"),
                "  (decode, preprocess, hand-over, policy) brings the pooled capture->decision p99 to %.2f ms%s." % (
                    q(lat["clip@30fps"]["decision_latency_ms"], "p99"),
                    "; the INT8 build (%.2f %% top-1 against %.2f %%, both ONNX Runtime) to %.2f ms" % (
                        a8["top1"], a8["fp32_onnx"], q(lat8["clip@30fps"]["decision_latency_ms"], "p99")) if lat8 else ""),
                "  That is why `edge-runtime run` runs the INT8 build on ONNX Runtime by default (`--model",
                "  engines/bundled/mobilenetv2_cifar_x0_5.onnx` for FP32), while `--backend tensorrt` builds an FP16 engine",
                "  from the FP32 ONNX (on a Jetson, after `sudo jetson_clocks`)."]
    out += ["- The tail (p99, max) moves with whatever else runs on the 2 cores: compare the load averages above.",
            "- Other latency work in the loop: Python's garbage collector is frozen after start-up (`gc.freeze()`: a full",
            "  collection no longer scans the modules and the model), the watchdog looks without taking the lock, and",
            "  preprocessing, softmax and the policy were trimmed (their stage times are in the tables above).",
            "- None of these figures says what a Jetson does: run the same script there."]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the ONNX model (default: the bundled FP32 one)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--synthetic-frames", type=int, default=600)
    p.add_argument("--repeat", type=int, default=3, help="runs per source, pooled in the report (default 3)")
    p = sub.add_parser("paced")
    p.add_argument("--frames", type=int, default=600)
    p = sub.add_parser("throughput")
    p.add_argument("--frames", type=int, default=1500)
    p.add_argument("--repeat", type=int, default=9, help="rounds of loop + backend-only (default 9)")
    p = sub.add_parser("memory")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--every", type=float, default=5.0)
    p = sub.add_parser("ab", help="two checkouts back to back, alternating (before/after a change)")
    p.add_argument("--before", type=Path, required=True, help="the checkout before (git worktree add DIR COMMIT)")
    p.add_argument("--after", type=Path, required=True, help="the checkout after")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    p.add_argument("--frames", type=int, default=1500, help="throughput frames per round (default 1500)")
    p.add_argument("--bare-seconds", type=float, default=4.0, help="bench engine --vs-bare duration (default 4)")
    p.add_argument("--own-model", action="store_true",
                   help="each checkout runs its own bundled INT8 file (default: the before checkout's, in both)")
    p.add_argument("--name", default="ab", help="result file runtime-results/NAME.json (default ab)")
    p = sub.add_parser("report")
    p.add_argument("--out", type=Path, default=None, help="write here instead of benchmarks/runtime.md")
    args = ap.parse_args()
    global MODEL
    MODEL = args.model.resolve()
    {"latency": cmd_latency, "paced": cmd_paced, "throughput": cmd_throughput, "memory": cmd_memory,
     "ab": cmd_ab, "report": cmd_report}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
