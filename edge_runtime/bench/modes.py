"""The three benchmark modes: :func:`bench_engine` (one artifact, like trtexec), :func:`bench_e2e` (the runtime loop on a
real source) and :func:`bench_compare` (artifacts side by side), plus :func:`bench_config` (the runtime config a
benchmark run uses)."""
from __future__ import annotations

import dataclasses
import gc
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import EdgeRuntimeError
from ..fsio import PathLike
from .artifacts import Progress, check_batch, describe_format, open_runner, random_input
from .probe import Resources, evidence
from .reports import NA, make_report
from .statistics import Timing, interleaved, latency_stats, time_calls

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "engines" / "bundled"
#: ONNX first: rows share one process, and importing torch for the .pt adds ~600 MB of RSS to every later row
DEFAULT_COMPARE = [BUNDLED / "mobilenetv2_cifar_x0_5.onnx", BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.onnx",
                   BUNDLED / "mobilenetv2_cifar_x0_5.int8-tensorrt.onnx", BUNDLED / "mobilenetv2_cifar_x0_5.fp16.onnx",
                   ROOT / "engines" / "checkpoints" / "mobilenetv2_cifar_x0_5.pt"]
DEFAULT_CONFIG = ROOT / "deploy" / "configs" / "vehicle.yaml"


# ------------------------------------------------------------------------------------------------ engine mode
def _bare_ort_pair(runner: Any, x: np.ndarray) -> Callable[[], Any]:
    """A bare InferenceSession.run on the same model, input and session options as the runner."""
    from ..backends.onnxrt import session

    sess = session(runner.model, runner.threads)
    name_in, name_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    feed = {name_in: x}
    return lambda: sess.run([name_out], feed)


def runner_overhead(runner: Any, x: np.ndarray, timing: Timing, blocks: int = 10) -> Dict[str, Any]:
    """The runner against a bare ``InferenceSession.run``, interleaved in ``blocks`` (so load changes hit both).
    Goal: runner median within 5 % or 0.05 ms of bare (the larger)."""
    if runner.name != "onnxruntime":
        raise EdgeRuntimeError("--vs-bare compares the ONNX Runtime runner with a bare InferenceSession; %s is a %s "
                               "artifact: pass an .onnx file" % (getattr(runner, "path", getattr(runner, "model", "")),
                                                                   runner.name))
    bare = _bare_ort_pair(runner, x)
    ours = lambda: runner.infer(x)  # noqa: E731
    per = Timing(warmup_s=timing.warmup_s / blocks, duration_s=timing.duration_s / blocks,
                 iterations=None if timing.iterations is None else max(1, timing.iterations // blocks),
                 min_iterations=max(1, timing.min_iterations // blocks))
    both = interleaved([("bare", bare), ("runner", ours)], blocks, per)
    sb, sr = latency_stats(both["bare"]["samples_ms"], x.shape[0]), latency_stats(both["runner"]["samples_ms"], x.shape[0])
    d_med = sr["median_ms"] - sb["median_ms"]
    allowed = max(0.05, 0.05 * sb["median_ms"])
    return {"bare": sb, "runner": sr, "overhead_median_ms": d_med, "overhead_mean_ms": sr["mean_ms"] - sb["mean_ms"],
            "overhead_median_pct": 100.0 * d_med / sb["median_ms"], "allowed_ms": allowed, "goal_met": d_med <= allowed,
            "goal": "runner median within 5 % or 0.05 ms (the larger) of bare InferenceSession.run",
            "method": "%d interleaved blocks, bare and runner alternating first; same session options (threads %s)" % (
                blocks, runner.threads)}


def trt_split(runner: Any, x: np.ndarray, iters: int, cuda_graph: bool) -> Dict[str, Any]:
    """Host-to-device, compute and device-to-host ms per call from CUDA events (page-locked host buffers), compute
    optionally replayed as a CUDA graph: :meth:`edge_runtime.backends.tensorrt.TensorRTRunner.time_split`."""
    return runner.time_split(x, iters, cuda_graph)  # type: ignore[no-any-return]


def bench_engine(artifact: PathLike, batches: Sequence[int] = (1,), timing: Timing = Timing(), threads: Optional[int] = 1,
                 vs_bare: bool = False, cuda_graph: bool = False, split: bool = False, progress: bool = True,
                 command: str = "") -> Dict[str, Any]:
    """trtexec-like latency of one artifact at each batch size. ``split``/``cuda_graph``: TensorRT engines only."""
    p = Path(artifact)
    ev = evidence()
    res_mon = Resources()
    runner, man = open_runner(p, threads)
    rows: List[Dict[str, Any]] = []
    details: Dict[str, Any] = {"per_batch": {}}
    try:
        if (split or cuda_graph) and runner.name != "tensorrt":
            raise EdgeRuntimeError("--split and --cuda-graph time TensorRT's copies and CUDA graphs; %s runs on %s: "
                                   "pass a TensorRT .engine (TensorRT is %s here)" % (p, runner.name, ev["tensorrt"]))
        for b in batches:
            check_batch(runner, b, p)
        res_mon.mark()
        bar = Progress(len(batches) + (1 if vs_bare else 0), "bench engine", progress)
        fmt = describe_format(p, runner, man)
        for b in batches:
            x = random_input(runner, b)
            samples = time_calls(lambda: runner.infer(x), timing)
            st = latency_stats(samples, b)
            res_mon.mark()
            details["per_batch"][str(b)] = st
            row = _row(fmt + (" b%d" % b if len(batches) > 1 else ""), "ok", p, man, st, runner.name)
            details.setdefault("samples_ms", {})[row["format"]] = _keep(samples)
            row["batch"] = b
            rows.append(row)
            if runner.name == "tensorrt" and split:  # pragma: no cover - TensorRT only
                details.setdefault("trt_split", {})[str(b)] = trt_split(runner, x, max(50, st["n"] // 4), cuda_graph)
            bar.step("batch %d: %.3f ms" % (b, st["mean_ms"]))
        if vs_bare:
            x = random_input(runner, batches[0])
            ov = runner_overhead(runner, x, timing)
            details["vs_bare"] = ov
            for label, st in (("runner, interleaved with bare", ov["runner"]), ("bare InferenceSession.run", ov["bare"])):
                rows.append(dict(_row("%s (%s)" % (fmt, label) if label.startswith("runner") else label, "ok", p, man,
                                      st, runner.name), batch=batches[0]))
            bar.step("vs bare: %+.4f ms" % ov["overhead_median_ms"])
        bar.close()
        gpu = runner.name == "tensorrt"
    finally:
        runner.deactivate()
    resources = res_mon.report(rows[0]["ms_per_image"], gpu_used=gpu)
    for r in rows:
        r["peak_rss_mb"] = resources["peak_rss_mb"]
    if runner.name != "tensorrt":
        details["tensorrt"] = "%s (TensorRT %s): no H2D/compute/D2H split or CUDA-graph figure" % (NA, ev["tensorrt"])
    return make_report("engine", command, ev, resources, rows, details, {
        "artifact": str(p), "backend": runner.name, "batches": list(batches), "threads": threads,
        "timing": dataclasses.asdict(timing), "input": "random normal float32, seed 0",
        "timed": "wall clock of Runner.infer per call (host input -> host output), perf_counter"})


# --------------------------------------------------------------------------------------------------- e2e mode
def bench_config(config: Optional[PathLike], jsonl_path: Optional[PathLike], rate: Optional[float],
                 camera: bool) -> Any:
    """The runtime config for a benchmark run: console sink off, the JSONL log moved to ``jsonl_path`` (dropped
    when None); a file or synthetic source plays at its own size and at ``rate`` (0/None: as fast as taken)."""
    from ..config import load_config

    cfg = load_config(config or DEFAULT_CONFIG)
    sinks = []
    for s in cfg.sinks:
        if s.type == "console":
            continue
        if s.type == "jsonl":
            if jsonl_path is None:
                continue
            s = dataclasses.replace(s, options=dataclasses.replace(s.options, path=str(jsonl_path)))
        sinks.append(s)
    src = cfg.source if camera else dataclasses.replace(cfg.source, width=None, height=None)
    src = dataclasses.replace(src, rate=rate if rate else None, loop=False)
    return dataclasses.replace(cfg, sinks=tuple(sinks), source=src)


def _source_fps(source: str) -> Optional[float]:
    """A video file's own frame rate (OpenCV), or None."""
    p = Path(source[len("file://"):] if source.startswith("file://") else source)
    if not p.is_file() or p.suffix.lower() in (".npy", ".jpg", ".jpeg", ".png", ".bmp"):
        return None
    try:
        import cv2
    except ImportError:
        return None
    cap = cv2.VideoCapture(str(p))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    return fps or None


def ground_truth(source: str) -> Optional[Tuple[List[Optional[str]], str]]:
    """Per-frame class labels of a video that has a scenario JSON beside it (``clip.mp4`` + ``clip.json``, as
    ``deploy/demo/cifar10-demo.mp4``): (label or None per frame, the JSON's path); None for any other source."""
    p = Path(source[len("file://"):] if source.startswith("file://") else source)
    side = p.with_suffix(".json")
    if not p.is_file() or not side.is_file():
        return None
    try:
        from ..scenario import load

        sc = load(side)
        if sc.media.resolve() != p.resolve():
            return None
    except (EdgeRuntimeError, OSError, ValueError, KeyError):
        return None
    labels: List[Optional[str]] = [None] * sc.frames
    for seg in sc.segments:
        if seg.kind == "object" and seg.cls:
            labels[seg.start:seg.end] = [seg.cls] * (seg.end - seg.start)
    return labels, str(side)


def bench_e2e(source: Union[str, Sequence[str]], model: PathLike, config: Optional[PathLike] = None, duration_s: Optional[float] = 10.0,
              max_frames: Optional[int] = None, rate: Optional[float] = None, threads: Optional[int] = 1,
              out_dir: Optional[PathLike] = None, progress: bool = True, command: str = "") -> Dict[str, Any]:
    """The loop as ``edge-runtime run`` runs it, on ``source``: decision latency (p90 headline), stages, FPS.
    ``rate``: pace a file at this FPS (None: the file's own FPS; 0: as fast as the loop takes frames).
    ``source``: several (``name=uri``) for several cameras, batched into one inference per step (the config's
    ``sources:`` and ``regions:`` apply; :mod:`edge_runtime.regions`)."""
    from ..runtime import Runtime
    from ..cameras import split_named

    sources = [source] if isinstance(source, str) else list(source)
    source = split_named(sources[0])[1]

    if duration_s is not None and not duration_s > 0:
        raise EdgeRuntimeError("--duration must be > 0 seconds; got %g" % duration_s)
    if max_frames is not None and max_frames < 1:
        raise EdgeRuntimeError("--max-frames must be >= 1; got %d" % max_frames)
    camera = source.startswith(("csi://", "v4l2://", "/dev/video", "rtsp://", "rtsps://")) or source.isdigit()
    synthetic = source.startswith("synthetic://")
    own_fps = None if (camera or synthetic) else _source_fps(source)
    if rate is None:
        rate = own_fps
    elif rate <= 0:
        rate = None
    if synthetic:
        from urllib.parse import parse_qs, urlsplit

        q = parse_qs(urlsplit(source).query)
        src_fps: Optional[float] = float(q["rate"][-1]) if "rate" in q else None
    else:
        src_fps = rate
    ev = evidence()
    res_mon = Resources()
    tmp = None
    if out_dir is None:
        tmp = tempfile.mkdtemp(prefix="edge-runtime-bench-")
    jsonl = Path(str(out_dir if out_dir is not None else tmp)) / "e2e-events.jsonl"
    cfg = bench_config(config, jsonl, rate, camera)
    overrides = {"run.duration_s": duration_s, "run.max_frames": max_frames}
    rt = Runtime.from_config(cfg, model=str(model), source=sources, overrides=overrides, threads=threads)
    total = max(1, int(duration_s) if duration_s else (max_frames or 1))
    state: Dict[str, Any] = {"bar": None, "t0": 0.0}

    truth = ground_truth(source) if len(sources) == 1 else None
    said: Dict[int, str] = {}

    def tick(frame: Any, d: Any) -> None:  # progress: one step per second (or frame) of the run
        if truth is not None and d.frame_index is not None and d.class_name is not None:
            said[int(d.frame_index)] = str(d.class_name)
        bar = state["bar"]
        done = (time.monotonic() - state["t0"]) if duration_s else rt.metrics.frames
        while bar is not None and bar.i < min(int(done), bar.total):
            bar.step("%d frames" % rt.metrics.frames)

    rt.observers.append(tick)
    try:
        try:
            rt.__enter__()
        except BaseException:
            rt.runner.deactivate()
            raise
        res_mon.mark()
        state["bar"] = Progress(total, "bench e2e (%s)" % ("s" if duration_s else "frames"), progress)
        state["t0"] = time.monotonic()
        try:
            final = rt.run()
        finally:
            rt.close()
            state["bar"].close()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    rep = rt.report()
    if rep["frames"] == 0:
        raise EdgeRuntimeError("%s delivered no frame (final: %s); check the source" % (source, final.summary()))
    lat = rt.metrics.latency.values() * 1e3
    st = latency_stats(lat, 1)
    pre_inf = rep["stages_ms"]["preprocess"]["p90_ms"] + rep["stages_ms"]["infer"]["p90_ms"]
    resources = res_mon.report(st["mean_ms"], gpu_used=rt.runner.name == "tensorrt")
    fmt = "e2e %s %s" % (describe_format(Path(model), rt.runner, rt.manifest), "(%s)" % rt.sources.describe())
    row = _row(fmt, "ok" if final.reason.value != "source_failed" else "source failed", Path(model), None, st)
    row["accuracy_by"] = NOT_ON_SOURCE  # a clip's frames carry no class labels: never quote the test-set figure
    row["accuracy_source"] = ("not measured on this source: bench e2e times the loop; the model's top-1 on the test "
                              "set is in its manifest and in bench compare / edge-runtime eval")
    if truth is not None:  # the source has ground truth (a scenario JSON beside it): top-1 of the decided frames
        labels, sidecar = truth
        scored = [(i, c) for i, c in said.items() if 0 <= i < len(labels) and labels[i] is not None]
        if scored:
            right = sum(c == labels[i] for i, c in scored)
            row["accuracy"] = 100.0 * right / len(scored)
            row["accuracy_by"] = "%s (here, %d frames of this source)" % (
                _BACKENDS.get(rt.runner.name, rt.runner.name), len(scored))
            row["accuracy_source"] = ("measured on this source: top-1 class of each decided frame against %s (%d of "
                                      "%d right; frames of no CIFAR object not counted)" % (sidecar, right, len(scored)))
    row["fps"] = rep["fps"]  # achieved frames per second, not 1000/latency: frames overlap the next capture
    row["peak_rss_mb"] = resources["peak_rss_mb"]
    details = {
        "decision_latency_ms": st, "headline": "capture->decision p90 %.3f ms" % st["p90_ms"],
        "stages_ms": rep["stages_ms"], "achieved_fps": rep["fps"], "source_fps": src_fps,
        "source_fps_note": "the source's pace: a camera's or synthetic:// rate, a file's own FPS unless --rate "
                           "(None: handed over as fast as the loop takes frames)",
        "frames": rep["frames"], "stale_frames": rep["stale_frames"], "dropped_frames": rep["dropped_frames"],
        "deadline_misses": rep["deadline_misses"], "deadline_ms": rep["deadline_ms"], "final": final.summary(),
        "frames_over_ms": {str(t): int((lat > t).sum()) for t in (5, 10, 20, 50)},
        "steps": rep["steps"], "mean_batch": rep["mean_batch"], "model_batch": rep["model_batch"],
        "cpu_ms_per_step": rep["cpu_ms_per_step"], "cameras": rep.get("cameras"),
        "regions": {str(k): [r.name for r in v] for k, v in rt.region_boxes().items()},
        "samples_ms": {fmt: _keep(lat)},
        "preprocess_plus_infer_p90_ms": pre_inf,
        "e2e_over_preprocess_infer": st["p90_ms"] / pre_inf if pre_inf > 0 else None,
        "e2e_goal": "decision latency p90 <= 1.25 x (preprocess p90 + infer p90) of the same run",
        "runtime_report": rep}
    return make_report("e2e", command, ev, resources, [row], details, {
        "source": sources if len(sources) > 1 else source, "model": str(model), "config": str(config or DEFAULT_CONFIG), "rate": rate,
        "duration_s": duration_s, "max_frames": max_frames, "threads": threads,
        "timed": "capture stamp (grabber thread, time.monotonic) -> policy decision, per frame"})


# ----------------------------------------------------------------------------------------------- compare mode
def _params_macs(runner: Any, man: Optional[Dict[str, Any]]) -> Tuple[Optional[int], Optional[int]]:
    model = (man or {}).get("model") or {}
    params, macs = model.get("params"), model.get("macs")
    if (params is None or macs is None) and runner.name in ("torch", "pytorch"):
        try:
            from train.models.profile import count_macs, count_params

            params = params if params is not None else count_params(runner.model)
            macs = macs if macs is not None else count_macs(runner.model)
        except Exception:  # noqa: BLE001 - profiling is a nicety; the row still has its latency
            pass
    if params is None and runner.name == "onnxruntime" and isinstance(runner.model, (str, Path)):
        try:  # the ONNX file's initializers (quantized weights count once, scales and zero points too)
            import onnx

            g = onnx.load(str(runner.model)).graph
            params = sum(int(np.prod(t.dims)) for t in g.initializer)
        except Exception:  # noqa: BLE001 - as above
            pass
    return (int(params) if params is not None else None), (int(macs) if macs is not None else None)


#: the accuracy cell of a row whose source has no ground truth (bench e2e)
NOT_ON_SOURCE = "not measured on this source"
_BACKENDS = {"onnxruntime": "ONNX Runtime", "torch": "PyTorch", "pytorch": "PyTorch", "tensorrt": "TensorRT"}


def _keep(samples_ms: "Sequence[float] | np.ndarray", cap: int = 20000) -> List[float]:
    """Per-call samples for the report (the PNG's histogram/CDF): rounded to 0.1 us, at most ``cap`` evenly spaced."""
    a = np.asarray(samples_ms, np.float64)
    if a.size > cap:
        a = a[np.linspace(0, a.size - 1, cap).astype(int)]
    return [round(float(v), 4) for v in a]


def measured_by(acc: Dict[str, Any], backend: Optional[str]) -> str:
    """Which backend measured a manifest's accuracy: its ``measured_with`` (e.g. ``onnxruntime CPU``, ``PyTorch, on
    the source checkpoint``), else the backend that wrote a checkpoint's figure (PyTorch, for .pt)."""
    w = str(acc.get("measured_with") or "")
    low = w.lower()
    for key, name in (("onnxruntime", "ONNX Runtime"), ("onnx runtime", "ONNX Runtime"), ("tensorrt", "TensorRT"),
                      ("pytorch", "PyTorch"), ("torch", "PyTorch")):
        if key in low:
            return "%s (manifest)" % name
    if backend in ("torch", "pytorch"):
        return "PyTorch (manifest)"
    return "%s (manifest)" % (w or "unknown backend")


def _row(fmt: str, status: str, path: Path, man: Optional[Dict[str, Any]], st: Optional[Dict[str, Any]],
         backend: Optional[str] = None) -> Dict[str, Any]:
    acc = (man or {}).get("accuracy") or {}
    has = acc.get("top1") is not None
    row: Dict[str, Any] = {
        "format": fmt, "status": status, "artifact": str(path),
        "model": ((man or {}).get("model") or {}).get("name"),
        "size_mb": round(path.stat().st_size / 2**20, 3) if path.is_file() else None,
        "accuracy": acc.get("top1"), "accuracy_by": measured_by(acc, backend) if has else None,
        "accuracy_source": ("manifest: top-1 on %s %s images, measured with %s" % (
            acc.get("n"), acc.get("split", "test"), acc.get("measured_with") or "?")) if has else None,
        "ms_per_image": None, "fps": None, "p99_ms": None, "peak_rss_mb": None}
    if st is not None:
        row.update(ms_per_image=st["ms_per_image"], fps=st["fps"], p99_ms=st["p99_ms"] / st["batch"], mean_ms=st["mean_ms"],
                   p50_ms=st["p50_ms"], p90_ms=st["p90_ms"], batch=st["batch"], n=st["n"])
    return row


def bench_compare(artifacts: Sequence[PathLike] = (), batch: int = 1, timing: Timing = Timing(),
                  threads: Optional[int] = 1, accuracy_limit: Optional[int] = None, data_dir: Optional[PathLike] = None,
                  progress: bool = True, command: str = "") -> Dict[str, Any]:
    """One row per artifact (default: the bundled x0.5 files and their .pt) plus TensorRT rows where it is absent.
    A row that cannot run says why in its status; the others still run. ``accuracy_limit``: measure top-1 on the
    first N test images here instead of quoting the manifest."""
    paths = [Path(a) for a in (artifacts or DEFAULT_COMPARE)]
    for p in paths:
        if not p.is_file():
            raise EdgeRuntimeError("artifact not found: %s; pass .onnx, .pt or .engine files" % p)
    if accuracy_limit is not None and accuracy_limit < 1:
        raise EdgeRuntimeError("--limit must be >= 1; got %d" % accuracy_limit)
    ev = evidence()
    rows: List[Dict[str, Any]] = []
    bar = Progress(len(paths), "bench compare", progress)
    for p in paths:
        gc.collect()
        mon = Resources()
        try:
            runner, man = open_runner(p, threads)
        except EdgeRuntimeError as exc:
            rows.append(dict(_row(p.name, "failed: %s" % exc, p, None, None), error=str(exc)))
            bar.step("%s: failed" % p.name)
            continue
        try:
            check_batch(runner, batch, p)
            mon.mark()
            x = random_input(runner, batch)
            st = latency_stats(time_calls(lambda: runner.infer(x), timing), batch)
            row = _row(describe_format(p, runner, man), "ok", p, man, st, runner.name)
            row["params"], row["macs"] = _params_macs(runner, man)
            row["backend"] = runner.name
            row["precision"] = (man or {}).get("precision")
        except EdgeRuntimeError as exc:
            row = dict(_row(p.name, "failed: %s" % exc, p, man, None), error=str(exc))
        finally:
            runner.deactivate()
        if accuracy_limit is not None and row["status"] == "ok":
            from ..evaluate import evaluate

            acc = evaluate(p, limit=accuracy_limit, data_dir=data_dir, latency_iters=0, threads=threads)
            row["accuracy"] = acc["top1"]
            row["accuracy_by"] = "%s (here, %d images)" % (_BACKENDS.get(row["backend"], row["backend"]), acc["n"])
            row["accuracy_source"] = "measured here by %s: top-1 on the first %d %s test images (every row the same " \
                                     "images)" % (_BACKENDS.get(row["backend"], row["backend"]), acc["n"], acc["dataset"])
        r = mon.report(row.get("ms_per_image"), gpu_used=row.get("backend") == "tensorrt")
        row["peak_rss_mb"], row["rss_growth_mb"] = r["peak_rss_mb"], r["rss_growth_mb"]
        rows.append(row)
        del runner
        bar.step("%s: %s" % (p.name, row["status"][:30]))
    bar.close()
    if ev["tensorrt"].startswith("absent") and not any(p.suffix in (".engine", ".plan") for p in paths):
        for prec in ("FP16", "INT8"):
            rows.append({"format": "TensorRT %s" % prec, "status": "%s (TensorRT absent)" % NA, "artifact": None,
                         "size_mb": None, "accuracy": None, "ms_per_image": None, "fps": None, "p99_ms": None,
                         "peak_rss_mb": None})
    if len({r.get("model") for r in rows if r.get("model")}) > 1:  # several models: name each row's
        for r in rows:
            if r.get("model") and r["status"] == "ok":
                r["format"] = "%s: %s" % (r["model"], r["format"])
    resources = Resources().report(None, gpu_used=any(r.get("backend") == "tensorrt" for r in rows))
    ok = [r for r in rows if r["status"] == "ok"]
    details: Dict[str, Any] = {}
    eager = [r for r in ok if r.get("backend") in ("torch", "pytorch")]
    ort32 = [r for r in ok if r.get("backend") == "onnxruntime" and r.get("precision") == "fp32"]
    if eager and ort32:
        for e in eager:
            for o in ort32:
                if e.get("model") == o.get("model"):
                    details.setdefault("speedup_vs_pytorch_eager", []).append({
                        "model": e["model"], "pytorch_ms": e["ms_per_image"], "onnxruntime_fp32_ms": o["ms_per_image"],
                        "ratio": e["ms_per_image"] / o["ms_per_image"],
                        "pytorch_median_ms": e["p50_ms"] / batch, "onnxruntime_fp32_median_ms": o["p50_ms"] / batch,
                        "ratio_median": e["p50_ms"] / o["p50_ms"], "goal": ">= 5x at batch %d" % batch})
    return make_report("compare", command, ev, resources, rows, details, {
        "artifacts": [str(p) for p in paths], "batch": batch, "threads": threads, "timing": dataclasses.asdict(timing),
        "accuracy_limit": accuracy_limit, "input": "random normal float32, seed 0",
        "timed": "wall clock of Runner.infer per call, one process, rows in order; peak_rss_mb is the process RSS "
                 "(earlier rows' memory included), rss_growth_mb what this row added"})


