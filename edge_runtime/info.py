"""What this machine has for edge-runtime: platform, Jetson/JetPack, Python stack, backends, sinks, sources.

:func:`collect` returns a JSON-able dict; :func:`format_text` renders it for ``edge-runtime info``. Every
optional module is imported here, lazily, one at a time; a module that is missing or fails to import (a
broken install, a wheel for another CUDA, Jetson.GPIO on a non-Jetson) is reported, never raised. Each
missing piece comes with what to install: the JetPack apt package on a Jetson, the pip extra elsewhere.

The machine itself (CPU, OS, Jetson/L4T/JetPack, CUDA) is read by the ONE probe that every benchmark records as
its evidence, :func:`edge_runtime.bench.probe.machine`. Only the standard library is imported at module level
(that probe included).
"""
from __future__ import annotations

import importlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .bench.probe import dist_version as _dist_version
from .bench.probe import jetpack_for_l4t, machine, parse_l4t_release, read_text

__all__ = ["collect", "format_text", "format_json", "parse_l4t_release", "jetpack_for_l4t"]


# --------------------------------------------------------------------------------------------- helpers
def _try_import(name: str) -> Tuple[Any, Optional[str]]:
    """(module, None), or (None, 'missing: ...') / (None, 'broken: ...'). Never raises (except KeyboardInterrupt)."""
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, "missing (%s)" % exc
    except Exception as exc:  # noqa: BLE001 - a broken module must be reported, not crash the report
        return None, "broken (%s: %s)" % (type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")


def _venv() -> Dict[str, Any]:
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    cfg = read_text(Path(sys.prefix) / "pyvenv.cfg") or ""
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


def _cuda(jetson: bool, m: Dict[str, Any]) -> Dict[str, Any]:
    """cuda-python and pycuda (importable?), and nvcc/toolkit versions from the machine probe ``m``."""
    out: Dict[str, Any] = {}
    mod, err = _try_import("cuda.bindings.runtime")
    if mod is None:
        mod, err2 = _try_import("cuda.cudart")
        err = err if mod is None and err2 and err2.startswith("missing") else err2
    out["cuda-python"] = (_pkg("ok", _dist_version("cuda-python", "cuda-bindings") or "?") if mod is not None else
                          _pkg("missing" if err and err.startswith("missing") else "broken", None, err or "",
                               "pip install 'edge-runtime[trt]' (cuda-python matching your CUDA)"))
    out["pycuda"] = _probe("pycuda", ("pycuda",), "sudo apt install python3-pycuda" if jetson else "pip install pycuda")
    out["nvcc"], out["toolkit"] = m["nvcc"], m["toolkit"]
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

    m = machine(root)
    jet = m["jetson"]
    on_jetson = jet is not None
    py = dict(version=m["python"], executable=m["python_executable"], **_venv())
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
    cuda = _cuda(on_jetson, m)
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
        "platform": {"system": m["system"], "release": m["release"], "machine": m["machine"], "os": m["os_name"],
                     "cpu": m["cpu"], "cores": m["cores"], "loadavg": m["loadavg"]},
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
    if pf.get("cpu"):
        lines.append("%-13s %s, %s cores, load %s" % ("cpu", pf["cpu"], pf.get("cores"),
                                                     " ".join("%.2f" % x for x in pf.get("loadavg") or []) or "-"))
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
