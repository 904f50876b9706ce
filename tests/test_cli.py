"""The CLI contract: one entry point, helpful --help, one-line errors, light imports, Python 3.8."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.cli import COMMANDS

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help_with_examples(command, capsys):
    rc, out, _ = run_cli([command, "--help"], capsys)
    assert rc == 0 and "usage: edge-runtime " + command in out
    assert "edge-runtime " + command in out.split("usage:", 1)[1].split("\n", 1)[1], "help should show an example"


def test_top_level_help_lists_every_subcommand(capsys):
    rc, out, _ = run_cli(["--help"], capsys)
    assert rc == 0 and all(c in out for c in COMMANDS)


def test_unknown_flags_are_rejected_in_one_line(capsys):
    rc, _, err = run_cli(["models", "--frobnicate"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--frobnicate" in err and "--help" in err


def test_import_and_help_need_no_torch_tensorrt_or_onnxruntime():
    code = ("import sys, edge_runtime, edge_runtime.manifest, edge_runtime.cli as c; c.build_parser(); "
            "heavy = [m for m in ('torch', 'tensorrt', 'onnxruntime', 'cv2', 'pycuda', 'matplotlib') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_console_script_runs():
    exe = shutil.which("edge-runtime") or str(Path(sys.executable).parent / "edge-runtime")
    if not os.path.exists(exe):
        pytest.skip("package not installed as a console script")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("edge-runtime ")


def test_robot_package_runs_on_python_3_8(tmp_path):
    pytest.importorskip("vermin")
    exe = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert exe, "vermin is importable but its command is missing"
    cmd = [exe, "-q", "--no-tips", "--violations", "-t=3.8-", "--eval-annotations", "--no-parse-comments"]
    # the check can fail: 3.9+ code (a dict[...] annotation evaluated at runtime, str.removeprefix) is reported
    bad = tmp_path / "py39.py"
    bad.write_text("def f(x: dict[str, int]) -> str:\n    return 'ab'.removeprefix('a')\n")
    proc = subprocess.run(cmd + [str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "removeprefix" in proc.stdout, proc.stdout + proc.stderr
    proc = subprocess.run(cmd + ["edge_runtime"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, "Python 3.8 violations in edge_runtime/:\n" + proc.stdout + proc.stderr


def test_robot_package_type_checks():
    """mypy over all of edge_runtime/ (the TensorRT code against tensorrt-stubs); config in setup.cfg."""
    pytest.importorskip("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy", "edge_runtime"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
