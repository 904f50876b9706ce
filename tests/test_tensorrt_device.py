"""On a device only (skipped here with the reason): the real CUDA buffers, page-locked copies, events and a CUDA
graph through cuda-python; the bundled model's engines built with the real TensorRT and compared with ONNX
Runtime; the split timing. `edge-runtime doctor` runs these (pytest -m "tensorrt or gpu"). No torch needed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_runtime import resources
from edge_runtime.backends import load
from edge_runtime.engine import build as B
from edge_runtime.engine import cuda as C

MODEL = "mobilenetv2_cifar_x0_5"


@pytest.mark.gpu
def test_real_cuda_pinned_copies_events_and_graph() -> None:
    cu = C.get()
    if cu.kind != "cuda-python":
        pytest.skip("events and graphs need cuda-python (this machine has %s)" % cu.kind)
    n = 1 << 20
    src, dst = cu.host_empty((n,), np.float32), cu.host_empty((n,), np.float32)
    src[:] = np.arange(n, dtype=np.float32)
    buf, stream = cu.malloc(src.nbytes), cu.stream()
    ev = [cu.event(), cu.event()]
    try:
        cu.record(ev[0], stream)
        cu.htod(buf, src, stream)
        cu.dtoh(dst, buf, stream)
        cu.record(ev[1], stream)
        cu.sync(stream)
        assert np.array_equal(dst, src) and cu.elapsed_ms(ev[0], ev[1]) > 0
        graph, exe = cu.capture_graph(stream, lambda: (cu.htod(buf, src, stream), cu.dtoh(dst, buf, stream)))
        src *= 2
        dst[:] = 0
        cu.graph_launch(exe, stream)
        cu.sync(stream)
        assert np.array_equal(dst, src)  # the replayed graph copied the new bytes both ways
        cu.graph_destroy(graph, exe)
    finally:
        for e in ev:
            cu.event_destroy(e)
        cu.free(buf)
        cu.stream_destroy(stream)
        cu.host_free(src)
        cu.host_free(dst)


def _calib_images(n: int = 200) -> np.ndarray:
    from edge_runtime.calib import load as load_calib

    return load_calib(resources.path("calib", "cifar10-train-1000.npz")).images[:n]


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("precision,src,min_agree", [("fp32", MODEL + ".onnx", 0.99), ("fp16", MODEL + ".onnx", 0.98),
                                                     ("int8", MODEL + ".int8-tensorrt.onnx", 0.90)])
def test_bundled_engine_matches_onnxruntime(tmp_path: Path, precision: str, src: str, min_agree: float) -> None:
    from edge_runtime.engine.trt import import_tensorrt, version_of
    from edge_runtime.evaluate import predict

    if precision == "fp16" and version_of(import_tensorrt()) >= (11, 0):
        src = MODEL + ".fp16.onnx"
    onnx = resources.path("bundled", src)
    eng = B.build_engine(onnx, precision, out_dir=tmp_path).paths[0]
    imgs = _calib_images()
    with load(eng) as trt_runner:
        got = predict(trt_runner, imgs, trt_runner.manifest["preprocess"])
        split = trt_runner.time_split(np.zeros([1] + list(trt_runner.input_shape[1:]), np.float32), 20, False) \
            if trt_runner.cu.kind == "cuda-python" else None
    with load(resources.path("bundled", MODEL + ".onnx")) as ref_runner:
        ref = predict(ref_runner, imgs, ref_runner.manifest["preprocess"])
    assert (got.argmax(1) == ref.argmax(1)).mean() >= min_agree
    if split is not None:
        assert split["compute_ms"] > 0 and split["h2d_ms"] >= 0 and split["host_memory"] == "page-locked"
