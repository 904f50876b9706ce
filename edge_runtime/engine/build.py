"""``build_engine``: ONNX -> TensorRT engine with its manifest (or, with backend onnxruntime, the CPU artifacts).

Engine names carry what makes an engine valid only where it was built (as jetson-inference names its
cached engines) and how it was made: ``<model>.<precision>[-qdq|-calib][.b<min>-<opt>-<max>].trt<version>.<gpu>-sm<cc>.engine``
(``int8-qdq``: from the Q/DQ ONNX; ``int8-calib``: FP32 ONNX + TensorRT's entropy calibrator; ``b1-8-8``: the
batch profile of a dynamic-batch ONNX). The sidecar manifest holds TensorRT version, GPU name and compute
capability, precision and how INT8 was made, input shape and batch profile, the ONNX's sha256, class names,
preprocessing, build flags (the calls made) and build time. Writes are atomic.

Everything that can be checked without TensorRT is checked before it is imported (:func:`check_source`): an
INT8 ONNX in ONNX Runtime's CPU layout (uint8 activations, int32 bias) is refused with the command that makes
the TensorRT layout.
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


def int8_method(precision: str, calibrator: Optional[str]) -> Optional[str]:
    """How an INT8 engine gets its scales: ``qdq`` (the Q/DQ ONNX) or ``calib`` (TensorRT's calibrator); None else."""
    if precision != "int8":
        return None
    return "calib" if calibrator else "qdq"


def engine_name(model: str, precision: str, trt_version: str, gpu: str, cc: str, int8: Optional[str] = None,
                profile: Optional[Dict[str, int]] = None) -> str:
    prec = precision + ("-" + int8 if int8 else "")
    prof = ".b%d-%d-%d" % (profile["min"], profile["opt"], profile["max"]) if profile else ""
    return "%s.%s%s.trt%s.%s-sm%s.engine" % (model, prec, prof, trt_version, slug(gpu), cc.replace(".", ""))


def first_dim(src: Path, man: Dict[str, Any]) -> Any:
    """The ONNX input's batch dimension: from the graph when the onnx package is importable, else the manifest."""
    import importlib.util

    if importlib.util.find_spec("onnx") is not None and src.is_file():
        return onnxutil.input_shape(onnxutil.load(src, check=False))[1][0]
    return (((man.get("onnx") or {}).get("input") or {}).get("shape") or ["batch"])[0]


def batch_profile(first: Any, batch: Optional[int], max_batch: int) -> Optional[Dict[str, int]]:
    """The optimization profile of a dynamic-batch ONNX (``first``: its batch dim): min 1, opt N, max N with
    ``--batch N``, else opt 1 and max ``max_batch``; None for a fixed batch (which ``--batch`` must then equal)."""
    if isinstance(first, int):
        if batch is not None and batch != first:
            raise EdgeRuntimeError("--batch %d: this ONNX has a fixed batch of %d; re-export it with edge-runtime export "
                                   "--dynamic-batch" % (batch, first))
        return None
    if batch is not None:
        if batch < 1:
            raise EdgeRuntimeError("--batch %d: expected 1 or more" % batch)
        return {"min": 1, "opt": int(batch), "max": int(batch)}
    if max_batch < 1:
        raise EdgeRuntimeError("--max-batch %d: expected 1 or more" % max_batch)
    return {"min": 1, "opt": 1, "max": int(max_batch)}


def onnx_int8_layout(path: Path, man: Dict[str, Any]) -> Optional[str]:
    """``tensorrt`` (signed, symmetric Q/DQ), ``cpu`` (ONNX Runtime's layout: uint8 activations / int32 bias) or None
    (no INT8). From the graph when the onnx package is importable (it decides), else from the manifest."""
    qv = man.get("quantization")
    q: Dict[str, Any] = qv if isinstance(qv, dict) else {}
    layout: Optional[str] = None
    if man.get("precision") == "int8":
        act = ((q.get("activations") or {}).get("type") if isinstance(q.get("activations"), dict) else None)
        layout = "cpu" if q.get("target") == "cpu" or act == "uint8" else "tensorrt"
    import importlib.util

    if importlib.util.find_spec("onnx") is None or not path.is_file():
        return layout
    model = onnxutil.load(path, check=False)
    inits = {i.name: i for i in model.graph.initializer}
    found = None
    for node in model.graph.node:
        if node.op_type in ("QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"):
            return "cpu"
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            found = found or "tensorrt"
            zp = inits.get(node.input[2]) if len(node.input) > 2 else None
            if zp is not None and zp.data_type == 2:  # TensorProto.UINT8
                return "cpu"
            if node.op_type == "DequantizeLinear" and inits.get(node.input[0]) is not None and \
                    inits[node.input[0]].data_type == 6:  # an INT32 (quantized bias) initializer
                return "cpu"
    return found or layout


def check_source(src: Path, man: Dict[str, Any], precision: str, calibrator: Optional[str]) -> None:
    """What can be refused before TensorRT is imported: the INT8 layout, and INT8 without Q/DQ nor calibrator."""
    if precision != "int8":
        return
    layout = onnx_int8_layout(src, man)
    recorded = (man.get("source") or {}).get("path")
    sibling = src.with_name(src.name.split(".int8-")[0] + ".onnx") if ".int8-" in src.name else None
    fp32 = next((str(c) for c in (recorded, sibling) if c and Path(c).is_file()), recorded or "MODEL.onnx")
    if layout == "cpu":
        trt_file = src.with_name(src.name.replace(".int8-cpu.onnx", ".int8-tensorrt.onnx"))
        have = "build-engine %s (it exists beside it), or make one with: " % trt_file if \
            trt_file != src and trt_file.is_file() else "make it with: "
        raise EdgeRuntimeError("%s is the ONNX Runtime CPU INT8 layout (uint8 activations, int32 bias); TensorRT needs "
                               "signed symmetric Q/DQ: %sedge-runtime quantize %s --target tensorrt" % (src, have, fp32))
    if calibrator is None and layout is None:
        raise EdgeRuntimeError("--precision int8: %s is %s, not a Q/DQ INT8 ONNX; make one with: edge-runtime quantize "
                               "%s --target tensorrt, or pass --calibrator entropy (TensorRT <= 10)" % (
                                   src, man.get("precision"), src))
    if calibrator is not None and man.get("precision") != "fp32":
        raise EdgeRuntimeError("--calibrator entropy calibrates the FP32 ONNX; %s is %s: pass the FP32 export (%s)"
                               % (src, man.get("precision"), fp32))


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
                 command: str = "", batch: Optional[int] = None) -> BuildResult:
    """Build one engine (or the CPU artifacts). ``batch``: the optimization profile min 1 / opt N / max N of a
    dynamic-batch ONNX (default opt 1, max ``max_batch``)."""
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

    s = _source(src)  # the ONNX and its manifest are checked before TensorRT is imported
    man = s["manifest"]
    check_source(src, man, precision, calibrator)
    first = onnxutil.input_shape(s["model"])[1][0]
    profile = batch_profile(first, batch, max_batch)
    cs = None
    if calibrator == "entropy":  # the calibration set too (default: the bundled calib/, from any working directory)
        from .. import calib as calibmod

        cs = calibmod.load(calibmod.resolve(calib, man), man)
    trt = trtmod.import_tensorrt()  # then fails in one line where TensorRT is missing
    gpu, cc = trtmod.device_identity()
    ver = str(trt.__version__)
    method = int8_method(precision, calibrator)
    name = engine_name(man["model"]["name"], precision, ver, gpu, cc, method, profile)
    path = out / name
    _refuse_existing([path], force)
    tc_path = Path(timing_cache) if timing_cache else None
    opts = trtmod.BuildOptions(precision=precision, onnx_precision=str(man.get("precision")), calibrator=calibrator,
                               workspace_mb=workspace_mb, dla_core=dla_core, version_compatible=version_compatible,
                               max_batch=profile["max"] if profile else 1, opt_batch=profile["opt"] if profile else 1,
                               timing_cache=(tc_path.read_bytes() if tc_path and tc_path.is_file() else (b"" if tc_path else None)))
    calib_bs = int(first) if isinstance(first, int) else 32
    batches = None
    calib_info: Optional[Dict[str, Any]] = None
    if cs is not None:
        src_sha = sha256_file(src)
        # beside the engine, never relative to the working directory
        opts.calib_cache_path = out / "calib-cache" / ("%s.trt%s.%s.calib" % (man["model"]["name"], ver, src_sha[:16]))
        batches = cs.batches(man["preprocess"], batch_size=calib_bs)
        calib_info = {"path": str(cs.path), "sha256": cs.meta["sha256"], "images": len(cs), "batch": calib_bs,
                      "cache": str(opts.calib_cache_path)}
    built = trtmod.build_serialized(trt, src.read_bytes(), opts, batches, calib_batch_size=calib_bs)
    write_bytes_atomic(path, built.plan)
    if tc_path is not None and built.timing_cache is not None:
        write_bytes_atomic(tc_path, built.timing_cache)
    rebuild = "edge-runtime build-engine %s --precision %s%s%s" % (src, precision, " --calibrator entropy" if calibrator else "",
                                                               " --batch %d" % batch if batch is not None else "")
    new = mf.new("engine", man["model"], man["dataset"], man["preprocess"], precision,
                 engine={"tensorrt": ver, "gpu": gpu, "compute_capability": cc, "input_shape": built.input_shape,
                         "batch_profile": built.profile,
                         "int8": {"method": method, "from": "Q/DQ ONNX (explicit quantization)" if method == "qdq" else
                                  "FP32 ONNX + IInt8EntropyCalibrator2 (implicit quantization)"} if method else None,
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
