"""Works from any working directory: bundled defaults resolve through the package, the README's commands run from a
temporary folder, the CLI and the API open a source by one rule, and written files honour the umask."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_runtime import resources
from edge_runtime.errors import EdgeRuntimeError

ROOT = Path(__file__).resolve().parents[1]
CLIP = "deploy/demo/cifar10-demo.mp4"
VEHICLE = "deploy/configs/vehicle.yaml"
FP32 = "engines/bundled/mobilenetv2_cifar_x0_5.onnx"


def cli(args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m edge_runtime ARGS`` in ``cwd`` (the checkout importable, as an installed package would be)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "edge_runtime"] + [str(a) for a in args], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------------------ resources
def test_bundled_files_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind, name in (("configs", "vehicle.yaml"), ("demo", "cifar10-demo.mp4"),
                       ("bundled", "mobilenetv2_cifar_x0_5.int8-cpu.onnx"), ("calib", "cifar10-train-1000.npz")):
        p = resources.path(kind, name)
        assert p.is_absolute() and p.is_file() and p.samefile(ROOT / resources.KINDS[kind] / name)
    assert resources.resolve(VEHICLE).samefile(ROOT / VEHICLE)  # a repository path of a bundled file, from elsewhere
    assert resources.resolve("deploy/configs/nope.yaml") == Path("deploy/configs/nope.yaml")  # left for the error
    (tmp_path / "deploy" / "configs").mkdir(parents=True)
    (tmp_path / VEHICLE).write_text("policy: {}\n")
    assert resources.resolve(VEHICLE) == Path(VEHICLE)  # a file in the working directory is the file meant
    with pytest.raises(EdgeRuntimeError, match="missing from this install"):
        resources.path("configs", "nope.yaml")


# ------------------------------------------------------------------------------------------------ run
def test_run_defaults_from_an_empty_directory_and_says_where_outputs_go(tmp_path):
    p = cli(["run", "--max-frames", "30", "--quiet"], tmp_path)
    assert p.returncode == 0, p.stderr
    events = tmp_path / "runs" / "vehicle" / "events.jsonl"
    assert "outputs: events %s" % events in p.stdout and events.is_file()
    assert "30 frames" in p.stdout
    h = cli(["run", "--help"], tmp_path)
    assert "./runs/vehicle/events.jsonl" in " ".join(h.stdout.split())


@pytest.mark.slow
def test_readme_commands_from_a_temporary_directory(tmp_path, fixture_data):
    """The README's export -> quantize -> eval -> run -> predict path and its API example, run elsewhere."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    readme = (ROOT / "README.md").read_text()
    for shown in ("edge-runtime export engines/checkpoints/mobilenetv2_cifar_x0_5.pt --out engines/mnv2.onnx",
                  "edge-runtime quantize engines/mnv2.onnx --target cpu", "edge-runtime eval engines/mnv2.int8-cpu.onnx",
                  'Runtime.from_config("deploy/configs/vehicle.yaml", model="engines/bundled/mobilenetv2_cifar_x0_5.onnx"'):
        assert shown in readme, shown
    p = cli(["export", "engines/checkpoints/mobilenetv2_cifar_x0_5.pt", "--out", "engines/mnv2.onnx",
             "--parity-images", "8"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "engines" / "mnv2.onnx").is_file() and str(tmp_path / "engines" / "mnv2.onnx") in p.stdout
    p = cli(["quantize", "engines/mnv2.onnx", "--target", "cpu", "--calib-images", "64", "--data-dir", fixture_data,
             "--limit", "40"], tmp_path)  # calib/ is found as run finds its defaults: the bundled sets
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "engines" / "mnv2.int8-cpu.onnx").is_file()
    assert "calibration (cpu, minmax): 64 images in" in p.stderr and "accuracy fp32 (onnxruntime): 40 images" in p.stderr
    p = cli(["eval", "engines/mnv2.int8-cpu.onnx", "--data-dir", fixture_data, "--limit", "40", "--latency-iters", "0",
             "--out", "runs/eval"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "eval onnxruntime on cifar10: 40 images in" in p.stderr and (tmp_path / "runs" / "eval").is_dir()
    p = cli(["run", CLIP, "--config", VEHICLE, "--model", "engines/mnv2.int8-cpu.onnx", "--max-frames", "10", "--quiet"],
            tmp_path)
    assert p.returncode == 0 and "10 frames" in p.stdout, p.stderr
    cv2 = pytest.importorskip("cv2")
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), (np.arange(32 * 32 * 3) % 251).astype(np.uint8).reshape(32, 32, 3))
    assert "edge-runtime predict photos/ --topk 3" in readme
    p = cli(["predict", "photos/", "--topk", "3"], tmp_path)
    assert p.returncode == 0 and "photos/a.png: " in p.stdout and "top-3:" in p.stdout, p.stderr
    code = ("from edge_runtime.runtime import Runtime\n"
            "with Runtime.from_config(%r, model=%r, source=%r, overrides={'run.max_frames': 10}) as rt:\n"
            "    n = sum(1 for d in rt.decisions() if d.class_name)\n"
            "print('decided', n, rt.config.source.width)\n" % (VEHICLE, FP32, CLIP))
    api = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert api.returncode == 0 and "decided 10 None" in api.stdout, api.stderr


def test_quantize_fails_before_any_work_without_test_data(tmp_path):
    """README: `quantize engines/mnv2.onnx --target tensorrt` without a dataset is refused at once, naming the fix."""
    pytest.importorskip("onnx")
    for f in ("mobilenetv2_cifar_x0_5.onnx", "mobilenetv2_cifar_x0_5.onnx.json"):
        (tmp_path / f).write_bytes((ROOT / "engines" / "bundled" / f).read_bytes())
    env = dict(os.environ, PYTHONPATH=str(ROOT), EDGE_RUNTIME_DATA=str(tmp_path / "no-data"))
    p = subprocess.run([sys.executable, "-m", "edge_runtime", "quantize", "mobilenetv2_cifar_x0_5.onnx", "--target",
                        "tensorrt"], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--skip-eval" in p.stderr and "calibration" not in p.stderr, p.stderr
    assert not (tmp_path / "mobilenetv2_cifar_x0_5.int8-tensorrt.onnx").exists()


# ------------------------------------------------------------------------------------- one rule for a source
def _no_debounce_config(tmp_path: Path) -> Path:
    """vehicle.yaml (its 320x180 camera included) without time-based debounce and fault timeouts, so decisions depend
    on the frames alone, with the JSONL log in tmp_path."""
    data = yaml.safe_load((ROOT / VEHICLE).read_text())
    data["policy"]["debounce"] = {"trigger_k": 2, "trigger_n": 3, "release_m": 6, "min_hold_ms": 0}
    data["policy"]["timeouts"] = {"source_timeout_ms": 60000, "max_frame_age_ms": 60000, "deadline_ms": 60000}
    data["sinks"] = [{"type": "jsonl", "path": str(tmp_path / "events.jsonl"), "heartbeat_s": 3600}]
    p = tmp_path / "vehicle-frames.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_cli_and_api_make_identical_decisions_on_the_demo_clip(tmp_path):
    from edge_runtime.runtime import Runtime

    cfg = _no_debounce_config(tmp_path)
    p = cli(["run", ROOT / CLIP, "--config", cfg, "--model", ROOT / FP32, "--rate", "0", "--quiet"], tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    via_cli = [(r["frame"], r["action"], r["reason"], r["class"]) for r in rows if r["event"] == "change"]
    with Runtime.from_config(cfg, model=str(ROOT / FP32), source=str(ROOT / CLIP),
                             overrides={"source.rate": 0, "sinks": []}) as rt:
        assert rt.config.source.width is None and rt.config.source.rate is None  # its own size, every frame
        via_api = [(d.frame_index, d.action.name, d.reason.value, d.class_name) for d in rt.decisions() if d.changed]
    assert len(via_cli) > 10 and via_cli == via_api


def test_source_rule_and_overrides(tmp_path):
    from edge_runtime.config import apply_overrides, load_config
    from edge_runtime.runtime import Runtime
    from edge_runtime.sources import source_options

    cfg = load_config(ROOT / VEHICLE)
    cam = cfg.source
    assert (cam.width, cam.height, cam.rate) == (320, 180, 30)
    assert source_options(cam, "csi://1") == cam and source_options(cam, None) == cam  # a camera keeps the config's
    clip = source_options(cam, str(ROOT / CLIP))
    assert (clip.width, clip.height, clip.rate) == (None, None, 30)  # a video: its own size, paced like the camera
    folder = source_options(cam, str(tmp_path))
    assert (folder.width, folder.rate) == (None, None)  # a folder: every image
    assert source_options(cam, str(ROOT / CLIP), explicit=["width", "height"]).width == 320  # unless asked
    assert apply_overrides(cfg, {"source.width": None}).source.height is None  # None clears the pair
    assert apply_overrides(cfg, {"source.rate": 0}).source.rate is None  # rate 0 = unpaced, as --rate 0
    with pytest.raises(EdgeRuntimeError) as exc:
        Runtime.from_config(ROOT / VEHICLE, model=str(ROOT / FP32), source=str(ROOT / CLIP),
                            overrides={"source.colour": "red"})
    assert "source.colour: unknown key" in str(exc.value) and "\n" not in str(exc.value)


# -------------------------------------------------------------------------------------------------- umask
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mode):
    from edge_runtime.fsio import current_umask, write_bytes_atomic, write_json_atomic

    old = os.umask(umask)
    try:
        assert current_umask() == umask
        write_bytes_atomic(tmp_path / "engine.bin", b"x")
        write_json_atomic(tmp_path / "sub" / "engine.bin.json", {"a": 1})
        assert stat.S_IMODE((tmp_path / "engine.bin").stat().st_mode) == mode
        assert stat.S_IMODE((tmp_path / "sub" / "engine.bin.json").stat().st_mode) == mode
        os.chmod(str(tmp_path / "engine.bin"), 0o640)
        write_bytes_atomic(tmp_path / "engine.bin", b"y")  # a replaced file keeps its mode
        assert stat.S_IMODE((tmp_path / "engine.bin").stat().st_mode) == 0o640
        assert (tmp_path / "engine.bin").read_bytes() == b"y"
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    finally:
        os.umask(old)
