#!/usr/bin/env python3
"""Benchmarks of the on-robot loop (edge_runtime.runtime) on this CPU, with the bundled model.

    python benchmarks/runtime_bench.py latency      # the demo clip paced at 30 FPS: capture->decision, deadline misses
    python benchmarks/runtime_bench.py throughput   # the clip read as fast as the loop takes it vs backend-only
    python benchmarks/runtime_bench.py memory --seconds 600   # resident memory over a long 30 FPS run
    python benchmarks/runtime_bench.py report       # benchmarks/runtime.md from the JSON results

Each measurement writes benchmarks/runtime-results/<name>.json with the machine, versions and load
average at the time. The loop runs exactly as `edge-runtime run` does (Runtime.from_config with
deploy/configs/vehicle.yaml), with its sinks (console replaced by nothing; JSONL and UDP kept, the
JSONL log under runs/bench/). Threads: 1 for ONNX Runtime (the runtime's default).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "runtime-results"
MODEL = ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.onnx"
CONFIG = ROOT / "deploy" / "configs" / "vehicle.yaml"
CLIP = ROOT / "deploy" / "demo" / "cifar10-demo.mp4"


def machine() -> Dict[str, Any]:
    """The evidence recorded with every result (shared with edge-runtime bench: edge_runtime.bench.evidence)."""
    from edge_runtime.bench import evidence

    return evidence()


def config(jsonl: str) -> Any:
    """The runtime config as `edge-runtime run` uses it, console sink off, JSONL log at ``jsonl``."""
    from edge_runtime.bench import bench_config

    return bench_config(CONFIG, jsonl, rate=None, camera=False)


def runtime(source: str, rate: Any, loop: bool, name: str) -> Any:
    from edge_runtime.runtime import Runtime

    cfg = config(str(ROOT / "runs" / "bench" / ("%s.jsonl" % name)))
    cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, rate=rate, loop=loop))
    return Runtime.from_config(cfg, model=str(MODEL), source=source)


def save(name: str, data: Dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data["machine"] = machine()
    (OUT / ("%s.json" % name)).write_text(json.dumps(data, indent=1) + "\n")
    print("wrote %s" % (OUT / ("%s.json" % name)))


def cmd_latency(args: argparse.Namespace) -> None:
    res: Dict[str, Any] = {"command": "python benchmarks/runtime_bench.py latency"}
    for label, src, frames in (("clip@30fps", str(CLIP), None), ("synthetic@30fps", "synthetic://?rate=30&width=160&height=160",
                                                                  args.synthetic_frames)):
        rt = runtime(src, 30.0, False, "latency")
        if frames:
            rt.config = dataclasses.replace(rt.config, run=dataclasses.replace(rt.config.run, max_frames=frames))
        with rt:
            final = rt.run()
        rep = rt.report()
        rep["final"] = final.summary()
        res[label] = rep
        lat = rep["decision_latency_ms"]
        print("%s: %d frames, %.1f FPS, capture->decision p50 %.2f p90 %.2f p99 %.2f ms, deadline misses %d" % (
            label, rep["frames"], rep["fps"], lat["p50"], lat["p90"], lat["p99"], rep["deadline_misses"]))
    save("latency", res)


def cmd_throughput(args: argparse.Namespace) -> None:
    from edge_runtime.backends import runner_for
    from edge_runtime.manifest import for_artifact
    from edge_runtime.preprocess import preprocess

    res: Dict[str, Any] = {"command": "python benchmarks/runtime_bench.py throughput --frames %d" % args.frames}
    rt = runtime(str(CLIP), None, True, "throughput")  # no rate: a file is handed over losslessly, as fast as taken
    rt.config = dataclasses.replace(rt.config, run=dataclasses.replace(rt.config.run, max_frames=args.frames))
    with rt:
        rt.run()
    rep = rt.report()
    res["loop"] = rep
    man = for_artifact(MODEL)
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    ok, img = cap.read()
    cap.release()
    x = preprocess(img, man["preprocess"], bgr=True)
    runner = runner_for(MODEL, threads=1)
    with runner:
        for _ in range(50):
            runner.infer(x)
        t0 = time.perf_counter()
        for _ in range(args.frames):
            runner.infer(x)
        backend_s = time.perf_counter() - t0
    res["backend_only_fps"] = args.frames / backend_s
    res["loop_fps"] = rep["fps"]
    res["ratio"] = rep["fps"] / res["backend_only_fps"]
    print("loop %.1f FPS from the file source vs backend-only %.1f FPS: %.1f %%" % (
        rep["fps"], res["backend_only_fps"], 100 * res["ratio"]))
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
    res = {"command": "python benchmarks/runtime_bench.py memory --seconds %g" % args.seconds, "seconds": args.seconds,
           "frames": rep["frames"], "fps": rep["fps"], "rss_mb_samples": samples,
           "rss_first_mb": float(rss[0]), "rss_after_60s_mb": float(warm[0][1]), "rss_last_mb": float(rss[-1]),
           "rss_max_mb": float(rss.max()), "growth_after_60s_mb": float(rss[-1] - warm[0][1]),
           "growth_total_mb": float(rss[-1] - rss[0]), "deadline_misses": rep["deadline_misses"],
           "decision_latency_ms": rep["decision_latency_ms"]}
    print("%d frames in %g s: RSS %.1f MB at first sample, %.1f MB after 60 s, %.1f MB at the end (growth after warm-up "
          "%.2f MB)" % (rep["frames"], args.seconds, rss[0], warm[0][1], rss[-1], res["growth_after_60s_mb"]))
    save("memory", res)


def _row(st: Dict[str, float]) -> str:
    return "%.3f | %.3f | %.3f | %.3f | %.3f" % (st["mean"], st["p50"], st["p90"], st["p99"], st["max"])


def cmd_report(args: argparse.Namespace) -> None:
    lat = json.loads((OUT / "latency.json").read_text())
    thr = json.loads((OUT / "throughput.json").read_text())
    mem_path = OUT / "memory.json"
    mem = json.loads(mem_path.read_text()) if mem_path.is_file() else None
    m = lat["machine"]
    out = ["# The on-robot loop on this CPU (bundled MobileNetV2 x0.5, ONNX Runtime FP32)", "",
           "Produced by `benchmarks/runtime_bench.py` (the JSON behind every number is in `benchmarks/runtime-results/`).",
           "The loop is `edge_runtime.runtime.Runtime` exactly as `edge-runtime run` runs it, with",
           "`deploy/configs/vehicle.yaml` (its JSONL and UDP sinks on, console off) and `--threads 1`.",
           "No TensorRT figure: TensorRT cannot run here.", "",
           "Machine: %s, %s cores, Python %s, numpy %s, onnxruntime %s, OpenCV %s, shared with other jobs at times "
           "(the load average says how busy it was): %s at the latency run, %s at the throughput run%s." % (
               m["cpu"], m["cores"], m["python"], m["numpy"], m["onnxruntime"], m["opencv"],
               " / ".join("%.2f" % x for x in m["loadavg"]), " / ".join("%.2f" % x for x in thr["machine"]["loadavg"]),
               (", %s at the end of the memory run" % " / ".join("%.2f" % x for x in mem["machine"]["loadavg"])) if mem else ""),
           "", "## Goals", "", "| goal | measured | met |", "|---|---|---|"]
    clip = lat["clip@30fps"]
    syn = lat["synthetic@30fps"]
    p99 = clip["decision_latency_ms"]["p99"]
    out.append("| capture->decision p99 <= 3 ms (demo clip at 30 FPS) | %.2f ms (p50 %.2f, p90 %.2f; %d frames) | %s |" % (
        p99, clip["decision_latency_ms"]["p50"], clip["decision_latency_ms"]["p90"], clip["frames"],
        "yes" if p99 <= 3 else "no"))
    out.append("| loop throughput from a file >= 80 %% of backend-only | %.1f FPS vs %.1f FPS = %.1f %% | %s |" % (
        thr["loop_fps"], thr["backend_only_fps"], 100 * thr["ratio"], "yes" if thr["ratio"] >= 0.8 else "no"))
    misses = clip["deadline_misses"] + syn["deadline_misses"]
    out.append("| 30 FPS source: no deadline miss (deadline_ms %g) | %d misses in %d + %d frames (clip, synthetic://) | %s |"
               % (clip["deadline_ms"], misses, clip["frames"], syn["frames"], "yes" if misses == 0 else "no"))
    if mem:
        out.append("| RSS growth < 10 MB over 10 minutes | %+.2f MB from 60 s to %g s (%+.2f MB from the first sample) | %s |" % (
            mem["growth_after_60s_mb"], mem["seconds"], mem["growth_total_mb"],
            ("yes" if mem["growth_after_60s_mb"] < 10 else "no") + ("" if mem["seconds"] >= 600 else " (shorter run)")))
    else:
        out.append("| RSS growth < 10 MB over 10 minutes | not measured | - |")
    for label, rep in (("Demo clip paced at 30 FPS (`%s`)" % "latency", clip), ("synthetic://?rate=30 (160x160)", syn),
                       ("Demo clip read as fast as the loop takes it (throughput)", thr["loop"])):
        out += ["", "## %s: per stage, ms" % label, "",
                "%d frames, %.1f FPS, stale %d, dropped %d, deadline misses %d, sink errors %d." % (
                    rep["frames"], rep["fps"], rep["stale_frames"], rep["dropped_frames"], rep["deadline_misses"],
                    sum(s["errors"] for s in rep["sinks"].values())), "",
                "| stage | mean | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
        for st in ["capture->read", "preprocess", "infer", "policy", "sinks"]:
            out.append("| %s | %s |" % (st, _row(rep["stages_ms"][st])))
        out.append("| **capture->decision** | %s |" % _row(rep["decision_latency_ms"]))
    if mem:
        s = mem["rss_mb_samples"]
        pick = [s[i] for i in sorted(set([0] + list(range(0, len(s), max(1, len(s) // 10))) + [len(s) - 1]))]
        out += ["", "## Resident memory over %g s at 30 FPS (demo clip, looped)" % mem["seconds"], "",
                "%d frames; capture->decision p99 %.2f ms; deadline misses %d." % (
                    mem["frames"], mem["decision_latency_ms"]["p99"], mem["deadline_misses"]), "",
                "| t (s) | " + " | ".join("%g" % x[0] for x in pick) + " |", "|---|" + "---|" * len(pick),
                "| RSS (MB) | " + " | ".join("%.1f" % x[1] for x in pick) + " |"]
    out += ["", "## Reading these numbers", ""] + [l for l in NOTES.strip().splitlines()]
    (ROOT / "benchmarks" / "runtime.md").write_text("\n".join(out) + "\n")
    print("wrote benchmarks/runtime.md")


NOTES = """
- capture->decision runs from the grabber thread's `time.monotonic()` stamp to the policy's decision, so it
  includes the hand-over from the grabber thread, preprocessing (160x160 BGR -> centre crop -> INTER_AREA 32x32
  -> normalize), inference and the policy. Sinks run after the decision, on their own threads.
- The tail (p99, max) here moves with whatever else runs on the 2 cores (the memory run shared them with a
  training run; the latency and throughput runs of 12:22 UTC had a load average near 0.2):
  a thread that is runnable but not scheduled, or waiting for the GIL while another thread holds it, adds
  milliseconds that the per-stage means do not show. The p50 is the figure to compare with a quiet machine.
- Backend-only throughput is `runner.infer` on one preprocessed frame in a tight loop; the loop adds decoding
  (in the grabber thread), preprocessing, the policy and the sinks.
- Why two goals are missed here. Throughput: this model's inference is only ~0.8 ms, and the loop's own work
  per frame is of the same size (preprocessing ~0.1-0.3 ms: centre crop, INTER_AREA resize, normalize (cut from
  ~0.5 ms by resizing before the BGR->RGB flip and a cached affine normalization); the policy ~0.1-0.2 ms of
  Python; MP4 decoding in the grabber thread, which competes for the same 2 cores).
  80 % would need < 0.2 ms of overhead per frame: vectorizing preprocessing into the model (resize and
  normalize as ONNX ops) or decoding on a third core would be the next steps. Latency p99: inference alone
  has a p99 of ~6 ms in the loop (1.6 ms measured in isolation earlier on a quieter moment), i.e. the tail
  is scheduling on a machine whose training job holds 1.4 of its 2 cores; the p50 (2.7 ms) meets the goal.
  Neither figure says what a Jetson does; measure there with the same script.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--synthetic-frames", type=int, default=600)
    p = sub.add_parser("throughput")
    p.add_argument("--frames", type=int, default=1500)
    p = sub.add_parser("memory")
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--every", type=float, default=5.0)
    sub.add_parser("report")
    args = ap.parse_args()
    {"latency": cmd_latency, "throughput": cmd_throughput, "memory": cmd_memory, "report": cmd_report}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
