"""Benchmarks that state their evidence: engine latency, the end-to-end loop, and backends/models side by side.

Three modes, one report shape (``edge-runtime bench`` is the thin command over them):

- :func:`bench_engine` (like trtexec): random input, warm-up by time, then ``duration_s`` or ``iterations`` of
  timed ``Runner.infer`` calls per batch size; min/mean/median/p90/p95/p99/max and throughput. With
  ``vs_bare`` (ONNX Runtime only) a bare ``InferenceSession.run`` on the same input, interleaved in blocks with
  the runner, gives the runner's overhead (Polygraphy's runner-overhead test). On a TensorRT engine,
  :func:`trt_split` times host-to-device, compute and device-to-host with CUDA events, optionally with the
  compute as a CUDA graph (never run on these machines: no TensorRT here).
- :func:`bench_e2e` (like MLPerf single-stream): a real source through :class:`~edge_runtime.runtime.Runtime`;
  capture->decision latency (p90 is the headline), per-stage times, achieved vs source FPS, stale/dropped frames.
- :func:`bench_compare`: every artifact given (several precisions of one model, or several models), each with
  size, params, MACs, accuracy (its manifest's, or measured with ``accuracy_limit``) and latency.

Every report carries :func:`evidence` (machine, versions, load average, clock state, warnings) and
:func:`resources` (peak resident memory; GPU memory where a GPU is used; power and energy per inference on a
Jetson with jtop). :func:`write_outputs` writes JSON, CSV, markdown and a PNG (accuracy vs latency).

numpy and the stdlib at import; onnxruntime, torch, OpenCV, matplotlib, psutil, tqdm, jtop when used.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import gc
import io
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import manifest as mf
from .errors import EdgeRuntimeError
from .fsio import PathLike, write_bytes_atomic, write_json_atomic, write_text_atomic

FORMAT = "edge-runtime.bench/1"
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "engines" / "bundled"
#: ONNX first: rows share one process, and importing torch for the .pt adds ~600 MB of RSS to every later row
DEFAULT_COMPARE = [BUNDLED / "mobilenetv2_cifar_x0_5.onnx", BUNDLED / "mobilenetv2_cifar_x0_5.int8-cpu.onnx",
                   BUNDLED / "mobilenetv2_cifar_x0_5.int8-tensorrt.onnx", BUNDLED / "mobilenetv2_cifar_x0_5.fp16.onnx",
                   ROOT / "engines" / "checkpoints" / "mobilenetv2_cifar_x0_5.pt"]
DEFAULT_CONFIG = ROOT / "deploy" / "configs" / "vehicle.yaml"
PERCENTILES = (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99))
#: the terminal/CSV/markdown columns (Ultralytics' benchmark columns, plus p99 and peak memory)
COLUMNS = ("format", "status", "size_mb", "accuracy", "ms_per_image", "fps", "p99_ms", "peak_rss_mb")
NA = "not available here"


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long to measure: warm-up seconds, then ``iterations`` calls if given, else ``duration_s`` seconds."""

    warmup_s: float = 1.0
    duration_s: float = 3.0
    iterations: Optional[int] = None
    min_iterations: int = 10

    def __post_init__(self) -> None:
        if not (self.duration_s > 0):
            raise EdgeRuntimeError("--duration must be > 0 seconds; got %g" % self.duration_s)
        if self.warmup_s < 0:
            raise EdgeRuntimeError("--warmup must be >= 0 seconds; got %g" % self.warmup_s)
        if self.iterations is not None and self.iterations < 1:
            raise EdgeRuntimeError("--iterations must be >= 1; got %d" % self.iterations)


QUICK = Timing(warmup_s=0.05, duration_s=0.25, min_iterations=5)


# ------------------------------------------------------------------------------------------------ statistics
def latency_stats(ms: "Sequence[float] | np.ndarray", batch: int = 1) -> Dict[str, Any]:
    """min/mean/median/p90/p95/p99/max of per-call times in ms; ``fps`` = images per second = batch*1000/mean."""
    a = np.asarray(ms, np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    s: Dict[str, Any] = {"n": int(a.size), "batch": int(batch), "min_ms": float(a.min()), "mean_ms": float(a.mean())}
    for name, q in PERCENTILES:
        s["%s_ms" % name] = float(np.percentile(a, q))
    s["median_ms"] = s["p50_ms"]
    s["max_ms"] = float(a.max())
    s["std_ms"] = float(a.std())
    s["ms_per_image"] = s["mean_ms"] / batch
    s["fps"] = batch * 1000.0 / s["mean_ms"]
    s["throughput_ips"] = s["fps"]
    return s


def time_calls(fn: Callable[[], Any], timing: Timing) -> List[float]:
    """Warm up for ``timing.warmup_s``, then per-call wall times in ms (``perf_counter``)."""
    t_end = time.perf_counter() + timing.warmup_s
    fn()
    while time.perf_counter() < t_end:
        fn()
    out: List[float] = []
    if timing.iterations is not None:
        for _ in range(timing.iterations):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
        return out
    t_end = time.perf_counter() + timing.duration_s
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        out.append((t1 - t0) * 1e3)
        if t1 >= t_end and len(out) >= timing.min_iterations:
            return out


# -------------------------------------------------------------------------------------------------- evidence
def _read(path: str) -> Optional[str]:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return None


def _cmd(args: Sequence[str], timeout: float = 5.0) -> Optional[str]:
    if shutil.which(args[0]) is None:
        return None
    try:
        r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.decode(errors="replace").strip() or None


def _version(module: str, dist: Sequence[str] = ()) -> str:
    """The installed version without importing heavy packages (importlib.metadata), or ``absent``."""
    mod = sys.modules.get(module)
    if mod is not None and getattr(mod, "__version__", None):
        return str(mod.__version__)
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return "unknown"
    for d in tuple(dist) or (module,):
        try:
            return metadata.version(d)
        except Exception:  # noqa: BLE001 - PackageNotFoundError and odd metadata alike
            continue
    import importlib.util

    return "installed (version unknown)" if importlib.util.find_spec(module) is not None else "absent"


def _tensorrt_version() -> str:
    """TensorRT's version, or ``absent`` (also when only tensorrt-stubs make ``import tensorrt`` succeed)."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return "absent"
    from .engine.trt import import_tensorrt

    try:
        return str(import_tensorrt().__version__)
    except EdgeRuntimeError:
        return "absent (only tensorrt-stubs installed)"


def _cpu_model() -> str:
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cuda_and_gpu() -> Dict[str, Any]:
    out: Dict[str, Any] = {"gpu": "absent", "cuda": "absent", "driver": "absent"}
    torch = sys.modules.get("torch")
    if torch is not None and getattr(torch.version, "cuda", None):
        out["cuda"] = "%s (torch build)" % torch.version.cuda
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    smi = _cmd(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if smi:
        name, _, drv = smi.splitlines()[0].partition(",")
        out["gpu"], out["driver"] = name.strip(), drv.strip()
    nvcc = _read("/usr/local/cuda/version.json")
    if nvcc and out["cuda"] == "absent":
        try:
            out["cuda"] = json.loads(nvcc)["cuda"]["version"]
        except (ValueError, KeyError):
            pass
    return out


def jetson_state() -> Optional[Dict[str, Any]]:
    """JetPack/L4T, nvpmodel mode, jetson_clocks, power and temperature on a Jetson (None elsewhere).
    Power and temperature come from jtop (pip install jetson-stats) when installed. Untested here: no Jetson."""
    l4t = _read("/etc/nv_tegra_release")
    if l4t is None:
        return None
    st: Dict[str, Any] = {"l4t": l4t.splitlines()[0], "jetpack": None, "nvpmodel": None, "jetson_clocks": None,
                          "power_w": None, "temperature_c": None, "jtop": "absent"}
    jp = _cmd(["dpkg-query", "-W", "-f=${Version}", "nvidia-jetpack"])
    st["jetpack"] = jp or "unknown (nvidia-jetpack not installed as a package)"
    nv = _cmd(["nvpmodel", "-q"])
    st["nvpmodel"] = nv.splitlines()[-1] if nv else None
    try:
        from jtop import jtop  # type: ignore[import-not-found]
    except ImportError:
        return st
    try:
        with jtop() as j:
            st["jtop"] = "installed"
            st["nvpmodel"] = str(j.nvpmodel) if j.nvpmodel is not None else st["nvpmodel"]
            st["jetson_clocks"] = bool(j.jetson_clocks) if j.jetson_clocks is not None else None
            tot = (j.power or {}).get("tot") or {}
            st["power_w"] = (tot.get("power") or 0) / 1000.0 or None
            st["temperature_c"] = {k: v.get("temp") for k, v in (j.temperature or {}).items() if isinstance(v, dict)}
    except Exception as exc:  # noqa: BLE001 - jtop needs its service; say so instead of failing the benchmark
        st["jtop"] = "installed but not usable (%s; is the jtop service running?)" % exc
    return st


def evidence() -> Dict[str, Any]:
    """The machine and software a number was measured on, and warnings about what may skew it."""

    ev: Dict[str, Any] = {
        "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
        "os": "%s %s" % (platform.system(), platform.release()), "python": platform.python_version(),
        "numpy": np.__version__, "opencv": _version("cv2", ("opencv-python-headless", "opencv-python", "opencv-contrib-python")),
        "onnxruntime": _version("onnxruntime", ("onnxruntime", "onnxruntime-gpu")), "torch": _version("torch"),
        "tensorrt": _tensorrt_version(),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }
    ev.update(_cuda_and_gpu())
    ev["jetson"] = jetson_state()
    warnings: List[str] = []
    if ev["cpu_governor"] is None:
        warnings.append("CPU clocks unknown: no cpufreq governor in /sys (a VM or container); numbers may move with "
                        "frequency scaling")
    elif ev["cpu_governor"] != "performance":
        warnings.append("CPU governor is %r, not 'performance': clocks are not fixed (sudo cpupower frequency-set -g "
                        "performance)" % ev["cpu_governor"])
    js = ev["jetson"]
    if js is not None and js.get("jetson_clocks") is not True:
        warnings.append("jetson_clocks is %s: clocks are not fixed (sudo jetson_clocks)" % (
            "off" if js.get("jetson_clocks") is False else "unknown (install jetson-stats for jtop)"))
    la = ev["loadavg"]
    if la and ev["cores"] and la[0] > 0.5 * ev["cores"]:
        warnings.append("load average %.2f on %d cores: other processes compete for the CPU; tails (p99, max) are "
                        "inflated" % (la[0], ev["cores"]))
    ev["warnings"] = warnings
    return ev


# ------------------------------------------------------------------------------------------------- resources
def rss_mb() -> Optional[float]:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        s = _read("/proc/self/statm")
        return int(s.split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20 if s else None


def process_peak_rss_mb() -> float:
    """Peak resident memory of this process since it started (getrusage; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


class Resources:
    """RSS sampled at the points a run marks (after load, warm-up, the timed run), GPU memory where torch uses
    CUDA, and on a Jetson the board's power from jtop at the end of the run."""

    def __init__(self) -> None:
        self.start = rss_mb()
        self.samples: List[float] = [v for v in [self.start] if v is not None]

    def mark(self) -> None:
        v = rss_mb()
        if v is not None:
            self.samples.append(v)

    def report(self, ms_per_image: Optional[float] = None, gpu_used: bool = False) -> Dict[str, Any]:
        self.mark()
        r: Dict[str, Any] = {"peak_rss_mb": round(max(self.samples), 1) if self.samples else None,
                             "rss_growth_mb": round(max(self.samples) - self.samples[0], 1) if self.samples else None,
                             "process_peak_rss_mb": round(process_peak_rss_mb(), 1),
                             "rss_note": "peak_rss_mb: RSS sampled after loading, warm-up and the timed run; "
                                         "process_peak_rss_mb: getrusage peak of the whole process so far"}
        torch = sys.modules.get("torch")
        if gpu_used and torch is not None and torch.cuda.is_available():
            r["gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        else:
            r["gpu_memory_mb"] = None
            r["gpu_memory_note"] = "no GPU used by this run" if not gpu_used else "GPU memory not readable here"
        js = jetson_state()
        if js is None:
            r["power_w"] = r["energy_mj_per_image"] = None
            r["power_note"] = "not available here (not a Jetson; power comes from jtop on a Jetson)"
        elif js.get("power_w") is None:
            r["power_w"] = r["energy_mj_per_image"] = None
            r["power_note"] = "not available: jtop (jetson-stats) is %s" % js.get("jtop")
        else:
            r["power_w"] = js["power_w"]
            r["energy_mj_per_image"] = js["power_w"] * ms_per_image if ms_per_image else None  # W * ms = mJ
            r["power_note"] = "board power from jtop at the end of the run (whole module, not the model alone)"
        return r


# ------------------------------------------------------------------------------------------------- artifacts
def artifact_manifest(path: Path) -> Optional[Dict[str, Any]]:
    """The sidecar manifest (hash-checked) or None when the artifact has none."""
    return mf.for_artifact(path) if mf.sidecar_path(path).is_file() else None


def open_runner(path: PathLike, threads: Optional[int] = 1) -> Tuple[Any, Optional[Dict[str, Any]]]:
    """(active Runner, manifest or None). An artifact its backend cannot load is one line (EdgeRuntimeError)."""
    from .backends import runner_for

    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("artifact not found: %s; pass an .onnx, .pt or .engine file" % p)
    man = artifact_manifest(p) if p.suffix not in (".pt", ".pth") else None
    if p.suffix in (".engine", ".plan"):
        from .engine.trt import TensorRTRunner

        runner: Any = TensorRTRunner(p, manifest=man)
    else:
        runner = runner_for(p, threads=threads)
    try:
        runner.activate()
    except EdgeRuntimeError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load/pickle errors etc.: the file is not a usable artifact
        raise EdgeRuntimeError("%s cannot load %s (%s: %s); pass a file written by edge-runtime train/export/"
                               "build-engine" % (runner.name, p, type(exc).__name__, str(exc).splitlines()[0][:160]
                                                 if str(exc) else "")) from None
    if man is None and getattr(runner, "manifest", None) is not None:
        man = runner.manifest
    return runner, man


def describe_format(path: Path, runner: Any, man: Optional[Dict[str, Any]]) -> str:
    backend = {"onnxruntime": "ONNX Runtime", "pytorch": "PyTorch eager", "tensorrt": "TensorRT"}.get(runner.name, runner.name)
    prec = str((man or {}).get("precision") or "fp32").upper()
    q = (man or {}).get("quantization")
    layout = q.get("target") if isinstance(q, dict) else None
    if layout is None and ".int8-" in path.name:
        layout = path.name.split(".int8-")[1].split(".")[0]
    if layout is not None and str(layout).upper() == prec:
        layout = None
    return "%s %s%s" % (backend, prec, " (%s layout)" % layout if layout else "")


def check_batch(runner: Any, batch: int, path: Path) -> None:
    if batch < 1:
        raise EdgeRuntimeError("--batch must be >= 1; got %d" % batch)
    fb = runner.fixed_batch
    if fb is not None and batch != fb:
        raise EdgeRuntimeError("%s has a fixed batch of %d (input %s); --batch %d is not possible: use --batch %d, or "
                               "re-export with edge-runtime export --dynamic-batch" % (
                                   path, fb, list(runner.input_shape), batch, fb))


def random_input(runner: Any, batch: int, seed: int = 0) -> np.ndarray:
    shape = [batch] + [int(d) for d in runner.input_shape[1:]]
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------------- progress
class Progress:
    """Steps of a long run: tqdm when installed, else one plain line per step on stderr; silent when disabled."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.total, self.desc, self.enabled, self.i = total, desc, enabled, 0
        self.bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
            except ImportError:
                pass

    def step(self, label: str) -> None:
        self.i += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(label[:40])
            self.bar.update(1)
        else:
            sys.stderr.write("%s [%d/%d] %s\n" % (self.desc, self.i, self.total, label))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------------ engine mode
def _bare_ort_pair(runner: Any, x: np.ndarray) -> Callable[[], Any]:
    """A bare InferenceSession.run on the same model, input and session options as the runner."""
    from .backends.onnxrt import session

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
    t_b: List[float] = []
    t_r: List[float] = []
    for i in range(blocks):
        for fn, acc in ((bare, t_b), (ours, t_r)) if i % 2 == 0 else ((ours, t_r), (bare, t_b)):
            acc.extend(time_calls(fn, per))
    sb, sr = latency_stats(t_b, x.shape[0]), latency_stats(t_r, x.shape[0])
    d_med = sr["median_ms"] - sb["median_ms"]
    allowed = max(0.05, 0.05 * sb["median_ms"])
    return {"bare": sb, "runner": sr, "overhead_median_ms": d_med, "overhead_mean_ms": sr["mean_ms"] - sb["mean_ms"],
            "overhead_median_pct": 100.0 * d_med / sb["median_ms"], "allowed_ms": allowed, "goal_met": d_med <= allowed,
            "goal": "runner median within 5 % or 0.05 ms (the larger) of bare InferenceSession.run",
            "method": "%d interleaved blocks, bare and runner alternating first; same session options (threads %s)" % (
                blocks, runner.threads)}


def trt_split(runner: Any, x: np.ndarray, iters: int, cuda_graph: bool) -> Dict[str, Any]:  # pragma: no cover
    """Host-to-device, compute and device-to-host ms per call from CUDA events, compute optionally replayed as a
    CUDA graph. NEVER RUN HERE (no TensorRT/GPU on these machines): needs cuda-python; check it on the device."""
    cu = runner.cu
    rt = getattr(cu, "_rt", None)
    if rt is None:
        raise EdgeRuntimeError("the H2D/compute/D2H split needs cuda-python (pip install cuda-python); pycuda is not "
                               "supported for it")
    runner.infer(x)  # allocates and binds buffers
    name_in, name_out = runner.inputs[0], runner.outputs[0]
    out = np.empty(tuple(int(d) for d in runner.context.get_tensor_shape(name_out)), np.float32)
    stream, h = runner.stream, cu.stream_handle(runner.stream)
    ev = [cu._check(rt.cudaEventCreate(), "cudaEventCreate") for _ in range(4)]
    graph_exec = None
    if cuda_graph:
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        cu._check(rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
        runner.context.execute_async_v3(h)
        graph = cu._check(rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        graph_exec = cu._check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
    parts: Dict[str, List[float]] = {"h2d_ms": [], "compute_ms": [], "d2h_ms": []}
    for _ in range(iters):
        cu._check(rt.cudaEventRecord(ev[0], stream), "cudaEventRecord")
        cu.htod(runner.bufs[name_in], x, stream)
        cu._check(rt.cudaEventRecord(ev[1], stream), "cudaEventRecord")
        if graph_exec is not None:
            cu._check(rt.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")
        else:
            runner.context.execute_async_v3(h)
        cu._check(rt.cudaEventRecord(ev[2], stream), "cudaEventRecord")
        cu.dtoh(out, runner.bufs[name_out], stream)
        cu._check(rt.cudaEventRecord(ev[3], stream), "cudaEventRecord")
        cu.sync(stream)
        for k, (a, b) in zip(parts, ((0, 1), (1, 2), (2, 3))):
            parts[k].append(float(cu._check(rt.cudaEventElapsedTime(ev[a], ev[b]), "cudaEventElapsedTime")))
    res: Dict[str, Any] = {k: latency_stats(v)["median_ms"] for k, v in parts.items()}
    res.update(cuda_graph=cuda_graph, iters=iters, method="CUDA events around each copy and the execution, medians")
    return res


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
            st = latency_stats(time_calls(lambda: runner.infer(x), timing), b)
            res_mon.mark()
            details["per_batch"][str(b)] = st
            row = _row(fmt + (" b%d" % b if len(batches) > 1 else ""), "ok", p, man, st)
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
                                      st), batch=batches[0]))
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
    return _report("engine", command, ev, resources, rows, details, {
        "artifact": str(p), "backend": runner.name, "batches": list(batches), "threads": threads,
        "timing": dataclasses.asdict(timing), "input": "random normal float32, seed 0",
        "timed": "wall clock of Runner.infer per call (host input -> host output), perf_counter"})


# --------------------------------------------------------------------------------------------------- e2e mode
def bench_config(config: Optional[PathLike], jsonl_path: Optional[PathLike], rate: Optional[float],
                 camera: bool) -> Any:
    """The runtime config for a benchmark run: console sink off, the JSONL log moved to ``jsonl_path`` (dropped
    when None); a file or synthetic source plays at its own size and at ``rate`` (0/None: as fast as taken)."""
    from .config import load_config

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


def bench_e2e(source: str, model: PathLike, config: Optional[PathLike] = None, duration_s: Optional[float] = 10.0,
              max_frames: Optional[int] = None, rate: Optional[float] = None, threads: Optional[int] = 1,
              out_dir: Optional[PathLike] = None, progress: bool = True, command: str = "") -> Dict[str, Any]:
    """The loop as ``edge-runtime run`` runs it, on ``source``: decision latency (p90 headline), stages, FPS.
    ``rate``: pace a file at this FPS (None: the file's own FPS; 0: as fast as the loop takes frames)."""
    from .runtime import Runtime

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
    rt = Runtime.from_config(cfg, model=str(model), source=source, overrides=overrides, threads=threads)
    total = max(1, int(duration_s) if duration_s else (max_frames or 1))
    state: Dict[str, Any] = {"bar": None, "t0": 0.0}

    def tick(frame: Any, d: Any) -> None:  # progress: one step per second (or frame) of the run
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
    pre_inf = rep["stages_ms"]["preprocess"]["p90"] + rep["stages_ms"]["infer"]["p90"]
    resources = res_mon.report(st["mean_ms"], gpu_used=rt.runner.name == "tensorrt")
    fmt = "e2e %s %s" % (describe_format(Path(model), rt.runner, rt.manifest), "(%s)" % rt.source.describe())
    row = _row(fmt, "ok" if final.reason.value != "source_failed" else "source failed", Path(model), rt.manifest, st)
    row["fps"] = rep["fps"]  # achieved frames per second, not 1000/latency: frames overlap the next capture
    row["peak_rss_mb"] = resources["peak_rss_mb"]
    details = {
        "decision_latency_ms": st, "headline": "capture->decision p90 %.3f ms" % st["p90_ms"],
        "stages_ms": rep["stages_ms"], "achieved_fps": rep["fps"], "source_fps": src_fps,
        "source_fps_note": "the source's pace: a camera's or synthetic:// rate, a file's own FPS unless --rate "
                           "(None: handed over as fast as the loop takes frames)",
        "frames": rep["frames"], "stale_frames": rep["stale_frames"], "dropped_frames": rep["dropped_frames"],
        "deadline_misses": rep["deadline_misses"], "deadline_ms": rep["deadline_ms"], "final": final.summary(),
        "preprocess_plus_infer_p90_ms": pre_inf,
        "e2e_over_preprocess_infer": st["p90_ms"] / pre_inf if pre_inf > 0 else None,
        "e2e_goal": "decision latency p90 <= 1.25 x (preprocess p90 + infer p90) of the same run",
        "runtime_report": rep}
    return _report("e2e", command, ev, resources, [row], details, {
        "source": source, "model": str(model), "config": str(config or DEFAULT_CONFIG), "rate": rate,
        "duration_s": duration_s, "max_frames": max_frames, "threads": threads,
        "timed": "capture stamp (grabber thread, time.monotonic) -> policy decision, per frame"})


# ----------------------------------------------------------------------------------------------- compare mode
def _params_macs(runner: Any, man: Optional[Dict[str, Any]]) -> Tuple[Optional[int], Optional[int]]:
    model = (man or {}).get("model") or {}
    params, macs = model.get("params"), model.get("macs")
    if (params is None or macs is None) and runner.name == "pytorch":
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


def _row(fmt: str, status: str, path: Path, man: Optional[Dict[str, Any]], st: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    acc = (man or {}).get("accuracy") or {}
    row: Dict[str, Any] = {
        "format": fmt, "status": status, "artifact": str(path),
        "model": ((man or {}).get("model") or {}).get("name"),
        "size_mb": round(path.stat().st_size / 2**20, 3) if path.is_file() else None,
        "accuracy": acc.get("top1"), "accuracy_source": ("manifest: top-1 on %s %s images" % (acc.get("n"), acc.get(
            "split", "test"))) if acc.get("top1") is not None else None,
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
            row = _row(describe_format(p, runner, man), "ok", p, man, st)
            row["params"], row["macs"] = _params_macs(runner, man)
            row["backend"] = runner.name
            row["precision"] = (man or {}).get("precision")
        except EdgeRuntimeError as exc:
            row = dict(_row(p.name, "failed: %s" % exc, p, man, None), error=str(exc))
        finally:
            runner.deactivate()
        if accuracy_limit is not None and row["status"] == "ok":
            from .evaluate import evaluate

            acc = evaluate(p, limit=accuracy_limit, data_dir=data_dir, latency_iters=0, threads=threads)
            row["accuracy"] = acc["top1"]
            row["accuracy_source"] = "measured here: top-1 on the first %d %s test images" % (acc["n"], acc["dataset"])
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
    eager = [r for r in ok if r.get("backend") == "pytorch"]
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
    return _report("compare", command, ev, resources, rows, details, {
        "artifacts": [str(p) for p in paths], "batch": batch, "threads": threads, "timing": dataclasses.asdict(timing),
        "accuracy_limit": accuracy_limit, "input": "random normal float32, seed 0",
        "timed": "wall clock of Runner.infer per call, one process, rows in order; peak_rss_mb is the process RSS "
                 "(earlier rows' memory included), rss_growth_mb what this row added"})


# ------------------------------------------------------------------------------------------------------ output
def _report(mode: str, command: str, ev: Dict[str, Any], resources: Dict[str, Any], rows: List[Dict[str, Any]],
            details: Dict[str, Any], settings: Dict[str, Any]) -> Dict[str, Any]:
    ev = dict(ev)
    ev["loadavg_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"format": FORMAT, "mode": mode, "command": command, "evidence": ev, "settings": settings,
            "resources": resources, "rows": rows, "details": details, "warnings": list(ev.get("warnings", []))}


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if key == "fps":
            return "%.1f" % v
        if key in ("size_mb", "peak_rss_mb"):
            return "%.1f" % v if key == "peak_rss_mb" else "%.2f" % v
        if key == "accuracy":
            return "%.2f" % v
        return "%.3f" % v
    return str(v)


HEADERS = {"format": "format", "status": "status", "size_mb": "size MB", "accuracy": "accuracy %",
           "ms_per_image": "ms/image", "fps": "FPS", "p99_ms": "p99 ms/image", "peak_rss_mb": "peak RSS MB"}


def format_table(rep: Dict[str, Any]) -> str:
    """The terminal table (Ultralytics' benchmark columns plus p99 and peak memory)."""
    cells = [[HEADERS[c] for c in COLUMNS]] + [[_cell(c, r.get(c)) for c in COLUMNS] for r in rep["rows"]]
    cells = [[c if len(c) <= 60 else c[:57] + "..." for c in row] for row in cells]
    w = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return out


def to_markdown(rep: Dict[str, Any]) -> str:
    ev = rep["evidence"]
    out = ["# edge-runtime bench %s" % rep["mode"], "", "Command: `%s`" % (rep["command"] or "(library call)"), ""]
    extra = ("params", "macs", "rss_growth_mb") if rep["mode"] == "compare" else ()
    heads = [HEADERS[c] for c in COLUMNS] + [{"params": "params M", "macs": "MACs M",
                                              "rss_growth_mb": "RSS added MB"}[e] for e in extra]
    body = []
    for r in rep["rows"]:
        body.append([_cell(c, r.get(c)) for c in COLUMNS] + ["-" if r.get(e) is None else "%.2f" % (
            r[e] / (1.0 if e == "rss_growth_mb" else 1e6)) for e in extra])
    out += _md_table(heads, body)
    d = rep["details"]
    if rep["mode"] == "engine":
        out += ["", "## Latency per call (ms)", ""]
        out += _md_table(["batch", "n", "min", "mean", "median", "p90", "p95", "p99", "max", "images/s"], [
            [b, s["n"]] + ["%.3f" % s[k] for k in ("min_ms", "mean_ms", "median_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")]
            + ["%.1f" % s["throughput_ips"]] for b, s in d["per_batch"].items()])
        if "vs_bare" in d:
            v = d["vs_bare"]
            out += ["", "## Runner overhead vs bare InferenceSession.run", "",
                    "Runner median %.4f ms, bare %.4f ms: overhead %+.4f ms (%+.2f %%; mean %+.4f ms); allowed %.3f ms: "
                    "goal %s. %s." % (v["runner"]["median_ms"], v["bare"]["median_ms"], v["overhead_median_ms"],
                                      v["overhead_median_pct"], v["overhead_mean_ms"], v["allowed_ms"],
                                      "met" if v["goal_met"] else "NOT met", v["method"])]
        if "tensorrt" in d:
            out += ["", "TensorRT: %s." % d["tensorrt"]]
    if rep["mode"] == "e2e":
        out += ["", "Headline: %s; achieved %.1f FPS, source %s FPS; stale %d, dropped %d, deadline misses %d; "
                "p90 / (preprocess p90 + infer p90) = %s." % (
                    d["headline"], d["achieved_fps"], "-" if d["source_fps"] is None else "%g" % d["source_fps"],
                    d["stale_frames"], d["dropped_frames"], d["deadline_misses"],
                    "-" if d["e2e_over_preprocess_infer"] is None else "%.2f" % d["e2e_over_preprocess_infer"]), ""]
        stages = list(d["stages_ms"].items()) + [("capture->decision", {
            "mean": d["decision_latency_ms"]["mean_ms"], "p50": d["decision_latency_ms"]["p50_ms"],
            "p90": d["decision_latency_ms"]["p90_ms"], "p99": d["decision_latency_ms"]["p99_ms"],
            "max": d["decision_latency_ms"]["max_ms"]})]
        out += _md_table(["stage (ms)", "mean", "p50", "p90", "p99", "max"], [
            [k] + ["%.3f" % s[q] for q in ("mean", "p50", "p90", "p99", "max")] for k, s in stages if s])
    for sp in d.get("speedup_vs_pytorch_eager", []):
        out += ["", "PyTorch eager / ONNX Runtime FP32 (%s): mean %.3f ms / %.3f ms = **%.1fx**; median %.3f / %.3f ms "
                "= %.1fx (goal %s)." % (sp["model"], sp["pytorch_ms"], sp["onnxruntime_fp32_ms"], sp["ratio"],
                                        sp["pytorch_median_ms"], sp["onnxruntime_fp32_median_ms"], sp["ratio_median"],
                                        sp["goal"])]
    res = rep["resources"]
    out += ["", "## Resources", "", "Peak RSS %s MB (process peak %s MB); GPU memory: %s; power: %s." % (
        res.get("peak_rss_mb"), res.get("process_peak_rss_mb"),
        res.get("gpu_memory_mb") if res.get("gpu_memory_mb") is not None else res.get("gpu_memory_note", "-"),
        ("%.2f W, %.3f mJ/image" % (res["power_w"], res["energy_mj_per_image"] or 0)) if res.get("power_w")
        else res.get("power_note"))]
    out += ["", "## Evidence", ""]
    keys = ("when", "cpu", "cores", "os", "python", "numpy", "opencv", "onnxruntime", "torch", "tensorrt", "cuda",
            "gpu", "driver", "cpu_governor", "loadavg", "loadavg_end", "jetson")
    out += _md_table(["field", "value"], [[k, json.dumps(ev.get(k)) if isinstance(ev.get(k), (list, dict)) else
                                           ("-" if ev.get(k) is None else ev.get(k))] for k in keys])
    if rep["warnings"]:
        out += ["", "Warnings:", ""] + ["- %s" % w for w in rep["warnings"]]
    return "\n".join(out) + "\n"


def to_csv(rep: Dict[str, Any]) -> str:
    keys = list(COLUMNS) + ["model", "artifact", "params", "macs", "batch", "mean_ms", "p50_ms", "p90_ms", "n",
                            "accuracy_source"]
    ev = rep["evidence"]
    ekeys = ["cpu", "cores", "os", "python", "onnxruntime", "torch", "tensorrt", "loadavg"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["mode"] + keys + ["evidence_" + k for k in ekeys])
    for r in rep["rows"]:
        w.writerow([rep["mode"]] + ["" if r.get(k) is None else r.get(k) for k in keys] +
                   [" ".join(map(str, ev[k])) if isinstance(ev.get(k), list) else ev.get(k) for k in ekeys])
    return buf.getvalue()


def plot_png(rep: Dict[str, Any]) -> bytes:
    """Accuracy vs ms per image (one labelled point per row); rows without accuracy are listed by latency only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rep["rows"] if r.get("ms_per_image") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    with_acc = [r for r in ok if r.get("accuracy") is not None]
    if with_acc:
        for r in with_acc:
            ax.scatter(r["ms_per_image"], r["accuracy"], s=40)
            ax.annotate(r["format"][:60], (r["ms_per_image"], r["accuracy"]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_ylabel("top-1 accuracy (%)")
    else:
        ax.barh([r["format"][:40] for r in ok], [r["ms_per_image"] for r in ok])
        ax.set_ylabel("(no accuracy known)")
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("ms per image (mean)")
    ev = rep["evidence"]
    ax.set_title("edge-runtime bench %s: %s, %s cores, load %s" % (rep["mode"], str(ev.get("cpu"))[:40], ev.get("cores"),
                                                                   (ev.get("loadavg") or ["-"])[0]), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(rep: Dict[str, Any], out_dir: PathLike, stem: Optional[str] = None) -> List[str]:
    """bench-<mode>.json/.csv/.md/.png in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    stem = stem or "bench-%s" % rep["mode"]
    files = [out / (stem + ext) for ext in (".json", ".csv", ".md", ".png")]
    write_json_atomic(files[0], rep)
    write_text_atomic(files[1], to_csv(rep))
    write_text_atomic(files[2], to_markdown(rep))
    write_bytes_atomic(files[3], plot_png(rep))
    return [str(f) for f in files]
