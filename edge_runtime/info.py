"""What this machine has for edge-runtime: platform, Jetson/JetPack, Python stack, backends, sinks, sources.

:func:`collect` returns a JSON-able dict; :func:`format_text` renders it for ``edge-runtime info``. Every
optional module is imported here, lazily, one at a time; a module that is missing or fails to import (a
broken install, a wheel for another CUDA, Jetson.GPIO on a non-Jetson) is reported, never raised. Each
missing piece comes with what to install: the JetPack apt package on a Jetson, the pip extra elsewhere.

Only the standard library is imported at module level.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["collect", "format_text", "format_json", "parse_l4t_release", "jetpack_for_l4t"]

#: L4T release -> JetPack release (NVIDIA's JetPack archive); unknown revisions fall back to the major line
_JETPACK = {
    (35, 1): "5.0.2", (35, 2): "5.1", (35, 3): "5.1.1", (35, 4): "5.1.2", (35, 5): "5.1.3", (35, 6): "5.1.4",
    (36, 2): "6.0 DP", (36, 3): "6.0", (36, 4): "6.1/6.2",
    (38, 2): "7.0",
}
_JETPACK_MAJOR = {32: "4.x", 34: "5.0 DP", 35: "5.x", 36: "6.x", 38: "7.x"}
#: the oldest L4T edge-runtime supports: JetPack 5.1 (TensorRT 8.5, Python 3.8)
MIN_L4T = (35, 2)


# --------------------------------------------------------------------------------------------- helpers
def _try_import(name: str) -> Tuple[Any, Optional[str]]:
    """(module, None), or (None, 'missing: ...') / (None, 'broken: ...'). Never raises (except KeyboardInterrupt)."""
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, "missing (%s)" % exc
    except Exception as exc:  # noqa: BLE001 - a broken module must be reported, not crash the report
        return None, "broken (%s: %s)" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")


def _dist_version(*names: str) -> Optional[str]:
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


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _run(cmd: List[str], timeout: float = 5.0) -> Optional[str]:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).is_file():
        return None
    try:
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                             universal_newlines=True, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


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


def _jetson(root: Path) -> Optional[Dict[str, Any]]:
    model = _read(root / "proc/device-tree/model")
    rel = _read(root / "etc/nv_tegra_release")
    l4t = parse_l4t_release(rel) if rel else None
    source = "/etc/nv_tegra_release" if l4t else None
    if l4t is None and root == Path("/"):
        ver = _run(["dpkg-query", "-W", "-f=${Version}", "nvidia-l4t-core"])
        l4t = parse_l4t_release(ver) if ver else None
        source = "dpkg nvidia-l4t-core" if l4t else None
    if l4t is None and not (model and "jetson" in model.lower()):
        return None
    out: Dict[str, Any] = {"model": model, "l4t": "%d.%d.%d" % l4t if l4t else None, "l4t_source": source,
                           "jetpack": jetpack_for_l4t(l4t) if l4t else None,
                           "supported": bool(l4t and l4t[:2] >= MIN_L4T),
                           "argus_socket": (root / "tmp/argus_socket").exists()}
    return out


def _os_name(root: Path) -> Optional[str]:
    txt = _read(root / "etc/os-release") or ""
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', txt, re.M)
    return m.group(1) if m else None


def _venv() -> Dict[str, Any]:
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    cfg = _read(Path(sys.prefix) / "pyvenv.cfg") or ""
    m = re.search(r"include-system-site-packages\s*=\s*(\w+)", cfg)
    return {"venv": in_venv, "system_site_packages": (m.group(1).lower() == "true") if (in_venv and m) else None}


def _missing_groups(names: Tuple[str, ...]) -> List[str]:
    """Those of ``names`` that exist on this system and that this (non-root) process is not in."""
    if not hasattr(os, "getgroups") or os.geteuid() == 0:
        return []
    try:
        import grp

        mine = set(os.getgroups())
        gids = {n: _gid(grp, n) for n in names}
        return [n for n, g in gids.items() if g is not None and g not in mine]
    except Exception:  # noqa: BLE001 - no grp module, an odd NSS setup: not worth failing the report
        return []


def _gid(grp: Any, name: str) -> Optional[int]:
    try:
        return int(grp.getgrnam(name).gr_gid)
    except KeyError:
        return None


# ---------------------------------------------------------------------------------------------- probes
def _pkg(status: str, version: Optional[str] = None, detail: str = "", install: Optional[str] = None,
         **extra: Any) -> Dict[str, Any]:
    d: Dict[str, Any] = {"status": status, "version": version, "detail": detail, "install": install}
    d.update(extra)
    return d


def _probe(name: str, dist: Tuple[str, ...], install: str) -> Dict[str, Any]:
    mod, err = _try_import(name)
    if mod is None:
        return _pkg("missing" if err and err.startswith("missing") else "broken", _dist_version(*dist),
                    err or "", install)
    return _pkg("ok", str(getattr(mod, "__version__", None) or _dist_version(*dist) or "?"),
                str(getattr(mod, "__file__", "") or ""))


def _tensorrt(jetson: bool) -> Dict[str, Any]:
    how = ("sudo apt install python3-libnvinfer python3-libnvinfer-dev (JetPack; in a venv create it with "
           "--system-site-packages)" if jetson else
           "pip install tensorrt (NVIDIA's wheels, x86 GPU machines); on a Jetson it comes with JetPack")
    mod, err = _try_import("tensorrt")
    if mod is None:
        return _pkg("missing" if err and err.startswith("missing") else "broken", None, err or "", how)
    if not hasattr(mod, "Builder"):
        return _pkg("missing", None, "only tensorrt-stubs (type stubs) are installed: import tensorrt has no Builder",
                    how)
    return _pkg("ok", str(getattr(mod, "__version__", "?")), str(getattr(mod, "__file__", "") or ""))


def _cuda(jetson: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    mod, err = _try_import("cuda.bindings.runtime")
    if mod is None:
        mod, err2 = _try_import("cuda.cudart")
        err = err if mod is None and err2 and err2.startswith("missing") else err2
    out["cuda-python"] = (_pkg("ok", _dist_version("cuda-python", "cuda-bindings") or "?") if mod is not None else
                          _pkg("missing" if err and err.startswith("missing") else "broken", None, err or "",
                               "pip install 'edge-runtime[trt]' (cuda-python matching your CUDA)"))
    out["pycuda"] = _probe("pycuda", ("pycuda",), "sudo apt install python3-pycuda" if jetson else "pip install pycuda")
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").is_file() else None)
    ver = _run([nvcc, "--version"]) if nvcc else None
    m = re.search(r"release ([\d.]+)", ver or "")
    out["nvcc"] = m.group(1) if m else None
    toolkit = None
    try:
        toolkit = json.loads(Path("/usr/local/cuda/version.json").read_text())["cuda"]["version"]
    except Exception:  # noqa: BLE001 - absent or another layout
        txt = _read(Path("/usr/local/cuda/version.txt"))
        m = re.search(r"([\d.]+)", txt or "")
        toolkit = m.group(1) if m else None
    out["toolkit"] = toolkit
    return out


def _opencv(jetson: bool) -> Dict[str, Any]:
    install = ("sudo apt install python3-opencv (JetPack's OpenCV has GStreamer; never pip-install OpenCV on a Jetson)"
               if jetson else "pip install 'edge-runtime[cv]' (no GStreamer: csi:// needs OpenCV built with it)")
    info = _probe("cv2", ("opencv-python", "opencv-python-headless", "opencv-contrib-python"), install)
    info["gstreamer"] = None
    info["pip_wheels"] = [n for n in ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
                                      "opencv-contrib-python-headless") if _dist_version(n)]
    if info["status"] == "ok":
        try:
            build = importlib.import_module("cv2").getBuildInformation()
            m = re.search(r"GStreamer:\s*(\w+)", build)
            info["gstreamer"] = bool(m and m.group(1).upper() == "YES")
        except Exception as exc:  # noqa: BLE001
            info["detail"] += " (getBuildInformation failed: %s)" % exc
    return info


# --------------------------------------------------------------------------------------------- collect
def collect(root: str = "/") -> Dict[str, Any]:
    """Everything :func:`format_text` shows, as a JSON-able dict. ``root``: where /proc, /etc and /tmp are
    read from for the Jetson facts (tests point it at a fake tree)."""
    from . import __version__

    r = Path(root)
    jet = _jetson(r)
    on_jetson = jet is not None
    py = dict(version=platform.python_version(), executable=sys.executable, **_venv())
    pk: Dict[str, Dict[str, Any]] = {
        "numpy": _probe("numpy", ("numpy",), "pip install numpy"),
        "PyYAML": _probe("yaml", ("PyYAML",), "pip install PyYAML"),
        "tensorrt": _tensorrt(on_jetson),
        "onnxruntime": _probe("onnxruntime", ("onnxruntime", "onnxruntime-gpu"),
                              "NVIDIA's onnxruntime-gpu wheel for your JetPack (or pip install onnxruntime, CPU only)"
                              if on_jetson else "pip install 'edge-runtime[onnx]'"),
        "onnx": _probe("onnx", ("onnx",), "pip install onnx (build-engine and --backend tensorrt read the ONNX's "
                       "manifest with it)"),
        "opencv": _opencv(on_jetson),
        "torch": _probe("torch", ("torch",), "NVIDIA's PyTorch wheel for your JetPack (not PyPI's)" if on_jetson
                        else "pip install 'edge-runtime[train]'"),
        "Jetson.GPIO": _probe("Jetson.GPIO", ("Jetson.GPIO",), "pip install 'edge-runtime[jetson]' and add the user "
                              "to the gpio group (Jetson only)"),
        "rclpy": _probe("rclpy", (), "source /opt/ros/<distro>/setup.bash before starting (ROS 2: Foxy on JetPack 5, "
                        "Humble on JetPack 6, Jazzy on JetPack 7)"),
    }
    cuda = _cuda(on_jetson)
    if pk["onnxruntime"]["status"] == "ok":
        try:
            pk["onnxruntime"]["providers"] = list(importlib.import_module("onnxruntime").get_available_providers())
        except Exception as exc:  # noqa: BLE001
            pk["onnxruntime"]["providers"] = []
            pk["onnxruntime"]["detail"] += " (get_available_providers failed: %s)" % exc

    def row(ok: bool, detail: str, install: Optional[str]) -> Dict[str, Any]:
        return {"usable": ok, "detail": detail, "install": None if ok else install}

    trt, cv = pk["tensorrt"], pk["opencv"]
    cu_ok = cuda["cuda-python"]["status"] == "ok" or cuda["pycuda"]["status"] == "ok"
    if trt["status"] != "ok":
        trt_row = row(False, "TensorRT %s: %s" % (trt["status"], trt["detail"]), trt["install"])
    elif not cu_ok:
        trt_row = row(False, "TensorRT %s, but neither cuda-python nor pycuda" % trt["version"],
                      cuda["pycuda"]["install"] + ", or " + cuda["cuda-python"]["install"])
    else:
        trt_row = row(True, "TensorRT %s with %s" % (trt["version"], "cuda-python" if
                                                     cuda["cuda-python"]["status"] == "ok" else "pycuda"), None)
    ort = pk["onnxruntime"]
    backends = {
        "tensorrt": trt_row,
        "onnxruntime": row(ort["status"] == "ok", "%s %s" % (ort["version"] or "", ", ".join(ort.get("providers", [])))
                           if ort["status"] == "ok" else ort["detail"], ort["install"]),
        "torch": row(pk["torch"]["status"] == "ok", pk["torch"]["version"] if pk["torch"]["status"] == "ok"
                     else pk["torch"]["detail"], pk["torch"]["install"]),
    }
    gp, ros = pk["Jetson.GPIO"], pk["rclpy"]
    if ros["status"] == "ok":
        sm, err = _try_import("std_msgs.msg")
        if sm is None:
            ros = dict(ros, status="missing", detail="rclpy without std_msgs: %s" % err)
    sinks = {
        "console": row(True, "standard library", None),
        "jsonl": row(True, "standard library", None),
        "udp": row(True, "standard library", None),
        "gpio": row(gp["status"] == "ok", "Jetson.GPIO %s" % gp["version"] if gp["status"] == "ok" else gp["detail"],
                    gp["install"]),
        "ros2": row(ros["status"] == "ok", "rclpy" if ros["status"] == "ok" else ros["detail"], ros["install"]),
        "callback": row(True, "a Python function (module:function)", None),
    }
    cv_ok = cv["status"] == "ok"
    csi_install = ("JetPack's OpenCV: sudo apt install python3-opencv, and pip uninstall opencv-python "
                   "opencv-python-headless (pip's wheels have no GStreamer and shadow JetPack's)" if on_jetson else
                   "OpenCV built with GStreamer (JetPack's OpenCV on a Jetson; pip's wheels have none)")
    sources = {
        "file/v4l2/rtsp": row(cv_ok, "OpenCV %s" % cv["version"] if cv_ok else cv["detail"], cv["install"]),
        "csi": row(bool(cv_ok and cv["gstreamer"]),
                   "OpenCV with GStreamer (nvarguscamerasrc)" if cv_ok and cv["gstreamer"] else
                   "OpenCV without GStreamer: no nvarguscamerasrc" if cv_ok else cv["detail"], csi_install),
        "synthetic": row(True, "numpy", None),
    }
    notes: List[str] = []
    if jet is not None:
        if not jet["supported"]:
            notes.append("L4T %s (JetPack %s) is older than JetPack 5.1 (L4T 35.2): not supported" % (
                jet["l4t"], jet["jetpack"]))
        if py["venv"] and py["system_site_packages"] is False:
            notes.append("this venv was made without --system-site-packages: it cannot see JetPack's TensorRT and "
                         "OpenCV; recreate it: python3 -m venv --system-site-packages VENV")
        if cv_ok and not cv["gstreamer"] and cv["pip_wheels"]:
            notes.append("pip's %s shadows JetPack's OpenCV (no GStreamer, so no csi://): pip uninstall %s" % (
                ", ".join(cv["pip_wheels"]), " ".join(cv["pip_wheels"])))
        groups = _missing_groups(("video", "gpio"))
        if groups:
            notes.append("this user is not in the group(s) %s: cameras and GPIO need them (sudo usermod -aG %s $USER, "
                         "then log in again; the systemd unit's user edge gets them)" % (", ".join(groups),
                                                                                        ",".join(groups)))
        if not jet["argus_socket"]:
            notes.append("no /tmp/argus_socket: csi:// needs nvargus-daemon (sudo systemctl restart nvargus-daemon)")
    missing = ["backend %s: %s" % (k, v["install"]) for k, v in backends.items() if not v["usable"]]
    missing += ["sink %s: %s" % (k, v["install"]) for k, v in sinks.items() if not v["usable"]]
    missing += ["source %s: %s" % (k, v["install"]) for k, v in sources.items() if not v["usable"]]
    return {
        "edge_runtime": __version__,
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "os": _os_name(r)},
        "jetson": jet,
        "python": py,
        "packages": pk,
        "cuda": cuda,
        "backends": backends,
        "sinks": sinks,
        "sources": sources,
        "notes": notes,
        "missing": missing,
    }


# ---------------------------------------------------------------------------------------------- format
def _ver(p: Dict[str, Any]) -> str:
    if p["status"] == "ok":
        return str(p["version"])
    if p["detail"].startswith(p["status"]):
        return str(p["detail"])
    return "%s: %s" % (p["status"], p["detail"]) if p["detail"] else str(p["status"])


def format_text(info: Dict[str, Any]) -> str:
    """The report as ``edge-runtime info`` prints it."""
    pf, jet, py, pk, cu = info["platform"], info["jetson"], info["python"], info["packages"], info["cuda"]
    lines = ["edge-runtime %s" % info["edge_runtime"],
             "%-13s %s %s %s%s" % ("platform", pf["system"], pf["release"], pf["machine"],
                                   ", %s" % pf["os"] if pf["os"] else "")]
    if jet is None:
        lines.append("%-13s %s" % ("jetson", "no (no /etc/nv_tegra_release): TensorRT engines are built on the Jetson"))
    else:
        lines.append("%-13s %s, L4T %s (%s), JetPack %s%s" % (
            "jetson", jet["model"] or "unknown model", jet["l4t"] or "?", jet["l4t_source"] or "-",
            jet["jetpack"] or "?", "" if jet["supported"] else "  NOT SUPPORTED (needs JetPack 5.1+)"))
    venv = ""
    if py["venv"]:
        venv = ", venv%s" % (" with system site-packages" if py["system_site_packages"] else "")
    lines.append("%-13s %s (%s%s)" % ("python", py["version"], py["executable"], venv))
    for name in ("numpy", "PyYAML", "tensorrt"):
        lines.append("%-13s %s" % (name, _ver(pk[name])))
    lines.append("%-13s cuda-python %s | pycuda %s | nvcc %s | toolkit %s" % (
        "cuda", _ver(cu["cuda-python"]) if cu["cuda-python"]["status"] == "ok" else cu["cuda-python"]["status"],
        _ver(cu["pycuda"]) if cu["pycuda"]["status"] == "ok" else cu["pycuda"]["status"],
        cu["nvcc"] or "-", cu["toolkit"] or "-"))
    ort = pk["onnxruntime"]
    lines.append("%-13s %s%s" % ("onnxruntime", _ver(ort), " (%s)" % ", ".join(ort.get("providers", []))
                                 if ort["status"] == "ok" else ""))
    cv = pk["opencv"]
    gst = "" if cv["status"] != "ok" else ", GStreamer %s" % ("YES" if cv["gstreamer"] else "NO")
    lines.append("%-13s %s%s%s" % ("opencv", _ver(cv), gst, " [pip: %s]" % ", ".join(cv["pip_wheels"])
                                   if cv["pip_wheels"] else ""))
    for name in ("onnx", "torch", "Jetson.GPIO", "rclpy"):
        lines.append("%-13s %s" % (name, _ver(pk[name])))
    for title in ("backends", "sinks", "sources"):
        lines.append("")
        lines.append(title)
        for k, v in info[title].items():
            lines.append("  %-14s %-3s %s" % (k, "ok" if v["usable"] else "--", v["detail"]))
            if not v["usable"]:
                lines.append("  %-14s     -> install: %s" % ("", v["install"]))
    if info["notes"]:
        lines.append("")
        lines.append("notes")
        lines.extend("  - %s" % n for n in info["notes"])
    return "\n".join(lines)


def format_json(info: Dict[str, Any]) -> str:
    return json.dumps(info, indent=2, sort_keys=False, default=str)
