"""The machine a number was measured on: ONE probe (:func:`machine`), shared by ``edge-runtime bench`` (every report's
:func:`evidence`) and ``edge-runtime info``; and the resources a run used (resident memory, GPU memory, power on a
Jetson).

Standard library only at import (``edge-runtime info`` must run on a broken install); numpy, torch and jtop are read
from ``sys.modules`` or imported lazily.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: L4T release -> JetPack release (NVIDIA's JetPack archive); unknown revisions fall back to the major line
_JETPACK = {
    (35, 1): "5.0.2", (35, 2): "5.1", (35, 3): "5.1.1", (35, 4): "5.1.2", (35, 5): "5.1.3", (35, 6): "5.1.4",
    (36, 2): "6.0 DP", (36, 3): "6.0", (36, 4): "6.1/6.2",
    (38, 2): "7.0",
}
_JETPACK_MAJOR = {32: "4.x", 34: "5.0 DP", 35: "5.x", 36: "6.x", 38: "7.x"}
#: the oldest L4T edge-runtime supports: JetPack 5.1 (TensorRT 8.5, Python 3.8)
MIN_L4T = (35, 2)


# ------------------------------------------------------------------------------------------------- primitives
def read_text(path: "str | Path") -> Optional[str]:
    """A small system file's text (NULs dropped, stripped), or None when it cannot be read."""
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def run_quiet(cmd: Sequence[str], timeout: float = 5.0) -> Optional[str]:
    """A tool's stdout when it exists and exits 0 (stderr dropped), else None. Never raises."""
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).is_file():
        return None
    try:
        r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.decode(errors="replace").strip() or None if r.returncode == 0 else None


def dist_version(*names: str) -> Optional[str]:
    """The first installed distribution's version among ``names`` (importlib.metadata, no import), or None."""
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    for n in names:
        try:
            return str(metadata.version(n))
        except Exception:  # noqa: BLE001 - PackageNotFoundError, or a broken dist-info
            continue
    return None


def module_version(module: str, dist: Sequence[str] = ()) -> str:
    """An imported module's ``__version__``, else its distribution's version, else ``absent`` (heavy packages are
    not imported)."""
    mod = sys.modules.get(module)
    if mod is not None and getattr(mod, "__version__", None):
        return str(mod.__version__)
    v = dist_version(*(tuple(dist) or (module,)))
    if v is not None:
        return v
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    return "installed (version unknown)" if found else "absent"


def tensorrt_version() -> str:
    """TensorRT's version, or ``absent`` (also when only tensorrt-stubs make ``import tensorrt`` succeed)."""
    import importlib.util

    try:
        if importlib.util.find_spec("tensorrt") is None:
            return "absent"
        trt = importlib.import_module("tensorrt")
    except Exception:  # noqa: BLE001 - a broken TensorRT install is absent for benchmarking
        return "absent (import tensorrt fails)"
    if not hasattr(trt, "Builder"):
        return "absent (only tensorrt-stubs installed)"
    return str(getattr(trt, "__version__", "installed (version unknown)"))


# ------------------------------------------------------------------------------------------------ the machine
def parse_l4t_release(text: str) -> Optional[Tuple[int, int, int]]:
    """``# R36 (release), REVISION: 4.0, GCID: ...`` -> (36, 4, 0); a dpkg version ``36.4.0-2024...`` too."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    if m is None:
        m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def jetpack_for_l4t(l4t: Tuple[int, int, int]) -> Optional[str]:
    """The JetPack release of an L4T release (None if unknown). R36.4.x is JetPack 6.1 (36.4.0) or 6.2 (36.4.3+)."""
    if l4t[:2] == (36, 4):
        return "6.1" if l4t[2] < 3 else "6.2"
    return _JETPACK.get(l4t[:2]) or _JETPACK_MAJOR.get(l4t[0])


def jetson(root: "str | Path" = "/") -> Optional[Dict[str, Any]]:
    """Model, L4T, JetPack and whether it is supported, read under ``root`` (tests point it at a fake tree); None
    when this is not a Jetson."""
    r = Path(root)
    model = read_text(r / "proc/device-tree/model")
    rel = read_text(r / "etc/nv_tegra_release")
    l4t = parse_l4t_release(rel) if rel else None
    source = "/etc/nv_tegra_release" if l4t else None
    if l4t is None and r == Path("/"):
        ver = run_quiet(["dpkg-query", "-W", "-f=${Version}", "nvidia-l4t-core"])
        l4t = parse_l4t_release(ver) if ver else None
        source = "dpkg nvidia-l4t-core" if l4t else None
    if l4t is None and not (model and "jetson" in model.lower()):
        return None
    return {"model": model, "l4t": "%d.%d.%d" % l4t if l4t else None, "l4t_source": source,
            "jetpack": jetpack_for_l4t(l4t) if l4t else None, "supported": bool(l4t and l4t[:2] >= MIN_L4T),
            "argus_socket": (r / "tmp/argus_socket").exists()}


def os_name(root: "str | Path" = "/") -> Optional[str]:
    txt = read_text(Path(root) / "etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', txt, re.M)
    return m.group(1) if m else None


def cpu_model() -> str:
    for line in (read_text("/proc/cpuinfo") or "").splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cuda() -> Dict[str, Any]:
    """CUDA toolkit (version.json/.txt), nvcc, the torch build's CUDA, GPU name and driver (nvidia-smi)."""
    out: Dict[str, Any] = {"gpu": "absent", "cuda": "absent", "driver": "absent", "toolkit": None, "nvcc": None}
    try:
        out["toolkit"] = json.loads(Path("/usr/local/cuda/version.json").read_text())["cuda"]["version"]
    except Exception:  # noqa: BLE001 - absent or another layout
        m = re.search(r"([\d.]+)", read_text("/usr/local/cuda/version.txt") or "")
        out["toolkit"] = m.group(1) if m else None
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").is_file() else None)
    m = re.search(r"release ([\d.]+)", (run_quiet([nvcc, "--version"]) if nvcc else None) or "")
    out["nvcc"] = m.group(1) if m else None
    torch = sys.modules.get("torch")
    if torch is not None and getattr(getattr(torch, "version", None), "cuda", None):
        out["cuda"] = "%s (torch build)" % torch.version.cuda
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    smi = run_quiet(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if smi:
        name, _, drv = smi.splitlines()[0].partition(",")
        out["gpu"], out["driver"] = name.strip(), drv.strip()
    if out["cuda"] == "absent" and out["toolkit"]:
        out["cuda"] = out["toolkit"]
    return out


def machine(root: "str | Path" = "/") -> Dict[str, Any]:
    """THE machine probe: CPU, cores, OS, Python, load, clocks, Jetson/JetPack, CUDA/GPU. ``edge-runtime info`` and
    every benchmark's :func:`evidence` read the machine through this one function."""
    m: Dict[str, Any] = {
        "cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
        "release": platform.release(), "os": "%s %s" % (platform.system(), platform.release()),
        "os_name": os_name(root), "python": platform.python_version(), "python_executable": sys.executable,
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "cpu_governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
    }
    m.update(cuda())
    m["jetson"] = jetson(root)
    return m


def jetson_state() -> Optional[Dict[str, Any]]:
    """JetPack/L4T, nvpmodel mode, jetson_clocks, power and temperature on a Jetson (None elsewhere).
    Power and temperature come from jtop (pip install jetson-stats) when installed. Untested here: no Jetson."""
    j0 = jetson()
    if j0 is None:
        return None
    st: Dict[str, Any] = {"l4t": j0["l4t"], "jetpack": j0["jetpack"], "model": j0["model"], "nvpmodel": None,
                          "jetson_clocks": None, "power_w": None, "temperature_c": None, "jtop": "absent"}
    nv = run_quiet(["nvpmodel", "-q"])
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


def code_version() -> Dict[str, Any]:
    """The git commit this package runs from and whether the tree was dirty (``edge_runtime.manifest``)."""
    from ..manifest import code_version as cv

    return cv()


def evidence() -> Dict[str, Any]:
    """The machine (:func:`machine`), software and code a number was measured with, and warnings about what may
    skew it."""
    ev: Dict[str, Any] = {"when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    m = machine()
    jet = m.pop("jetson")
    ev.update(m)
    ev.update({
        "numpy": module_version("numpy"),
        "opencv": module_version("cv2", ("opencv-python-headless", "opencv-python", "opencv-contrib-python")),
        "onnxruntime": module_version("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
        "torch": module_version("torch"), "tensorrt": tensorrt_version(),
        "code": code_version(),
    })
    ev["jetson"] = jetson_state() if jet is not None else None
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
    if ev["code"].get("dirty"):
        warnings.append("the git tree was dirty (uncommitted changes to tracked files): commit %s does not fully "
                        "describe the code measured" % (ev["code"].get("commit") or "?")[:12])
    ev["warnings"] = warnings
    return ev


# ------------------------------------------------------------------------------------------------- resources
def rss_mb() -> Optional[float]:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        s = read_text("/proc/self/statm")
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

