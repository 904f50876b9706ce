"""``edge-runtime doctor``: the one command a Jetson owner runs once, and attaches to a bug report.

It proves, on the machine it runs on, what the tests here can only simulate:

1. the machine: JetPack, L4T, TensorRT, CUDA, cuda-python/pycuda, GPU, power mode, clocks (the machine probe of
   :mod:`edge_runtime.bench`);
2. the CPU reference: ONNX Runtime on the bundled model (FP32 and the INT8 CPU build) over the committed
   calibration images (``calib/cifar10-train-1000.npz``, with their labels) and, where the CIFAR-10 test set is at
   hand (``--data-dir`` / ``$EDGE_RUNTIME_DATA``), its first 1000 images (no test images are shipped in the repo);
3. the tests marked ``tensorrt``/``gpu`` (``pytest -m "tensorrt or gpu" tests/test_tensorrt_device.py``, from a
   source checkout: real CUDA buffers, page-locked copies, events and a CUDA graph; the bundled engines vs ONNX
   Runtime; the split timing);
4. the bundled model's FP16 and INT8 (Q/DQ) engines built here, each compared with ONNX Runtime FP32 on the same
   images (top-1 agreement, max abs logit difference, top-1 vs labels) and benchmarked (batch 1).

Where TensorRT is absent it runs the CPU parts, marks the TensorRT rows "not available here", says in one line
what to install, writes the report and exits 2. Results: ``doctor.json`` and ``doctor.md`` in ``--out``
(written atomically). Nothing here has run on a device yet: the TensorRT rows have only ever said
"not available here".
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import manifest as mf
from . import resources
from .errors import EdgeRuntimeError
from .fsio import PathLike, write_bytes_atomic, write_json_atomic

FORMAT = "edge-runtime.doctor/1"
NA = "not available here"
MODEL = "mobilenetv2_cifar_x0_5"
#: (row name, bundled ONNX to build from, precision) per engine; TensorRT 11 builds FP16 from the FP16 ONNX
ENGINES = (("TensorRT FP16", MODEL + ".onnx", "fp16"), ("TensorRT INT8 (Q/DQ)", MODEL + ".int8-tensorrt.onnx", "int8"))
#: the most a model's top-1 on test images 0-999 may fall below its manifest's ``top1_first1000`` (a choice)
MAX_DROP_VS_MANIFEST = 1.0
#: pass criterion (a choice, not a measurement): the top-1 agreement with ONNX Runtime FP32 on the same images.
#: The max abs logit difference is reported beside it, not judged (INT8 moves logits by design).
MIN_AGREEMENT = {"fp16": 0.98, "int8": 0.90, "int8-cpu": 0.90}


def _row(name: str, status: str, detail: str = "", **numbers: Any) -> Dict[str, Any]:
    return dict(check=name, status=status, detail=detail, **numbers)


def _images(data_dir: Optional[PathLike], limit: Optional[int] = None) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 NHWC images, labels): the committed calibration set, and the first 1000 CIFAR-10 test images
    where the test set is at hand."""
    from .calib import load as load_calib

    cs = load_calib(resources.path("calib", "cifar10-train-1000.npz"))
    n = len(cs) if limit is None else min(int(limit), len(cs))
    sets = [("calibration set (calib/cifar10-train-1000.npz, %d train images)" % n, cs.images[:n], cs.labels[:n])]
    root = Path(data_dir) if data_dir is not None else (Path(os.environ["EDGE_RUNTIME_DATA"])
                                                        if os.environ.get("EDGE_RUNTIME_DATA") else None)
    if root is not None and (root / "cifar-10-batches-py").is_dir():
        from .cifar import load_split

        sp = load_split("cifar10", "test", root)
        n = 1000 if limit is None else min(int(limit), 1000)
        sets.append(("CIFAR-10 test images 0-%d" % (n - 1), sp.images[:n], sp.labels[:n]))
    return sets


def _logits(runner: Any, images: np.ndarray) -> np.ndarray:
    from .evaluate import predict

    with runner:
        return predict(runner, images, runner.manifest["preprocess"])


def compare(ref: np.ndarray, got: np.ndarray, labels: np.ndarray) -> Dict[str, Any]:
    """Top-1 agreement and max abs logit difference of ``got`` vs the reference, and each one's top-1 vs labels."""
    return {"n": int(len(ref)), "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
            "max_abs_logit_diff": float(np.abs(ref - got).max()) if len(ref) else 0.0,
            "top1_ref": float((ref.argmax(1) == labels).mean() * 100), "top1": float((got.argmax(1) == labels).mean() * 100)}


def _check_rows(name: str, key: str, runner_for: Callable[[], Any], sets: List[Tuple[str, np.ndarray, np.ndarray]],
                refs: List[np.ndarray]) -> List[Dict[str, Any]]:
    rows = []
    for (sname, imgs, labels), ref in zip(sets, refs):
        c = compare(ref, _logits(runner_for(), imgs), labels)
        agree = MIN_AGREEMENT[key]
        ok = c["top1_agreement"] >= agree
        rows.append(_row("%s vs ONNX Runtime FP32 on the %s" % (name, sname), "ok" if ok else "FAIL",
                         "top-1 agreement %.1f %% (needs >= %.0f %%), max |logit diff| %.3f; top-1 %.1f %% (FP32 %.1f %%)"
                         % (100 * c["top1_agreement"], 100 * agree, c["max_abs_logit_diff"], c["top1"], c["top1_ref"]), **c))
    return rows


def _cpu_flags() -> str:
    """The x86 SIMD flags that decide ONNX Runtime's INT8 kernels (VNNI or not), '' elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []))
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags)


def _vs_manifest(name: str, path: Path, logits: np.ndarray, sname: str, labels: np.ndarray) -> Optional[Dict[str, Any]]:
    """The measured top-1 on test images 0-999 vs the manifest's ``top1_first1000``: does the file's published
    accuracy hold on this machine?"""
    if not sname.startswith("CIFAR-10 test images 0-999"):
        return None
    acc = mf.for_artifact(path).get("accuracy") or {}
    want = acc.get("top1_first1000")
    if want is None:
        return None
    got = float((logits.argmax(1) == labels).mean() * 100)
    ok = got >= float(want) - MAX_DROP_VS_MANIFEST
    flags = _cpu_flags()
    return _row("%s: top-1 on test images 0-999 vs its manifest" % name, "ok" if ok else "FAIL",
                "%.1f %% here, the manifest says %.1f %% (measured with %s; allowed drop %.1f points)%s"
                % (got, float(want), acc.get("measured_with") or "?", MAX_DROP_VS_MANIFEST,
                   "; this CPU: %s" % flags if flags and not ok else ""), top1=got, manifest_top1=float(want))


def _bench(path: Path, seconds: float) -> Dict[str, Any]:
    from .bench import Timing, bench_engine

    rep = bench_engine(path, (1,), Timing(warmup_s=min(1.0, seconds / 3), duration_s=seconds), progress=False)
    return rep["details"]["per_batch"]["1"]


def _tensorrt() -> Tuple[Any, str]:
    from .engine.trt import import_tensorrt

    try:
        return import_tensorrt(), ""
    except EdgeRuntimeError as exc:
        return None, str(exc)


#: the tests that need TensorRT or a GPU (CUDA buffers, page-locked copies, graphs; engines vs ONNX Runtime); no torch
DEVICE_TESTS = ("tests/test_tensorrt_device.py",)


def _pytest_device_tests(timeout_s: float) -> Dict[str, Any]:
    root = resources.checkout_root()
    if root is None or not (root / "tests").is_dir():
        return _row("pytest -m 'tensorrt or gpu'", "skipped", "the tests are in a source checkout only (not in the wheel)")
    import importlib.util

    if importlib.util.find_spec("pytest") is None:
        return _row("pytest -m 'tensorrt or gpu'", "skipped", "pytest is not installed here (pip install pytest, then rerun)")
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "tensorrt or gpu", "-p", "no:cacheprovider"] + list(DEVICE_TESTS)
    try:
        r = subprocess.run(cmd, cwd=str(root), capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _row("pytest -m 'tensorrt or gpu'", "FAIL", "did not finish: %s" % exc)
    tail = (r.stdout.strip().splitlines() or [""])[-1]
    return _row("pytest -m 'tensorrt or gpu'", "ok" if r.returncode in (0, 5) else "FAIL", tail, returncode=r.returncode,
                command=" ".join(cmd[1:]))


def run(out_dir: PathLike = "doctor", data_dir: Optional[PathLike] = None, tests: bool = True, bench_s: float = 3.0,
        command: str = "", images: Optional[int] = None) -> Dict[str, Any]:
    """Run every check; write doctor.json + doctor.md to ``out_dir``; return the report (``exit_code`` in it).
    ``images``: use only the first N images of each set (default: all)."""
    from .backends import load
    from .bench import evidence
    from .fsio import check_writable

    out = Path(out_dir)
    check_writable(out, "--out", directory=True)
    t0 = time.time()
    ev = evidence()
    rows: List[Dict[str, Any]] = []
    bundled = {n: resources.path("bundled", n) for n in (MODEL + ".onnx", MODEL + ".int8-cpu.onnx",
                                                           MODEL + ".int8-tensorrt.onnx", MODEL + ".fp16.onnx")}
    sets = _images(data_dir, images)
    if len(sets) == 1:
        rows.append(_row("CIFAR-10 test images", NA, "no test images are shipped in the repo; pass --data-dir (or set "
                                                     "EDGE_RUNTIME_DATA) with cifar-10-batches-py for images 0-999"))
    fp32 = bundled[MODEL + ".onnx"]
    refs = [_logits(load(fp32, threads=0), imgs) for _, imgs, _ in sets]
    for (sname, _, labels), ref in zip(sets, refs):
        rows.append(_row("ONNX Runtime FP32 on the %s" % sname, "ok", "top-1 %.1f %% vs the labels"
                         % ((ref.argmax(1) == labels).mean() * 100), top1=float((ref.argmax(1) == labels).mean() * 100),
                         n=int(len(labels))))
    cpu_int8 = bundled[MODEL + ".int8-cpu.onnx"]
    rows += _check_rows("ONNX Runtime INT8 (CPU build)", "int8-cpu", lambda: load(cpu_int8, threads=0), sets, refs)
    for (sname, imgs, labels), ref in zip(sets, refs):
        for name, path, logits in (("ONNX Runtime FP32", fp32, ref),
                                   ("ONNX Runtime INT8 (CPU build)", cpu_int8, None)):
            r = _vs_manifest(name, path, logits if logits is not None else _logits(load(path, threads=0), imgs), sname,
                             labels)
            if r is not None:
                rows.append(r)
    st = _bench(fp32, bench_s)
    rows.append(_row("ONNX Runtime FP32 latency, batch 1", "ok", "median %.3f ms, p99 %.3f ms over %d calls"
                     % (st["median_ms"], st["p99_ms"], st["n"]), latency=st))
    trt, why = _tensorrt()
    engines: List[str] = []
    if trt is None:
        from .engine.trt import HOW_TO_GET

        short = why.replace("; " + HOW_TO_GET, "")
        rows.append(_row("pytest -m 'tensorrt or gpu'", NA, short))
        for name, _, _ in ENGINES:
            rows.append(_row("%s engine: build, compare with ONNX Runtime, benchmark" % name, NA, short))
    else:
        if tests:
            rows.append(_pytest_device_tests(1800))
        from .engine.build import build_engine
        from .engine.trt import version_of

        for name, src_name, prec in ENGINES:
            src = bundled[MODEL + ".fp16.onnx"] if prec == "fp16" and version_of(trt) >= (11, 0) else bundled[src_name]
            try:
                res = build_engine(src, prec, out_dir=out / "engines", force=True, command=command)
                eng = res.paths[0]
                engines.append(str(eng))
                rows.append(_row("%s engine built" % name, "ok", "%s (%s s)" % (eng.name, mf.for_artifact(eng)["engine"]
                                                                               .get("build_seconds")), path=str(eng)))
                rows += _check_rows(name, prec, lambda: load(eng), sets, refs)
                st = _bench(eng, bench_s)
                rows.append(_row("%s latency, batch 1" % name, "ok", "median %.3f ms, p99 %.3f ms over %d calls"
                                 % (st["median_ms"], st["p99_ms"], st["n"]), latency=st))
            except EdgeRuntimeError as exc:
                rows.append(_row("%s engine" % name, "FAIL", str(exc)))
    failed = [r for r in rows if r["status"] == "FAIL"]
    code = 1 if failed else (2 if trt is None else 0)
    rep = {"format": FORMAT, "command": command, "exit_code": code, "seconds": round(time.time() - t0, 1),
           "tensorrt": "absent" if trt is None else str(trt.__version__), "evidence": ev, "rows": rows,
           "engines": engines, "summary": _summary(code, failed, why)}
    write_json_atomic(out / "doctor.json", rep)
    write_bytes_atomic(out / "doctor.md", to_markdown(rep).encode())
    return rep


def _summary(code: int, failed: List[Dict[str, Any]], why: str) -> str:
    if code == 2:
        from .engine.trt import HOW_TO_GET

        return "TensorRT is not available here: the CPU checks ran, the TensorRT rows did not; to install it: " + HOW_TO_GET
    if code == 1:
        return "%d check(s) failed: %s" % (len(failed), "; ".join(r["check"] for r in failed))[:400]
    return "every check passed"


def to_markdown(rep: Dict[str, Any]) -> str:
    ev = rep["evidence"]
    js = ev.get("jetson") or {}
    lines = ["# edge-runtime doctor", "", "`%s` (exit %d, %.0f s): %s" % (rep["command"] or "edge-runtime doctor",
                                                                            rep["exit_code"], rep["seconds"], rep["summary"]),
             "", "## Machine", "", "| | |", "|---|---|"]
    facts = [("when", ev.get("when")), ("machine", "%s, %s" % (ev.get("cpu"), ev.get("machine"))),
             ("OS", ev.get("os")), ("Python", ev.get("python")), ("JetPack", js.get("jetpack") or NA),
             ("L4T", js.get("l4t") or NA), ("power mode (nvpmodel)", js.get("nvpmodel") or NA),
             ("jetson_clocks", js.get("jetson_clocks") if js else NA), ("TensorRT", rep["tensorrt"]),
             ("CUDA", ev.get("cuda") or NA), ("GPU", ev.get("gpu") or NA), ("ONNX Runtime", ev.get("onnxruntime")),
             ("code", "%s%s" % ((ev.get("code") or {}).get("commit") or "?", " (dirty)" if (ev.get("code") or {}).get("dirty") else ""))]
    lines += ["| %s | %s |" % (k, v) for k, v in facts]
    lines += ["", "## Checks", "", "| check | status | detail |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % (r["check"], r["status"], r["detail"].replace("|", "/")) for r in rep["rows"]]
    if ev.get("warnings"):
        lines += ["", "Warnings: " + "; ".join(ev["warnings"])]
    return "\n".join(lines) + "\n"
