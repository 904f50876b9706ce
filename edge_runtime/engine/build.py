"""``build_engine``: ONNX -> TensorRT engine with its manifest (or, with backend onnxruntime, the CPU artifacts).

Engine names carry what makes an engine valid only where it was built (as jetson-inference names its
cached engines): ``<model>.<precision>.trt<version>.<gpu>-sm<cc>.engine``. The sidecar manifest holds
TensorRT version, GPU name and compute capability, precision, input shape, the ONNX's sha256, class
names, preprocessing, build flags (the calls made) and build time. Writes are atomic.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from .. import manifest as mf
from .. import onnxutil
from ..errors import EdgeRuntimeError
from ..fsio import PathLike, sha256_file, write_bytes_atomic

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class BuildResult:
    paths: List[Path]
    manifests: List[Dict[str, Any]]
    notes: List[str]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def engine_name(model: str, precision: str, trt_version: str, gpu: str, cc: str) -> str:
    return "%s.%s.trt%s.%s-sm%s.engine" % (model, precision, trt_version, slug(gpu), cc.replace(".", ""))


def _source(onnx_path: Path) -> Dict[str, Any]:
    model, man = onnxutil.load_checked(onnx_path)
    if man is None:
        raise EdgeRuntimeError("%s has no manifest, so the engine would not know its classes or preprocessing; export it "
                               "with edge-runtime export" % onnx_path)
    return {"model": model, "manifest": man}


def _refuse_existing(paths: List[Path], force: bool) -> None:
    for p in paths:
        for q in (p, mf.sidecar_path(p)):
            if q.exists() and not force:
                raise EdgeRuntimeError("%s already exists; pass --force to rebuild it (nothing was overwritten)" % q)


def build_engine(onnx_path: PathLike, precision: str = "fp16", calibrator: Optional[str] = None,
                 calib: Optional[PathLike] = None, workspace_mb: Optional[int] = None, timing_cache: Optional[PathLike] = None,
                 dla_core: Optional[int] = None, version_compatible: bool = False, out_dir: PathLike = "engines",
                 backend: str = "tensorrt", force: bool = False, max_batch: int = 8, data_dir: Optional[PathLike] = None,
                 command: str = "") -> BuildResult:
    if precision not in PRECISIONS:
        raise EdgeRuntimeError("--precision %r: expected one of %s" % (precision, ", ".join(PRECISIONS)))
    if calibrator not in (None, "entropy"):
        raise EdgeRuntimeError("--calibrator %r: only entropy is supported" % calibrator)
    src = Path(onnx_path)
    out = Path(out_dir)
    if backend == "onnxruntime":
        return _build_cpu(src, precision, calib, out, force, command, data_dir)
    if backend != "tensorrt":
        raise EdgeRuntimeError("--backend %r: expected tensorrt or onnxruntime" % backend)
    from . import trt as trtmod

    trt = trtmod.import_tensorrt()  # fails first, in one line, where TensorRT is missing
    s = _source(src)
    man = s["manifest"]
    gpu, cc = trtmod.device_identity()
    ver = str(trt.__version__)
    name = engine_name(man["model"]["name"], precision, ver, gpu, cc)
    path = out / name
    _refuse_existing([path], force)
    tc_path = Path(timing_cache) if timing_cache else None
    opts = trtmod.BuildOptions(precision=precision, onnx_precision=str(man.get("precision")), calibrator=calibrator,
                               workspace_mb=workspace_mb, dla_core=dla_core, version_compatible=version_compatible,
                               max_batch=max_batch,
                               timing_cache=(tc_path.read_bytes() if tc_path and tc_path.is_file() else (b"" if tc_path else None)))
    first = (man.get("onnx") or {}).get("input", {}).get("shape", [1])[0]
    calib_bs = int(first) if isinstance(first, int) else 32
    batches = None
    calib_info: Optional[Dict[str, Any]] = None
    if calibrator == "entropy":
        from .. import calib as calibmod

        cs = calibmod.load(calibmod.resolve(calib, man), man)
        src_sha = sha256_file(src)
        opts.calib_cache_path = Path("calib") / "cache" / ("%s.trt%s.%s.calib" % (man["model"]["name"], ver, src_sha[:16]))
        batches = cs.batches(man["preprocess"], batch_size=calib_bs)
        calib_info = {"path": str(cs.path), "sha256": cs.meta["sha256"], "images": len(cs), "cache": str(opts.calib_cache_path)}
    built = trtmod.build_serialized(trt, src.read_bytes(), opts, batches, calib_batch_size=calib_bs)
    write_bytes_atomic(path, built.plan)
    if tc_path is not None and built.timing_cache is not None:
        write_bytes_atomic(tc_path, built.timing_cache)
    rebuild = "edge-runtime build-engine %s --precision %s%s" % (src, precision, " --calibrator entropy" if calibrator else "")
    new = mf.new("engine", man["model"], man["dataset"], man["preprocess"], precision,
                 engine={"tensorrt": ver, "gpu": gpu, "compute_capability": cc, "input_shape": built.input_shape,
                         "input": "input", "output": "logits", "build_calls": built.calls, "build_seconds": round(built.seconds, 2),
                         "workspace_mb": workspace_mb, "dla_core": dla_core, "version_compatible": version_compatible,
                         "timing_cache": str(tc_path) if tc_path else None, "calibration": calib_info,
                         "rebuild_command": rebuild},
                 source={"kind": "onnx", "path": str(src), "sha256": sha256_file(src), "precision": man.get("precision")},
                 source_sha256=sha256_file(src), accuracy=None, command=command,
                 note="accuracy not measured at build time: run edge-runtime eval on this engine")
    mf.write(path, new)
    return BuildResult([path], [mf.for_artifact(path)], ["built with TensorRT %s on %s (sm %s)" % (ver, gpu, cc)])


def _build_cpu(src: Path, precision: str, calib: Optional[PathLike], out: Path, force: bool, command: str,
               data_dir: Optional[PathLike]) -> BuildResult:
    """The CPU stand-in: the FP32 ONNX copied with its manifest, plus the INT8 (cpu target) or FP16 ONNX."""
    from ..quantize import quantize

    s = _source(src)
    man = s["manifest"]
    if man.get("precision") != "fp32":
        raise EdgeRuntimeError("--backend onnxruntime starts from the FP32 export; %s is %s" % (src, man.get("precision")))
    stem = man["model"]["name"]
    fp32 = out / ("%s.onnx" % stem)
    target = {"fp32": "", "int8": "cpu", "fp16": "fp16"}[precision]  # quantize --target for the CPU artifact
    suffix = {"": "", "cpu": ".int8-cpu.onnx", "fp16": ".fp16.onnx"}[target]
    paths = [fp32] + ([out / (stem + suffix)] if target else [])
    _refuse_existing(paths, force)
    manifests = []
    if fp32.resolve() != src.resolve():
        write_bytes_atomic(fp32, src.read_bytes())
        mf.write(fp32, man)
    manifests.append(mf.for_artifact(fp32))
    notes = ["ONNX Runtime CPU artifacts (no TensorRT engine was built)"]
    if target:
        from ..cifar import default_data_dir

        root = Path(data_dir) if data_dir is not None else default_data_dir()
        have_data = (root / ("cifar-10-batches-py" if man["dataset"]["name"] == "cifar10" else "cifar-100-python")).is_dir()
        if not have_data:
            notes.append("accuracy not measured: no %s test set under %s (pass --data-dir)" % (man["dataset"]["name"], root))
        res = quantize(fp32, target, None, calib, data_dir=data_dir, out=paths[1], force=force,
                       evaluate=have_data, command=command)
        manifests.append(res.manifest)
    return BuildResult(paths, manifests, notes)
