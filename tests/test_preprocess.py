from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime import preprocess as P
from edge_runtime.errors import EdgeRuntimeError

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _pp(**kw):  # type: ignore[no-untyped-def]
    return mf.make_preprocess(MEAN, STD, **kw)


def test_equals_torchvision_eval_transform() -> None:
    torch = pytest.importorskip("torch")
    from train.data import eval_transform

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    tf = eval_transform(MEAN, STD)
    ref = torch.stack([tf(im) for im in imgs]).numpy()
    one = np.concatenate([P.preprocess(im, _pp()) for im in imgs])
    batch = P.preprocess_batch(imgs, _pp())
    assert one.dtype == np.float32 and one.shape == (8, 3, 32, 32)
    assert np.abs(one - ref).max() <= 1e-5 and np.abs(batch - ref).max() <= 1e-5
    # the same frame as OpenCV delivers it (BGR)
    bgr = np.concatenate([P.preprocess(im[..., ::-1].copy(), _pp(), bgr=True) for im in imgs])
    assert np.abs(bgr - ref).max() <= 1e-5
    assert np.abs(P.preprocess_batch(imgs[..., ::-1], _pp(), bgr=True) - ref).max() <= 1e-5


@pytest.mark.parametrize("interp", ["area", "linear"])
@pytest.mark.parametrize("shape", [(64, 64), (96, 128), (48, 40), (20, 24), (64, 24), (33, 100)])
def test_numpy_fallback_matches_opencv(interp: str, shape: tuple) -> None:
    pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=shape + (3,), dtype=np.uint8)
    a = P.resize(img, (32, 32), interp, use_opencv=True).astype(int)
    b = P.resize(img, (32, 32), interp, use_opencv=False).astype(int)
    assert np.abs(a - b).max() <= 1, (interp, shape)


def test_resize_modes_geometry() -> None:
    # a 64x128 frame: left/right quarters red, centre green
    img = np.zeros((64, 128, 3), np.uint8)
    img[:, :32] = (255, 0, 0)
    img[:, 96:] = (255, 0, 0)
    img[:, 32:96] = (0, 255, 0)
    for use_cv in (False, None):
        crop = P.preprocess(img, _pp(resize="center_crop"), use_opencv=use_cv)[0]
        green = (np.array([0, 1, 0]) - np.array(MEAN)) / np.array(STD)
        assert np.allclose(crop[:, 16, 16], green, atol=1e-4) and np.allclose(crop[:, 16, 0], green, atol=1e-4)
        lb = P.preprocess(img, _pp(resize="letterbox"), use_opencv=use_cv)[0]
        assert np.allclose(lb[:, 0, 16], 0.0, atol=0.02)  # padding = mean colour -> ~0 after normalizing
        assert np.allclose(lb[:, 16, 16], green, atol=1e-4)
        st = P.preprocess(img, _pp(resize="stretch"), use_opencv=use_cv)[0]
        red = (np.array([1, 0, 0]) - np.array(MEAN)) / np.array(STD)
        assert np.allclose(st[:, 16, 1], red, atol=1e-4)


def test_bad_frames() -> None:
    with pytest.raises(EdgeRuntimeError, match="colour frame"):
        P.preprocess(np.zeros((32, 32), np.uint8), _pp())
    with pytest.raises(EdgeRuntimeError, match="uint8"):
        P.preprocess(np.zeros((32, 32, 3), np.float32), _pp())


def test_import_needs_no_heavy_modules() -> None:
    code = ("import sys, edge_runtime.preprocess, edge_runtime.calib, edge_runtime.onnxutil, edge_runtime.cli; "
            "bad = [m for m in ('torch', 'onnxruntime', 'onnx', 'tensorrt', 'cv2') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
