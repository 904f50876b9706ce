"""Shared tiny fixtures (session-scoped): fixture CIFAR-10/100 datasets in the official layout, a lenet5
checkpoint and its ONNX export, the real data when $EDGE_RUNTIME_DATA has it, and an in-process CLI runner.

Shared by every test module: add fixtures here, do not replace the file."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

try:  # the training side is optional for the robot-only tests
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

from .helpers import CLASSES10, make_checkpoint, run_cli  # noqa: F401 - re-exported for the test modules


@pytest.fixture(scope="session")
def fixture_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.data import write_fixture

    root = tmp_path_factory.mktemp("data")
    write_fixture(root, "cifar10", n_train=300, n_test=120)
    return root


@pytest.fixture(scope="session")
def lenet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "lenet5.pt")


@pytest.fixture(scope="session")
def lenet_onnx(tmp_path_factory: pytest.TempPathFactory, lenet_ckpt: Path, fixture_data: Path) -> Path:
    from train.export import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "lenet5.onnx"
    export_onnx(lenet_ckpt, out, dynamic_batch=True, data_dir=fixture_data, parity_images=32)
    return out


@pytest.fixture(scope="session")
def real_data() -> Path:
    d = os.environ.get("EDGE_RUNTIME_DATA")
    if not d or not (Path(d) / "cifar-10-batches-py").is_dir():
        pytest.skip("set EDGE_RUNTIME_DATA to a folder with cifar-10-batches-py for real-data tests")
    return Path(d)


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> Path:
    from train.data import write_fixture

    root = tmp_path_factory.mktemp("cifar10")
    write_fixture(root, "cifar10", n_train=640, n_test=200, seed=0)
    return root


@pytest.fixture(scope="session")
def cifar100_dir(tmp_path_factory) -> Path:
    from train.data import write_fixture

    root = tmp_path_factory.mktemp("cifar100")
    write_fixture(root, "cifar100", n_train=400, n_test=200, seed=1)
    return root


def _no_camera() -> str:
    """Why camera tests cannot run here ('' when a V4L2 device exists)."""
    import glob

    return "" if glob.glob("/dev/video*") else "no camera: no /dev/video* device on this machine"


def _no_tensorrt() -> str:
    """Why TensorRT tests cannot run here ('' when ``import tensorrt`` gives the real module)."""
    from edge_runtime.engine.trt import HOW_TO_GET, import_tensorrt
    from edge_runtime.errors import EdgeRuntimeError

    try:
        import_tensorrt()
    except EdgeRuntimeError as exc:
        return "no TensorRT: %s" % str(exc).replace("; " + HOW_TO_GET, "")
    return ""


def _no_gpu() -> str:
    """Why CUDA GPU tests cannot run here ('' with an NVIDIA dGPU device node, or on a Jetson: its iGPU)."""
    import glob

    jetson = glob.glob("/dev/nvhost-*gpu*") or glob.glob("/dev/nvgpu*") or os.path.isfile("/etc/nv_tegra_release")
    return "" if glob.glob("/dev/nvidia[0-9]*") or jetson else \
        "no CUDA GPU: no /dev/nvidia* device and not a Jetson (no /etc/nv_tegra_release) on this machine"


#: marker -> a function giving the reason to skip ('' = run)
MARKER_SKIPS = {"camera": _no_camera, "tensorrt": _no_tensorrt, "gpu": _no_gpu}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests whose marker's requirement is absent here, with the reason (see MARKER_SKIPS)."""
    for name, why_not in MARKER_SKIPS.items():
        if item.get_closest_marker(name) is not None:
            reason = why_not()
            if reason:
                pytest.skip(reason)
