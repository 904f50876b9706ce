"""INT8 and FP16 ONNX from an FP32 export, with ONNX Runtime's quantization tools, and their measured accuracy.

Targets:
  tensorrt  explicit quantization TensorRT accepts: QDQ, signed int8 activations and weights, symmetric (zero
            points 0), weights per-channel on axis 0, activations per-tensor, weights kept as float with a
            Q/DQ pair (as NVIDIA's own Q/DQ exporters do; every TensorRT >= 8.5 parses it), bias not
            quantized, Softmax and the model output left in float.
  cpu       what ONNX Runtime's CPU kernels run fastest: QDQ with uint8 (asymmetric) activations and int8
            symmetric per-channel weights; ORT fuses it into QLinearConv/QGemm. Weights use 7 bits
            ([-64, 64], ``reduce_range``): on x86 CPUs without VNNI, ORT's fused u8s8 kernels add pairs of
            uint8 x int8 products in int16 (vpmaddubsw), which saturates with full 8-bit weights (the bundled
            build lost 3 points of top-1 on an AVX2 CPU that way); 7-bit weights cannot overflow it, so one
            file gives the same answers with and without VNNI (ONNX Runtime's quantize_static docs recommend
            ``reduce_range=True`` for CPUs without VNNI).
  fp16      FP16 weights and compute, float32 input and output (TensorRT 11 has no FP16 builder flag).

Calibration images come from a calibration set (``calib/``, :mod:`edge_runtime.calib`) through the
model manifest's preprocessing. Each artifact gets a manifest with its accuracy measured by ONNX
Runtime on the test split and the drop against the FP32 file measured the same way.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from . import calib as calibmod
from . import manifest as mf
from . import onnxutil
from .errors import EdgeRuntimeError
from .fsio import PathLike, check_writable, sha256_file
from .progress import Progress

TARGETS = ("tensorrt", "cpu", "fp16")
METHODS = ("minmax", "entropy", "percentile")
DEFAULT_METHOD = {"tensorrt": "percentile", "cpu": "minmax"}
SUFFIX = {"tensorrt": ".int8-tensorrt.onnx", "cpu": ".int8-cpu.onnx", "fp16": ".fp16.onnx"}
#: the int8 weight range with and without ``reduce_range`` (onnxruntime.quantization.quant_utils.get_qmin_qmax_for_qType)
WEIGHT_RANGE = {False: [-127, 127], True: [-64, 64]}
REDUCE_RANGE_WHY = ("7-bit weights: ONNX Runtime's u8s8 kernels on x86 CPUs without VNNI (AVX2/AVX-512 without VNNI) sum "
                    "pairs of uint8 x int8 products in int16 (vpmaddubsw), which saturates with 8-bit weights; "
                    "quantize_static's docs recommend reduce_range=True there; correct with and without VNNI")


@dataclass(frozen=True)
class QuantResult:
    path: Path
    manifest: Dict[str, Any]


def default_out(src: Path, target: str) -> Path:
    stem = src.name[:-len(".onnx")] if src.name.endswith(".onnx") else src.stem
    return src.with_name(stem + SUFFIX[target])


class _Reader:
    """An onnxruntime CalibrationDataReader over preprocessed calibration batches."""

    def __init__(self, batches: Iterator[np.ndarray], input_name: str) -> None:
        self._it = batches
        self._name = input_name

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        b = next(self._it, None)
        return None if b is None else {self._name: b}

    def rewind(self) -> None:  # pragma: no cover - not used by quantize_static's single pass
        raise NotImplementedError


def _counted(batches: Iterator[np.ndarray], bar: Progress) -> Iterator[np.ndarray]:
    for b in batches:
        yield b
        bar.update(len(b))


def _int8(src: Path, dst: Path, target: str, method: str, cs: calibmod.CalibSet, man: Dict[str, Any],
          limit: Optional[int], input_name: str, batch: Optional[int], progress: bool = True) -> Dict[str, Any]:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(src))
    ops = sorted({n.op_type for n in model.graph.node} - {"Softmax"})
    calib_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                    "percentile": CalibrationMethod.Percentile}[method]
    if target == "tensorrt":
        act, wt = QuantType.QInt8, QuantType.QInt8
        extra: Dict[str, Any] = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                 "AddQDQPairToWeight": True, "OpTypesToExcludeOutputQuantization": ["Gemm", "MatMul", "Softmax"],
                                 "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}}
    else:
        act, wt = QuantType.QUInt8, QuantType.QInt8
        extra = {"ActivationSymmetric": False, "WeightSymmetric": True}
    # cpu: 7-bit weights, so that the u8s8 int16 pair sums of non-VNNI x86 kernels cannot saturate (module docstring);
    # tensorrt: full 8 bits (TensorRT accumulates in int32 on the device; on CPU that file is only a reference)
    reduce_range = target == "cpu"
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    n_cal = len(cs) if limit is None else min(limit, len(cs))

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    with tempfile.TemporaryDirectory(prefix="edge-runtime-quant-") as tmp:
        work = src
        calib_batch = batch or max(b for b in range(1, 33) if n_cal % b == 0)
        if batch is not None:  # a fixed-batch export: calibrate a dynamic-batch copy 32 images at a time if it runs
            dyn = _with_batch(model, "batch")
            if _runs_batched(dyn, input_name, man):
                # equal batches: ORT's histogram collectors stack per-batch outputs and reject a short last batch
                work, calib_batch = Path(tmp) / "dyn.onnx", max(b for b in range(1, 33) if n_cal % b == 0)
                onnx.save(dyn, str(work))
        prep = Path(tmp) / "prep.onnx"
        tmp_out = Path(tmp) / "q.onnx"
        bar = Progress(n_cal, "calibration (%s, %s)" % (target, method), enabled=progress)
        reader = Reader(_counted(cs.batches(man["preprocess"], batch_size=calib_batch, limit=n_cal), bar), input_name)
        with bar, contextlib.redirect_stdout(io.StringIO()):  # the calibrators print progress to stdout
            quant_pre_process(str(work), str(prep), skip_symbolic_shape=True)
            quantize_static(str(prep), str(tmp_out), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=ops,
                            per_channel=True, reduce_range=reduce_range, activation_type=act, weight_type=wt,
                            calibrate_method=calib_method, extra_options=extra)
        q = onnx.load(str(tmp_out))
    if batch is not None and work != src:
        q = _with_batch(q, batch)
    onnx.checker.check_model(q)
    details = {
        "target": target, "method": method, "format": "QDQ", "tool": _ort_version(),
        "activations": {"type": "int8" if target == "tensorrt" else "uint8", "symmetric": target == "tensorrt",
                        "granularity": "per-tensor"},
        "weights": {"type": "int8", "symmetric": True, "granularity": "per-channel", "axis": 0,
                    "stored": "float with Q/DQ pair" if target == "tensorrt" else "int8 with DequantizeLinear",
                    "range": WEIGHT_RANGE[reduce_range], "reduce_range": reduce_range,
                    "why": REDUCE_RANGE_WHY if reduce_range else "TensorRT accumulates int8 products in int32"},
        "bias_quantized": target != "tensorrt", "float_ops": ["Softmax"] + (["graph output"] if target == "tensorrt" else []),
        "extra_options": {k: v for k, v in extra.items()},
        "calibration": {"path": str(cs.path), "sha256": cs.meta["sha256"], "images": n_cal, "dataset": cs.meta["dataset"],
                        "split": cs.meta["split"], "seed": cs.meta["seed"]},
    }
    return {"model": q, "details": details}


def _with_batch(model: Any, batch: Any) -> Any:
    """A copy of ``model`` whose input and output batch axis is ``batch`` (an int or a symbolic name)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.value_info[:]
    for v in list(m.graph.input) + list(m.graph.output):
        d = v.type.tensor_type.shape.dim[0]
        if isinstance(batch, int):
            d.dim_value = batch
        else:
            d.dim_param = batch
    return m


def _runs_batched(model: Any, input_name: str, man: Dict[str, Any]) -> bool:
    """Whether ``model`` runs on a batch of 2 (no batch-1 constant baked into a Reshape)."""
    from .backends.onnxrt import session

    try:
        h, w = man["preprocess"]["size"]
        out = session(model.SerializeToString()).run(None, {input_name: np.zeros((2, 3, int(h), int(w)), np.float32)})[0]
        return bool(out.shape[0] == 2)
    except Exception:  # any failure means: calibrate at the export's own batch size
        return False


def _fp16(src: Path) -> Dict[str, Any]:
    import onnx

    try:
        from onnxconverter_common.float16 import convert_float_to_float16  # type: ignore[import-not-found]
        tool = "onnxconverter_common.float16"
    except ImportError:
        from onnxruntime.transformers.float16 import convert_float_to_float16
        tool = "onnxruntime.transformers.float16"
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    _toposort(model.graph)  # the converter appends its input Casts at the end of the node list
    onnx.checker.check_model(model)
    return {"model": model, "details": {"target": "fp16", "tool": "%s (%s)" % (tool, _ort_version()), "keep_io_types": True,
                                        "weights": "float16", "compute": "float16", "io": "float32"}}


def _toposort(graph: Any) -> None:
    """Reorder ``graph.node`` so that every node comes after the producers of its inputs (Kahn's algorithm)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    nodes = list(graph.node)
    ordered: List[Any] = []
    while nodes:
        ready = [n for n in nodes if all(i in known for i in n.input)]
        if not ready:
            raise EdgeRuntimeError("the FP16 graph has a cycle or a dangling input; report this with the model file")
        for n in ready:
            ordered.append(n)
            known.update(n.output)
        nodes = [n for n in nodes if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def _ort_version() -> str:
    import onnxruntime

    return "onnxruntime %s" % onnxruntime.__version__


def measure(path_or_bytes: Any, man: Dict[str, Any], limit: Optional[int], data_dir: Optional[PathLike],
            split: Any = None, desc: str = "accuracy", progress: bool = True) -> Dict[str, Any]:
    """Top-1 of an ONNX model on the manifest's test split with ONNX Runtime (``split``: already loaded)."""
    from .backends.onnxrt import OnnxRuntimeRunner
    from .cifar import load_split
    from .evaluate import predict, summarize

    if split is None:
        split = load_split(man["dataset"]["name"], "test", data_dir)
    n = len(split) if limit is None else min(int(limit), len(split))
    with OnnxRuntimeRunner(path_or_bytes) as r, Progress(n, desc, enabled=progress) as bar:
        logits = predict(r, split.images[:n], man["preprocess"], progress=bar)
    s = summarize(logits, split.labels[:n], mf.class_names(man))
    return {"top1": s["top1"], "top1_first1000": s["top1_first1000"], "n": n, "split": "test", "measured_with": "onnxruntime CPU"}


def quantize(onnx_path: PathLike, target: str, method: Optional[str] = None, calib: Optional[PathLike] = None,
             limit: Optional[int] = None, data_dir: Optional[PathLike] = None, out: Optional[PathLike] = None,
             force: bool = False, evaluate: bool = True, calib_limit: Optional[int] = None, command: str = "",
             progress: bool = True) -> QuantResult:
    """Make the ``target`` artifact from an FP32 ONNX export; returns its path and manifest.

    Every input is checked before the long work starts: the output place is writable, the calibration set exists and
    fits the model, the test split loads (unless ``evaluate`` is False). ``calib`` defaults to the calibration sets
    that come with edge-runtime (calib/ of the checkout or the installed package, :mod:`edge_runtime.resources`),
    found the same from any working directory. ``progress``: the calibration and accuracy passes report on stderr."""
    if target not in TARGETS:
        raise EdgeRuntimeError("--target %r: expected one of %s" % (target, ", ".join(TARGETS)))
    if target == "fp16" and method is not None:
        raise EdgeRuntimeError("--method applies to INT8 targets (tensorrt, cpu), not fp16")
    method = method or DEFAULT_METHOD.get(target)
    if method is not None and method not in METHODS:
        raise EdgeRuntimeError("--method %r: expected one of %s" % (method, ", ".join(METHODS)))
    src = Path(onnx_path)
    model, man = onnxutil.load_checked(src)
    input_name, dims = onnxutil.input_shape(model)
    if man is None:
        raise EdgeRuntimeError("%s has no manifest (sidecar or embedded), so its preprocessing is unknown; export it with "
                               "edge-runtime export" % src)
    if man.get("precision") != "fp32":
        raise EdgeRuntimeError("%s is already %s; quantize the FP32 export" % (src, man.get("precision")))
    dst = Path(out) if out is not None else default_out(src, target)
    if dst.resolve() == src.resolve():
        raise EdgeRuntimeError("--out %s is the input file; choose another output" % dst)
    for p in (dst, mf.sidecar_path(dst)):
        if p.exists() and not force:
            raise EdgeRuntimeError("%s already exists; pass --force to replace it (nothing was overwritten)" % p)
        check_writable(p, "--out")
    cs = None
    if target != "fp16":
        cs = calibmod.load(calibmod.resolve(calib, man), man)  # None: the bundled sets, from any working directory
    split = None
    if evaluate:  # before the work: a missing dataset is found now, not after the calibration
        from .cifar import load_split

        try:
            split = load_split(man["dataset"]["name"], "test", data_dir)
        except EdgeRuntimeError as exc:
            raise EdgeRuntimeError("%s (quantize measures the new file's accuracy on the test split; pass --data-dir, "
                                   "or --skip-eval to quantize without measuring)" % exc) from None
        if limit is not None and limit < 1:
            raise EdgeRuntimeError("--limit %d: expected at least 1 test image" % limit)
    if cs is None:
        made = _fp16(src)
    else:
        made = _int8(src, dst, target, str(method), cs, man, calib_limit, input_name,
                     dims[0] if isinstance(dims[0], int) else None, progress)
    acc: Optional[Dict[str, Any]] = None
    if evaluate:
        q_bytes = made["model"].SerializeToString()
        label = "fp16" if target == "fp16" else "int8-%s" % target
        got = measure(q_bytes, man, limit, data_dir, split, "accuracy %s (onnxruntime)" % label, progress)
        ref = measure(str(src), man, limit, data_dir, split, "accuracy fp32 (onnxruntime)", progress)
        acc = dict(got)
        acc.update(command=command, fp32_onnx={"top1": ref["top1"], "top1_first1000": ref["top1_first1000"], "path": str(src)},
                   drop_vs_fp32=ref["top1"] - got["top1"],
                   drop_vs_fp32_first1000=(None if ref["top1_first1000"] is None else ref["top1_first1000"] - got["top1_first1000"]),
                   note="first1000 = official test images 0-999; drop = FP32 ONNX top-1 minus this file's, same images")
    keep = {k: v for k, v in man.items() if k in ("onnx", "opset", "parity")}
    new = mf.new("onnx", man["model"], man["dataset"], man["preprocess"], "fp16" if target == "fp16" else "int8",
                 accuracy=acc, source={"kind": "onnx", "path": str(src), "sha256": sha256_file(src), "precision": "fp32"},
                 source_sha256=sha256_file(src), quantization=made["details"], command=command,
                 fp32_export={k: v for k, v in keep.items()}, opset=man.get("opset"))
    if not evaluate:
        new["accuracy"] = None
    saved = onnxutil.save(made["model"], dst, new)
    return QuantResult(dst, saved)


def graph_report(model: Any) -> Dict[str, List[Any]]:
    """Q/DQ facts of a quantized graph (for tests and `quantize` output): zero points, scale shapes, axes."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    rows: List[Any] = []
    for n in model.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            axis = [a.i for a in n.attribute if a.name == "axis"]
            scale = inits.get(n.input[1])
            zp = inits.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            rows.append({"op": n.op_type, "input": n.input[0], "output": n.output[0],
                         "scale_shape": None if scale is None else list(scale.shape), "axis": axis[0] if axis else None,
                         "zp_dtype": None if zp is None else str(zp.dtype),
                         "zp_all_zero": None if zp is None else bool(np.all(zp == 0)),
                         "weight": n.input[0] in inits})
    return {"qdq": rows}
