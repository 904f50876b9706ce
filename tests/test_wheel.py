"""The robot install: the wheel, in a fresh venv with only numpy, PyYAML, onnxruntime and opencv-python-headless (no
torch, no checkout), run from an empty folder: `run` (the bundled model, clip and vehicle.yaml), `run synthetic://`,
`predict IMAGE`.

The venv installs offline from a wheelhouse: $EDGE_RUNTIME_WHEELHOUSE, else .whl/ in the checkout (git-ignored),
filled once with `pip download` from the package index when it lacks a wheel. Without either, the test skips and
says so.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROBOT_DEPS = ["numpy", "PyYAML", "onnxruntime", "opencv-python-headless"]
#: what the wheel is built from (copied, so the build leaves nothing in the checkout): setup.py's PACKAGE_DATA
#: sources, and train/ so that the test can see it is left out
SOURCES = ["setup.py", "setup.cfg", "MANIFEST.in", "README.md", "edge_runtime", "train", "deploy/configs", "deploy/demo",
           "engines/bundled", "calib"]

pytestmark = pytest.mark.slow


def _sh(cmd, cwd: Path, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=str(cwd), capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_data/*/", "cache")
    for rel in SOURCES:
        a = ROOT / rel
        if a.is_dir():
            shutil.copytree(str(a), str(src / rel), ignore=ignore)
        else:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(str(a), str(src / rel))
    dist = tmp_path_factory.mktemp("dist")
    p = _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src], src)
    assert p.returncode == 0, p.stderr[-2000:]
    (whl,) = dist.glob("edge_runtime-*.whl")
    return whl


def test_wheel_holds_the_bundled_files_and_no_train_package(wheel):
    with zipfile.ZipFile(str(wheel)) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        top = z.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    assert top == ["edge_runtime"] and not [n for n in names if n.startswith("train/")]
    for kind, rel in (("configs", "deploy/configs"), ("demo", "deploy/demo"), ("bundled", "engines/bundled")):
        want = sorted(f.name for f in (ROOT / rel).iterdir() if f.suffix in (".yaml", ".mp4", ".json", ".onnx"))
        got = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("edge_runtime/_data/%s/" % kind))
        assert got == want, kind
    assert "edge_runtime/_data/calib/cifar10-train-1000.npz" in names
    assert "Requires-Dist: onnxruntime" in meta and 'extra == "onnx"' in meta


def _install(py: Path, wheel: Path, cwd: Path) -> None:
    """wheel + the robot's dependencies into the venv of ``py``, offline from the wheelhouse (filled from the
    package index once, when it lacks a wheel)."""
    house = Path(os.environ.get("EDGE_RUNTIME_WHEELHOUSE") or ROOT / ".whl")
    cmd = [py, "-m", "pip", "install", "-q", "--no-index", "--find-links", house, wheel] + ROBOT_DEPS
    p = _sh(cmd, cwd)
    if p.returncode != 0:
        house.mkdir(parents=True, exist_ok=True)
        got = _sh([sys.executable, "-m", "pip", "download", "-q", "-d", house] + ROBOT_DEPS, cwd)
        if got.returncode != 0:
            pytest.skip("no wheels for %s in %s and the package index is unreachable (%s); set EDGE_RUNTIME_WHEELHOUSE "
                        "to a folder holding them" % (", ".join(ROBOT_DEPS), house, got.stderr.strip()[-160:]))
        p = _sh(cmd, cwd)
    assert p.returncode == 0, p.stderr[-2000:]


def test_robot_install_runs_from_an_empty_folder(wheel, tmp_path):
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    venv = tmp_path / "venv"
    p = _sh([sys.executable, "-m", "venv", venv], tmp_path)
    assert p.returncode == 0, p.stderr
    py, exe = venv / "bin" / "python", venv / "bin" / "edge-runtime"
    _install(py, wheel, tmp_path)
    p = _sh([py, "-m", "pip", "list", "--format=freeze"], tmp_path)
    installed = {line.split("==")[0].lower() for line in p.stdout.split()}
    assert "torch" not in installed and "onnx" not in installed
    work = tmp_path / "robot"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    p = _sh([py, "-c", "import edge_runtime.resources as r, importlib.util as u; print(r.describe()); "
                       "print(u.find_spec('train'), u.find_spec('torch'))"], work, env=env)
    assert p.returncode == 0 and "package data in %s" % venv in p.stdout and "None None" in p.stdout, p.stdout + p.stderr

    # training is the workstation's: its flags on a robot install say what to install, not "unrecognized"
    p = _sh([exe, "train", "--model", "lenet5", "--average-from", "0.5"], work, env=env)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "pip install -e '.[train" in p.stderr and "unrecognized" not in p.stderr, p.stderr

    p = _sh([exe, "run", "--max-frames", "60"], work, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "_data/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx" in p.stdout and "_data/demo/cifar10-demo.mp4" in p.stdout
    assert "60 frames" in p.stdout and (work / "runs" / "vehicle" / "events.jsonl").is_file()

    p = _sh([exe, "run", "synthetic://?rate=30", "--duration", "3"], work, env=env)
    assert p.returncode == 0 and "final: STOP shutdown" in p.stdout, p.stderr[-2000:]

    img = np.zeros((32, 32, 3), np.uint8)
    img[8:24, 8:24] = (30, 160, 220)
    cv2.imwrite(str(work / "photo.png"), img)
    p = _sh([exe, "predict", "photo.png", "--json"], work, env=env)
    assert p.returncode == 0 and '"path": "photo.png"' in p.stdout and '"action": ' in p.stdout, p.stderr[-2000:]
