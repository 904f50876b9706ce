"""The machine a number was measured on (ONE probe, shared by ``edge-runtime bench`` and ``edge-runtime info``) and
the resources a run used (resident memory, GPU memory, power on a Jetson)."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import EdgeRuntimeError


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
    from ..engine.trt import import_tensorrt

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

