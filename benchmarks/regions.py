#!/usr/bin/env python3
"""Regions and cameras: the dynamic-batch copy of the bundled INT8 CPU build, and the scenario that shows regions matter.

    # 1. the bundled INT8 CPU build with a symbolic batch axis (same graph and weights; checked against the original
    #    on the exact CIFAR-10 test images 0-999): engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.dynbatch.onnx
    EDGE_RUNTIME_DATA=data python benchmarks/regions.py dynbatch

    # 2. wide frames (640x360, road-grey or textured) with a CIFAR object (exact test images 0-999) pasted at random
    #    places and times; the same frames through the runtime with vehicle.yaml (whole frame) and
    #    vehicle-regions.yaml (path + left/right), scored with edge_runtime.score
    EDGE_RUNTIME_DATA=data python benchmarks/regions.py scenario --seconds 120 --out benchmarks/regions-results

The timing goals (bench engine --batch, bench e2e with two cameras) are run with edge-runtime bench; the commands
and results are in benchmarks/regions.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.cifar import load_split  # noqa: E402
from edge_runtime.fsio import sha256_file, write_json_atomic, write_text_atomic  # noqa: E402
from edge_runtime.policy import Action  # noqa: E402

BUNDLED = ROOT / "engines" / "bundled"
INT8 = BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.onnx"
DYN = BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.dynbatch.onnx"
ANIMALS = ("bird", "cat", "deer", "dog", "frog", "horse")
VEHICLES = ("automobile", "truck")


# ------------------------------------------------------------------------------------------------ dynbatch
def dynbatch(args: argparse.Namespace) -> None:
    import onnx

    from edge_runtime.backends.onnxrt import OnnxRuntimeRunner
    from edge_runtime.preprocess import preprocess_batch
    from edge_runtime.quantize import _with_batch

    src_man = mf.for_artifact(INT8)
    model = _with_batch(onnx.load(str(INT8)), "batch")
    onnx.checker.check_model(model)
    tmp = DYN.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    test = load_split("cifar10", "test")
    x = preprocess_batch(test.images[:1000], src_man["preprocess"])
    with OnnxRuntimeRunner(INT8, threads=1, manifest=src_man) as a, OnnxRuntimeRunner(tmp, threads=1, manifest=src_man) as b:
        ref = a.infer(x)  # the fixed-batch original, 1000 calls of 1
        got = np.concatenate([b.infer(x[i:i + 8]) for i in range(0, 1000, 8)])  # the copy, batches of 8
        assert b.fixed_batch is None
    diff = float(np.abs(ref - got).max())
    agree = float(np.mean(ref.argmax(1) == got.argmax(1)) * 100)
    top1 = float(np.mean(got.argmax(1) == test.labels[:1000]) * 100)
    tmp.replace(DYN)
    man = json.loads(json.dumps(src_man))
    man["fp32_export"]["onnx"]["input"]["shape"][0] = "batch"
    man["fp32_export"]["onnx"]["output"]["shape"][0] = "batch"
    man["fp32_export"]["onnx"]["dynamic_batch"] = True
    man["created"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    man["source"] = {"kind": "onnx", "path": str(INT8.relative_to(ROOT)), "sha256": sha256_file(INT8), "precision": "int8"}
    man["source_sha256"] = man["source"]["sha256"]
    man["batch_axis"] = {
        "change": "input and output batch axis made symbolic ('batch'); graph, weights and quantization unchanged "
                  "(edge_runtime.quantize._with_batch)",
        "command": "EDGE_RUNTIME_DATA=data python benchmarks/regions.py dynbatch",
        "check": {"images": "cifar10 test 0..999", "vs": "the fixed-batch original at batch 1; this file at batch 8",
                  "max_abs_diff_logits": diff, "top1_agreement": agree, "top1_first1000": top1,
                  "runtime": "onnxruntime CPU"}}
    man["code"] = mf.code_version()
    mf.write(DYN, man, hash_artifact=True)
    print("wrote %s: max |diff| %.3g, top-1 agreement %.1f %%, top-1 (first 1000) %.1f %%" % (DYN, diff, agree, top1))


# ------------------------------------------------------------------------------------------------ scenario
@dataclasses.dataclass
class Seg:
    start: int
    end: int
    kind: str        # empty | path_animal | side_animal | path_vehicle
    expected: str
    cls: str = ""
    index: int = -1  # CIFAR-10 test image
    box: Tuple[int, int, int, int] = (0, 0, 0, 0)
    background: str = "grey"


#: the regions of deploy/configs/vehicle-regions.yaml, in pixels of a 640x360 frame (x0, y0, x1, y1)
W, H = 640, 360
PATH_BOX = (224, 162, 416, 360)
SIDE_BOXES = ((0, 144, 224, 360), (416, 144, 640, 360))
EXPECTED = {"empty": "SLOW", "path_animal": "STOP", "side_animal": "SLOW", "path_vehicle": "SLOW"}


def plan(seed: int, frames: int, fps: float, labels: np.ndarray, names: List[str], background: str = "grey",
         sizes: Tuple[int, int] = (96, 144)) -> List[Seg]:
    rng = np.random.default_rng(seed)
    by_class = {c: np.flatnonzero(labels == names.index(c)) for c in ANIMALS + VEHICLES}
    segs: List[Seg] = []
    pos = 0
    while pos < frames:
        n = int(rng.integers(int(1.0 * fps), int(2.5 * fps)))
        end = min(frames, pos + n)
        kind = str(rng.choice(["empty", "path_animal", "side_animal", "path_vehicle"], p=[0.25, 0.35, 0.25, 0.15]))
        bg = str(rng.choice(["grey", "texture"])) if background == "mixed" else background
        seg = Seg(pos, end, kind, EXPECTED[kind], background=bg)
        if kind != "empty":
            cls = str(rng.choice(VEHICLES if kind == "path_vehicle" else ANIMALS))
            seg.cls, seg.index = cls, int(rng.choice(by_class[cls]))
            size = int(rng.integers(sizes[0], sizes[1] + 1))  # the 32x32 image scaled 3x-4.5x: small in a 640x360 frame
            x0, y0, x1, y1 = PATH_BOX if kind.startswith("path") else SIDE_BOXES[int(rng.integers(0, 2))]
            size = min(size, x1 - x0, y1 - y0)
            bx, by = int(rng.integers(x0, x1 - size + 1)), int(rng.integers(y0, y1 - size + 1))
            seg.box = (bx, by, bx + size, by + size)
        segs.append(seg)
        pos = end
    return segs


def frames_of(segs: List[Seg], images: np.ndarray, seed: int) -> Iterator[np.ndarray]:
    """BGR frames, made on the fly (a 2-minute clip would not fit in memory)."""
    import cv2

    rng = np.random.default_rng(seed + 1)
    tex = np.clip(112 + 30 * cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 6) * 6, 0, 255)
    texture = np.repeat(tex[..., None], 3, 2).astype(np.uint8)
    grey = np.empty((H, W, 3), np.uint8)
    grey[:] = (112, 112, 108)
    for s in segs:
        base = (texture if s.background == "texture" else grey).copy()
        if s.kind != "empty":
            x0, y0, x1, y1 = s.box
            obj = cv2.resize(images[s.index][..., ::-1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            base[y0:y1, x0:x1] = obj
        for _ in range(s.start, s.end):
            noise = rng.integers(-6, 7, (H, W, 1), dtype=np.int16)
            yield np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8)


class GenSource:
    """A lossless source over a generator of frames (every frame decided, in order)."""

    @staticmethod
    def make(gen: Iterator[np.ndarray]) -> Any:
        from edge_runtime.sources import Source, SourceState

        class _Gen(Source):
            live = False

            def _run(self) -> None:
                for img in gen:
                    if not self._publish(img):
                        return
                self._finish(SourceState.ENDED)

        return _Gen("generated://regions-scenario")


def run_config(config: Path, segs: List[Seg], images: np.ndarray, seed: int, n: int, model: Path,
               gate: Any = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    from edge_runtime.config import load_config
    from edge_runtime.runtime import Runtime

    cfg = load_config(config)
    cfg = dataclasses.replace(cfg, sinks=(), policy=dataclasses.replace(cfg.policy, timeouts=dataclasses.replace(
        cfg.policy.timeouts, max_frame_age_ms=60000.0, deadline_ms=60000.0, source_timeout_ms=60000.0)))
    if gate is not None:  # the policy's uncertainty gate (policy.uncertain_below), the same for both configs
        cfg = dataclasses.replace(cfg, policy=dataclasses.replace(cfg.policy, uncertain_below=gate))
    acts = np.full(n, -1, np.int8)
    rt = Runtime.from_config(cfg, model=str(model), source=GenSource.make(frames_of(segs, images, seed)))
    with rt:
        for d in rt.decisions():
            if d.frame_index is not None:
                acts[d.frame_index] = int(d.action)
    return acts, rt.report()


def scenario(args: argparse.Namespace) -> None:
    from edge_runtime import score as sc_mod
    from edge_runtime.scenario import Scenario, Segment

    test = load_split("cifar10", "test")
    images, labels = test.images[:1000], test.labels[:1000]  # the exact test images (the rest were JPEG-recovered)
    fps = 30.0
    n = int(args.seconds * fps)
    segs = plan(args.seed, n, fps, labels, test.class_names, args.background, (args.min_size, args.max_size))
    meta = {"format": "edge-runtime.scenario/1", "name": "regions-s%d" % args.seed, "fps": fps, "frames": n,
            "size": [W, H], "seed": args.seed, "default_action": "SLOW",
            "note": "generated in memory by benchmarks/regions.py (not written as a video)",
            "segments": [{"start": s.start, "end": s.end, "expected": s.expected, "class": s.cls or None,
                          "index": s.index, "kind": "object" if s.kind != "empty" else "unknown", "placement": s.kind,
                          "box": list(s.box), "background": s.background} for s in segs]}
    sc = Scenario(Path("regions-s%d.json" % args.seed), meta, [Segment(s.start, s.end, s.expected, s.cls or None,
                                                                        "object" if s.kind != "empty" else "unknown")
                                                                for s in segs])
    out: Dict[str, Any] = {"command": " ".join(["python"] + sys.argv), "model": str(args.model.relative_to(ROOT)),
                           "uncertain_below": args.uncertain_below,
                           "backend": "onnxruntime CPU", "scenario": meta, "host": platform.node(),
                           "python": platform.python_version(), "code": mf.code_version()}
    for label, config in (("whole frame (vehicle.yaml)", ROOT / "deploy/configs/vehicle.yaml"),
                          ("regions (vehicle-regions.yaml)", ROOT / "deploy/configs/vehicle-regions.yaml")):
        t0 = time.monotonic()
        acts, rep = run_config(config, segs, images, args.seed, n, args.model, args.uncertain_below)
        res = sc_mod.score(sc, acts)
        per_kind = {}
        for kind in EXPECTED:
            mask = np.zeros(n, bool)
            for s in segs:
                if s.kind == kind:
                    mask[s.start:s.end] = True
            if mask.any():
                per_kind[kind] = {a.name: round(float(np.mean(acts[mask] == int(a))), 4) for a in Action}
                per_kind[kind]["frames"] = int(mask.sum())
        res.pop("reactions", None)
        res.pop("stop_segments_detail", None)
        out[label] = {"config": str(config.relative_to(ROOT)), "score": res, "decided_share_by_placement": per_kind,
                      "seconds": round(time.monotonic() - t0, 1), "mean_batch": rep.get("mean_batch"),
                      "capture_to_decision_ms": rep["decision_latency_ms"]}
        print("%s: %d of %d STOP segments missed; share of frames decided STOP by placement: %s" % (
            label, res["missed_stop_segments"], res["stop_segments"],
            ", ".join("%s %.1f %%" % (k, 100 * v["STOP"]) for k, v in per_kind.items())))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "scenario.json", out)
    write_text_atomic(args.out / "scenario.md", markdown(out))
    if args.png:
        write_png(args.out / "scenario-frames.png", segs, images, args.seed)
    print("wrote %s" % (args.out / "scenario.json"))


def markdown(out: Dict[str, Any]) -> str:
    rows = []
    keys = [k for k in out if k.startswith(("whole", "regions"))]
    for k in keys:
        r = out[k]
        s, p = r["score"], r["decided_share_by_placement"]
        rows.append("| %s | %d / %d | %s | %.1f %% | %.1f %% | %.1f %% | %.1f %% | %s |" % (
            k, s["stop_segments"] - s["missed_stop_segments"], s["stop_segments"],
            "-" if s["reaction_ms"]["p50"] is None else "%.0f" % s["reaction_ms"]["p50"],
            100 * p.get("path_animal", {}).get("STOP", 0.0), 100 * p.get("side_animal", {}).get("STOP", 0.0),
            100 * p.get("empty", {}).get("STOP", 0.0),
            100 * (s["share"]["STOP"]["GO"] or 0.0), s["changes_per_min"]))
    return "\n".join([
        "Scenario %s: %d frames at %g FPS (%d s), %dx%d; command: `%s`; model %s (%s); policy.uncertain_below %s." % (
            out["scenario"]["name"], out["scenario"]["frames"], out["scenario"]["fps"],
            out["scenario"]["frames"] / out["scenario"]["fps"], W, H, out["command"], out["model"], out["backend"],
            out["uncertain_below"]),
        "",
        "| config | STOP segments caught | reaction p50 (ms) | STOP share, animal in path | STOP share, animal at the "
        "side | STOP share, empty road | GO during STOP | changes/min |",
        "|---|---|---|---|---|---|---|---|",
    ] + rows) + "\n"


def write_png(path: Path, segs: List[Seg], images: np.ndarray, seed: int) -> None:
    """A few frames of the scenario with the regions drawn (what the configs look at)."""
    import cv2

    from edge_runtime.overlay import draw_regions
    from edge_runtime.config import load_config
    from edge_runtime.regions import expand

    rects = expand(load_config(ROOT / "deploy/configs/vehicle-regions.yaml").regions)
    want = {"path_animal", "side_animal", "path_vehicle", "empty"}
    picks, seen = [], set()
    for s in segs:
        if s.kind in want and s.kind not in seen:
            seen.add(s.kind)
            picks.append(s.start)
    frames = []
    gen = frames_of(segs, images, seed)
    for i, img in enumerate(gen):
        if i in picks:
            out = img.copy()
            draw_regions(out, rects, [])
            cv2.rectangle(out, (0, 0), (639, 359), (255, 255, 255), 1)
            frames.append(out)
        if len(frames) == len(picks):
            break
    grid = np.concatenate([np.concatenate(frames[:2], 1), np.concatenate(frames[2:4], 1)], 0) if len(frames) >= 4 \
        else np.concatenate(frames, 1)
    grid = cv2.resize(grid, (grid.shape[1] // 2, grid.shape[0] // 2), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    path.write_bytes(buf.tobytes())


# ------------------------------------------------------------------------------------------------ batch ratio
def batch_ratio(args: argparse.Namespace) -> None:
    """Per-image cost at batch N against batch 1 through the project's runner (``backends.load`` + ``Runner.infer``),
    the batch sizes interleaved round by round (the order reversed every other round) so a load change on the shared
    machine hits all of them alike. Two clocks per turn: wall time per call (perf_counter; what a dedicated core
    would show only on a quiet machine) and the process's CPU time (time.process_time: every thread of this process,
    ONNX Runtime's pool included; nothing else runs in it). On a CPU shared with other work, wall time stretches a
    long call (a batch) more than a short one (it spans more scheduler slices), so CPU time per image is the fairer
    comparison there; both are recorded."""
    from edge_runtime import backends
    from edge_runtime.bench.probe import evidence

    runner = backends.load(args.model, threads=args.threads)
    rng = np.random.default_rng(0)
    bare = None
    if args.vs_bare:  # the same model, input and session options, called bare: the runner cannot beat it
        from edge_runtime.backends.onnxrt import session

        sess = session(args.model, args.threads)
        name_in, name_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
        bare = lambda x: sess.run([name_out], {name_in: x})  # noqa: E731
    out: Dict[str, Any] = {"command": " ".join(["python"] + sys.argv), "model": str(args.model), "threads": args.threads,
                           "batches": args.batches, "rounds": args.rounds, "seconds_per_turn": args.seconds,
                           "evidence": evidence()}
    kinds = ["runner"] + (["bare"] if bare is not None else [])
    wall: Dict[str, Dict[int, List[float]]] = {k: {b: [] for b in args.batches} for k in kinds}
    cpu: Dict[str, Dict[int, List[float]]] = {k: {b: [] for b in args.batches} for k in kinds}
    with runner:
        out["runner"] = runner.name
        xs = {b: rng.standard_normal((b, 3, 32, 32)).astype(np.float32) for b in args.batches}
        call = {"runner": runner.infer, "bare": bare}
        for b in args.batches:  # warm-up
            for k in kinds:
                for _ in range(5):
                    call[k](xs[b])
        for r in range(args.rounds):
            for b in (args.batches if r % 2 == 0 else list(reversed(args.batches))):
                for k in (kinds if r % 2 == 0 else list(reversed(kinds))):
                    fn, x, times = call[k], xs[b], []
                    c0, t_end = time.process_time(), time.perf_counter() + args.seconds
                    while True:
                        t = time.perf_counter()
                        fn(x)
                        times.append(time.perf_counter() - t)
                        if t + times[-1] >= t_end and len(times) >= 5:
                            break
                    cpu[k][b].append((time.process_time() - c0) * 1e3 / (len(times) * b))
                    wall[k][b].append(float(np.median(times)) * 1e3 / b)
    out["evidence"]["loadavg_end"] = evidence()["loadavg"]
    b0 = args.batches[0]
    for k in kinds:
        key = "per_batch" if k == "runner" else "bare_per_batch"
        out[key] = {}
        for b in args.batches:
            out[key][str(b)] = {
                "wall_median_ms_per_image": float(np.median(wall[k][b])),
                "cpu_median_ms_per_image": float(np.median(cpu[k][b])),
                "wall_vs_batch1": float(np.median(wall[k][b])) / float(np.median(wall[k][b0])),
                "cpu_vs_batch1": float(np.median(cpu[k][b])) / float(np.median(cpu[k][b0])),
                "wall_round_ms_per_image": wall[k][b], "cpu_round_ms_per_image": cpu[k][b]}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "batch-ratio.json", out)
    for k in kinds:
        for b, r in out["per_batch" if k == "runner" else "bare_per_batch"].items():
            print("%-6s batch %s: wall %.3f ms/image (%.2fx batch 1), CPU %.3f ms/image (%.2fx batch 1)" % (
                k, b, r["wall_median_ms_per_image"], r["wall_vs_batch1"], r["cpu_median_ms_per_image"],
                r["cpu_vs_batch1"]))


def ort_profile(args: argparse.Namespace) -> None:
    """Where ONNX Runtime spends a call of the model: its own profiler (``SessionOptions.enable_profiling``), kernel
    time summed per operator type, per image, at each batch size. The profiler adds a fixed cost per node, so the
    shares are the point here, not the absolute times."""
    from edge_runtime.backends.onnxrt import session
    from edge_runtime.bench.probe import evidence

    out: Dict[str, Any] = {"command": " ".join(["python"] + sys.argv), "model": str(args.model),
                           "threads": args.threads, "calls": args.calls, "evidence": evidence(), "per_batch": {}}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for b in args.batches:
            sess = session(args.model, args.threads, profile_prefix=str(Path(tmp) / ("b%d" % b)))
            feed = {sess.get_inputs()[0].name: rng.standard_normal((b, 3, 32, 32)).astype(np.float32)}
            for _ in range(args.calls):
                sess.run(None, feed)
            events = json.loads(Path(sess.end_profiling()).read_text())
            per_op: Dict[str, float] = {}
            for e in events:
                if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
                    op = e["args"]["op_name"]
                    per_op[op] = per_op.get(op, 0.0) + e["dur"] / 1e3  # us -> ms
            total = sum(per_op.values())
            out["per_batch"][str(b)] = {
                "kernel_ms_per_image": total / (args.calls * b),
                "ops": {k: {"ms_per_image": v / (args.calls * b), "share": v / total}
                        for k, v in sorted(per_op.items(), key=lambda kv: -kv[1])}}
    out["evidence"]["loadavg_end"] = evidence()["loadavg"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "ort-profile.json", out)
    for b, r in out["per_batch"].items():
        print("batch %s: %.3f ms kernel time per image; %s" % (b, r["kernel_ms_per_image"], ", ".join(
            "%s %.0f %%" % (k, 100 * v["share"]) for k, v in list(r["ops"].items())[:4])))


def _profile_lines(path: Path) -> List[str]:
    j = json.loads(path.read_text())
    batches = list(j["per_batch"])
    ops = list(j["per_batch"][batches[0]]["ops"])
    lines = ["`%s` (%d calls per batch size, %s thread(s); ONNX Runtime's profiler: kernel time per operator type, "
             "per image; the profiler's own cost per node inflates small batches)" % (
                 j["command"], j["calls"], j["threads"]), "",
             "| operator | " + " | ".join("batch %s: ms per image (share)" % b for b in batches) + " |",
             "|---|" + "---|" * len(batches)]
    for op in ops:
        cells = []
        for b in batches:
            o = j["per_batch"][b]["ops"].get(op)
            cells.append("-" if o is None else "%.3f (%.0f %%)" % (o["ms_per_image"], 100 * o["share"]))
        lines.append("| %s | %s |" % (op, " | ".join(cells)))
    lines.append("| all kernels | %s |" % " | ".join("%.3f" % j["per_batch"][b]["kernel_ms_per_image"] for b in batches))
    return lines


def _ratio_lines(path: Path) -> List[str]:
    j = json.loads(path.read_text())
    lines = ["`%s` (%s, %s thread(s); %d interleaved rounds of %g s per batch size; load average %s at the start, "
             "%s at the end)" % (j["command"], j["runner"], j["threads"], j["rounds"], j["seconds_per_turn"],
                                 " ".join("%.1f" % x for x in j["evidence"]["loadavg"] or []),
                                 " ".join("%.1f" % x for x in j["evidence"].get("loadavg_end") or [])), "",
             "| batch | wall ms per image (median of rounds) | vs batch 1 | process CPU ms per image | vs batch 1 |",
             "|---|---|---|---|---|"]
    for what, key in (("", "per_batch"), (" (bare InferenceSession.run)", "bare_per_batch")):
        for b, r in (j.get(key) or {}).items():
            lines.append("| %s%s | %.3f | %.2fx | %.3f | %.2fx |" % (
                b, what, r["wall_median_ms_per_image"], r["wall_vs_batch1"], r["cpu_median_ms_per_image"],
                r["cpu_vs_batch1"]))
    return lines


# ------------------------------------------------------------------------------------------------ report
RESULTS = ROOT / "benchmarks" / "regions-results"


def _engine_table(path: Path) -> List[str]:
    j = json.loads(path.read_text())
    pb = j["details"]["per_batch"]
    b1 = pb["1"]
    lines = ["`%s` (%s; load average %s at the start, %s at the end)" % (
        j["command"], j["evidence"]["cpu"] + ", %s cores" % j["evidence"]["cores"],
        " ".join("%.1f" % x for x in j["evidence"]["loadavg"] or []),
        " ".join("%.1f" % x for x in j["evidence"].get("loadavg_end") or [])), "",
        "| batch | calls | median ms per call | median ms per image | mean ms per image | p99 ms per call | images/s "
        "| per image vs batch 1 (median) | (mean) |", "|---|---|---|---|---|---|---|---|---|"]
    for b, st in pb.items():
        lines.append("| %s | %d | %.3f | %.3f | %.3f | %.3f | %.0f | %.2fx | %.2fx |" % (
            b, st["n"], st["p50_ms"], st["p50_ms"] / st["batch"], st["ms_per_image"], st["p99_ms"], st["throughput_ips"],
            (st["p50_ms"] / st["batch"]) / b1["p50_ms"], st["ms_per_image"] / b1["ms_per_image"]))
    return lines


def _e2e_lines(path: Path) -> List[str]:
    j = json.loads(path.read_text())
    d, lat = j["details"], j["details"]["decision_latency_ms"]
    rr = d["runtime_report"]
    over = (d.get("frames_over_ms") or {}).get("10", 0 if lat["max_ms"] <= 10 else None)
    return [
        "`%s`" % j["command"], "",
        "| measured | cameras x regions | frames | steps | mean batch | capture->decision p50 / p90 / p99 / max (ms) | "
        "deadline misses (deadline_ms %g) | frames over 10 ms | stale / dropped | CPU per step (process) | load "
        "average start / end |" % d["deadline_ms"],
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| %.0f s | %s | %d | %d | %.2f | %.2f / %.2f / %.2f / %.2f | %d | %s | %d / %d | %.2f ms | %s / %s |" % (
            j["settings"]["duration_s"], " + ".join("%s x %d" % (k, len(v)) for k, v in d["regions"].items()),
            d["frames"], d["steps"], d["mean_batch"], lat["p50_ms"], lat["p90_ms"], lat["p99_ms"], lat["max_ms"],
            d["deadline_misses"], "-" if over is None else over, d["stale_frames"], d["dropped_frames"],
            d["cpu_ms_per_step"], " ".join("%.1f" % x for x in j["evidence"]["loadavg"] or []),
            " ".join("%.1f" % x for x in j["evidence"].get("loadavg_end") or [])),
        "", "Final decision: %s; decisions by reason: %s." % (
            d["final"], ", ".join("%s %d" % kv for kv in sorted(rr["decisions"].items())))]


def report(args: argparse.Namespace) -> None:
    """benchmarks/regions.md from the result files (every figure there comes from them)."""
    parts = [
        "# Regions of interest and several cameras: measured",
        "",
        "Generated by `python benchmarks/regions.py report` from the JSON files in "
        "[regions-results/](regions-results/); each section names the command that wrote its file. All on the "
        "2-core CPU of this machine (ONNX Runtime CPU, the bundled MobileNetV2 x0.5 INT8 CPU build); there is no GPU "
        "and no TensorRT here, so no GPU batch figure is given (the issue asks for PyTorch CUDA or TensorRT batch "
        "1..16 where a GPU is at hand). Runs whose name ends in `-quiet` ran with nothing else on the machine (the "
        "goal figures); the others shared it with a model training and other sessions' tests: the load averages "
        "are in each table, and their tails (p99, max) are inflated by it.",
        "",
        "## 1. Per-image cost against batch size, through the project's runner",
        "",
        "Goal: the bundled INT8 CPU build at batch 8 costs <= 0.6x batch 1 per image (`bench engine --batch 1,8 "
        "--threads 2`). The bundled build has a fixed batch of 1; "
        "`engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.dynbatch.onnx` is the same build with a symbolic batch "
        "axis (identical outputs on the test images 0-999, see its manifest's `batch_axis.check`).",
        ""]
    for name in sorted(RESULTS.glob("engine-*/bench-engine.json")):
        parts += ["### %s" % name.parent.name, ""] + _engine_table(name) + [""]
    for name in sorted(RESULTS.glob("ratio-*/batch-ratio.json")):
        parts += ["### %s (interleaved)" % name.parent.name, ""] + _ratio_lines(name) + [""]
    for name in sorted(RESULTS.glob("*/ort-profile.json")):
        parts += ["### %s (where ONNX Runtime spends the time)" % name.parent.name, ""] + _profile_lines(name) + [""]
    parts += ["## 2. Two cameras x four regions at 30 FPS each", "",
              "Goal: capture->decision p99 <= 10 ms and no deadline misses (the issue: over 10 minutes), CPU time "
              "per step reported. `synthetic://` cameras at 30 FPS, 320x180, deploy/configs/two-cameras.yaml (4 "
              "regions per camera: batch 8 when both cameras have a frame).", ""]
    for name in sorted(RESULTS.glob("e2e-*/bench-e2e.json")):
        parts += ["### %s" % name.parent.name, ""] + _e2e_lines(name) + [""]
    parts += ["## 3. Shown to matter: whole frame against regions", "",
              "Wide frames (640x360, road-grey with sensor noise) with one CIFAR-10 object (the exact test images "
              "0-999) pasted for 1-2.5 s at a random place: in the path region (animal: expected STOP; automobile/"
              "truck: SLOW), in the left or right region (animal: SLOW) or none (empty road: SLOW, the configs' "
              "default). Objects are 96-144 pixels wide (the 32x32 image scaled 3x-4.5x). The same frames go through "
              "the runtime with `deploy/configs/vehicle.yaml` (whole frame) and `deploy/configs/vehicle-regions.yaml` "
              "(path + left/right, same rules and debounce), every frame decided (a lossless source), and are scored "
              "with `edge_runtime.score` (a STOP segment is caught when any of its frames is decided STOP; shares "
              "exclude each segment's first 0.5 s).", ""]
    for name in sorted(RESULTS.glob("scenario-*/scenario.json")):
        parts += ["### %s" % name.parent.name, "", (name.parent / "scenario.md").read_text().strip(), ""]
    parts += [args.notes.read_text().strip() if args.notes and args.notes.is_file() else "", ""]
    write_text_atomic(ROOT / "benchmarks" / "regions.md", "\n".join(parts))
    print("wrote benchmarks/regions.md")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("dynbatch", help="the dynamic-batch copy of the bundled INT8 CPU build")
    s = sub.add_parser("scenario", help="whole frame vs regions on wide frames with pasted CIFAR objects")
    s.add_argument("--seconds", type=float, default=120.0)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--model", type=Path, default=INT8)
    s.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "regions-results")
    s.add_argument("--png", action="store_true", help="also write a PNG with sample frames and the regions")
    s.add_argument("--background", choices=["grey", "texture", "mixed"], default="grey")
    s.add_argument("--min-size", type=int, default=96, help="object side in pixels, smallest (default 96)")
    s.add_argument("--max-size", type=int, default=144, help="object side in pixels, largest (default 144)")
    s.add_argument("--uncertain-below", type=float, default=None,
                   help="set policy.uncertain_below (the uncertainty gate) in both configs; 0 disables it (default: "
                        "as each config says)")
    b = sub.add_parser("batch-ratio", help="per-image cost at batch N vs 1 through the runner, interleaved rounds")
    b.add_argument("--model", type=Path, default=DYN)
    b.add_argument("--batches", type=lambda t: [int(x) for x in t.split(",")], default=[1, 8])
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--rounds", type=int, default=10)
    b.add_argument("--seconds", type=float, default=1.0)
    b.add_argument("--vs-bare", action="store_true",
                   help="also time a bare InferenceSession.run (same model, input, session options) in every round")
    b.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "regions-results" / "ratio-t2")
    o = sub.add_parser("ort-profile", help="ONNX Runtime's profiler: kernel time per operator type, per batch size")
    o.add_argument("--model", type=Path, default=DYN)
    o.add_argument("--batches", type=lambda t: [int(x) for x in t.split(",")], default=[1, 8])
    o.add_argument("--threads", type=int, default=2)
    o.add_argument("--calls", type=int, default=300)
    o.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "regions-results" / "ort-profile")
    r = sub.add_parser("report", help="benchmarks/regions.md from the result files")
    r.add_argument("--notes", type=Path, default=ROOT / "benchmarks" / "regions-results" / "notes.md",
                   help="hand-written findings appended at the end (each citing the files above)")
    args = p.parse_args()
    {"dynbatch": dynbatch, "scenario": scenario, "report": report, "batch-ratio": batch_ratio,
     "ort-profile": ort_profile}[args.cmd](args)


if __name__ == "__main__":
    main()
