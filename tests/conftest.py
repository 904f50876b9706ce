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

CLASSES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def make_checkpoint(path: Path, name: str = "lenet5", dataset: str = "cifar10", num_classes: int = 10, seed: int = 0) -> Path:
    import torch

    from edge_runtime import manifest as mf
    from train import checkpoint
    from train.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, num_classes=num_classes)
    classes = CLASSES10 if num_classes == 10 else ["c%02d" % i for i in range(num_classes)]
    man = mf.new("checkpoint", model={"name": name, "kwargs": {}}, dataset=mf.make_dataset(dataset, classes),
                 preprocess=mf.make_preprocess((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
                 accuracy={"top1": 10.0, "top1_first1000": None, "split": "test", "n": 100, "command": "test fixture"})
    checkpoint.save(path, {"model": model.state_dict(), "manifest": man, "config": {"model": name}})
    return path


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


def run_cli(args, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from edge_runtime.cli import main

    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err
