"""Checkpoint -> ONNX with its manifest, and a numeric parity check against PyTorch.

``export_onnx`` writes ``X.onnx`` (opset >= 17, input ``input`` float32 NCHW, output ``logits``,
optionally a dynamic batch axis) through the TorchScript exporter (``dynamo=False``: stable for
these conv nets and it folds BatchNorm into the convolutions), runs ``onnx.checker``, embeds the
manifest in the ONNX metadata, writes the file atomically and then the sidecar ``X.onnx.json``
with the file's sha256. The parity check compares ONNX Runtime with PyTorch on real CIFAR test
images (with a data dir) or on seeded random images, through the runtime's own preprocessing.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from edge_runtime import manifest as mf
from edge_runtime import onnxutil
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file
from edge_runtime.preprocess import preprocess_batch
from train import checkpoint
from train.models import create_model

MIN_OPSET = 17
PARITY_GOAL = {"top1_agreement": 100.0, "max_abs_diff": 1e-4}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sidecar: Path
    manifest: Dict[str, Any]


def default_out(ck_manifest: Dict[str, Any]) -> Path:
    return Path("engines") / ("%s.onnx" % ck_manifest["model"]["name"])


def _parity_images(man: Dict[str, Any], n: int, data_dir: Optional[Path], seed: int = 0) -> Dict[str, Any]:
    if data_dir is not None:
        from edge_runtime.cifar import load_split

        split = load_split(man["dataset"]["name"], "test", data_dir)
        return {"images": split.images[:n], "source": "%s test images 0..%d" % (split.dataset, min(n, len(split)) - 1)}
    h, w = man["preprocess"]["size"]
    rng = np.random.default_rng(seed)
    return {"images": rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8), "source": "random uint8 images (seed %d)" % seed}


def parity(model: torch.nn.Module, onnx_bytes: bytes, man: Dict[str, Any], n: int, data_dir: Optional[Path]) -> Dict[str, Any]:
    """Max abs logit difference and top-1 agreement of ONNX Runtime vs PyTorch on ``n`` images."""
    import onnxruntime as ort

    src = _parity_images(man, n, data_dir)
    x = preprocess_batch(src["images"], man["preprocess"])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
    dims = sess.get_inputs()[0].shape
    if isinstance(dims[0], int):  # static batch: one image at a time
        got = np.concatenate([sess.run(["logits"], {"input": x[i:i + 1]})[0] for i in range(len(x))])
    else:
        got = np.concatenate([sess.run(["logits"], {"input": x[i:i + 256]})[0] for i in range(0, len(x), 256)])
    diff = float(np.abs(got - ref).max())
    agree = float((got.argmax(1) == ref.argmax(1)).mean() * 100.0)
    return {"images": int(len(x)), "source": src["source"], "max_abs_diff": diff, "top1_agreement": agree,
            "goal": dict(PARITY_GOAL), "passed": bool(agree >= PARITY_GOAL["top1_agreement"] and diff <= PARITY_GOAL["max_abs_diff"]),
            "runtime": "onnxruntime %s CPU vs torch %s" % (ort.__version__, torch.__version__)}


def export_onnx(ck_path: Path, out: Optional[Path] = None, opset: int = MIN_OPSET, dynamic_batch: bool = False,
                data_dir: Optional[Path] = None, parity_images: int = 256, force: bool = False,
                command: str = "") -> ExportResult:
    """Export a checkpoint to ONNX with an embedded and a sidecar manifest; returns paths and manifest."""
    import onnx

    if opset < MIN_OPSET:
        raise EdgeRuntimeError("--opset %d is too old; TensorRT 8.5+ and this exporter need opset %d or newer" % (opset, MIN_OPSET))
    if parity_images < 1:
        raise EdgeRuntimeError("--parity-images must be at least 1; got %d" % parity_images)
    ck = checkpoint.load(ck_path)
    src_man = mf.validate(ck["manifest"], str(ck_path))
    out = Path(out) if out is not None else default_out(src_man)
    if out.suffix != ".onnx":
        raise EdgeRuntimeError("--out %s: expected a path ending in .onnx" % out)
    for p in (out, mf.sidecar_path(out)):
        if p.exists() and not force:
            raise EdgeRuntimeError("%s already exists; choose another --out or pass --force to replace it (nothing was "
                                   "overwritten)" % p)
    name = src_man["model"]["name"]
    model = create_model(name, num_classes=src_man["dataset"]["num_classes"], **src_man["model"].get("kwargs", {}))
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, KeyError) as exc:
        raise EdgeRuntimeError("%s: weights do not fit model %s (%s); the checkpoint is inconsistent" %
                               (ck_path, name, str(exc).splitlines()[0][:160])) from None
    model.eval()
    h, w = src_man["preprocess"]["size"]
    dummy = torch.zeros(1, 3, int(h), int(w))
    buf = io.BytesIO()
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (dummy,), buf, dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["logits"], dynamic_axes=axes, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    par = parity(model, buf.getvalue(), src_man, parity_images, data_dir)

    acc = dict(src_man.get("accuracy") or {})
    if acc:
        acc["measured_with"] = "PyTorch, on the source checkpoint (the ONNX parity check above ties this file to it)"
    keep = {k: v for k, v in src_man.items() if k not in ("format", "kind", "model", "dataset", "preprocess", "precision",
                                                           "created", "host", "sha256", "accuracy")}
    man = mf.new(
        "onnx", model=src_man["model"], dataset=src_man["dataset"], preprocess=src_man["preprocess"], precision="fp32",
        accuracy=acc or None,
        source={"kind": "checkpoint", "path": str(ck_path), "sha256": sha256_file(ck_path)},
        source_sha256=sha256_file(ck_path),
        onnx={"opset": opset, "input": {"name": "input", "shape": ["batch" if dynamic_batch else 1, 3, int(h), int(w)],
                                       "dtype": "float32", "layout": "NCHW"},
              "output": {"name": "logits", "shape": ["batch" if dynamic_batch else 1, src_man["dataset"]["num_classes"]]},
              "dynamic_batch": bool(dynamic_batch), "exporter": "torch.onnx TorchScript (dynamo=False), torch %s" % torch.__version__},
        opset=opset, parity=par, command=command, checkpoint_info=keep,
    )
    onnxutil.save(proto, out, man)
    side = mf.sidecar_path(out)
    return ExportResult(out, side, mf.read(side))
