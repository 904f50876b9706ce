"""edge-runtime predict IMAGE|FOLDER|GLOB: every image reported with class, top-k and the rules' action; and `run` on an
image folder reads every image (none dropped)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_runtime.errors import EdgeRuntimeError

from .conftest import run_cli

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")


def _images(folder: Path, n: int = 3, size: int = 40) -> list:
    """n different BGR images (a flat colour plus a seeded pattern), written as PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        img = np.full((size, size, 3), (40 * i, 200 - 50 * i, 90), np.uint8)
        img[::2] = rng.integers(0, 256, (size // 2, size, 3), dtype=np.uint8)
        p = folder / ("img%d.png" % i)
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


def test_predict_reports_every_image_with_topk_and_the_loops_own_decision(tmp_path, capsys):
    """predict's class and confidence are what the runtime's loop computes for a frame holding the same image, and
    its action is what that frame gives with debounce off (trigger 1 of 1, no hold)."""
    from edge_runtime.cli.run import default_model
    from edge_runtime.config import config_to_dict, load_config, parse_config
    from edge_runtime.runtime import Runtime

    paths = _images(tmp_path / "imgs", 3)
    rc, out, err = run_cli(["predict", tmp_path / "imgs", "--json", "--topk", "3"], capsys)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in paths]  # every image, in order
    for r in rows:
        probs = [p for _, p in r["topk"]]
        assert len(r["topk"]) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        assert (r["class_name"], r["confidence"]) == tuple(r["topk"][0])
        assert r["action"] in ("STOP", "SLOW", "GO")

    data = config_to_dict(load_config(Path(__file__).parents[1] / "deploy" / "configs" / "vehicle.yaml"))
    data["policy"]["debounce"] = {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0}
    data["policy"]["timeouts"].update(max_frame_age_ms=60000, deadline_ms=60000, source_timeout_ms=60000)
    data["sinks"] = []
    cfg = parse_config(data, "vehicle-no-debounce")
    with Runtime.from_config(cfg, model=str(default_model(None)), source=str(tmp_path / "imgs")) as rt:
        got = [d for d in rt.decisions() if d.class_name is not None]
    assert len(got) == 3
    for d, r in zip(got, rows):
        assert d.class_name == r["class_name"] and abs(d.confidence - r["confidence"]) < 1e-5
        assert d.action.name == r["action"] and d.rule == r["rule"]


def test_predict_plain_output_glob_and_a_bad_image(tmp_path, capsys):
    _images(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    rc, out, err = run_cli(["predict", str(tmp_path / "*.png"), "--topk", "2"], capsys)
    assert rc == 1  # one image could not be classified; the others are still reported
    lines = [line for line in out.splitlines() if line.startswith(str(tmp_path))]
    assert len(lines) == 3
    assert any("broken.png: error: not a readable image" in line for line in lines)
    assert sum(" -> " in line and "top-2:" in line for line in lines) == 2
    assert "1 of 3 image(s) could not be classified" in err


@pytest.mark.parametrize("args, message", [
    (["nowhere/x.png"], "image not found: nowhere/x.png"),
    (["nowhere/*.png"], "no files match nowhere/*.png"),
    (["IMGS", "--topk", "0"], "--topk"),
])
def test_predict_bad_input_is_one_line(tmp_path, capsys, args, message):
    _images(tmp_path / "imgs", 1)
    rc, out, err = run_cli(["predict"] + [str(tmp_path / "imgs") if a == "IMGS" else a for a in args], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_find_images_folder_is_sorted_and_skips_other_files(tmp_path):
    from edge_runtime.predict import find_images

    _images(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("x")
    assert [Path(p).name for p in find_images(tmp_path)] == ["img0.png", "img1.png", "img2.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeRuntimeError, match="folder without images"):
        find_images(tmp_path / "empty")


def test_run_on_an_image_folder_reads_every_image(tmp_path, capsys, monkeypatch):
    """The bundled vehicle.yaml paces its camera at 30 FPS; an image folder given instead reads every image."""
    monkeypatch.chdir(tmp_path)  # the bundled config's JSONL log goes to ./runs/vehicle/
    _images(tmp_path / "imgs", 3)
    rc, out, err = run_cli(["run", tmp_path / "imgs"], capsys)
    assert rc == 0, err
    assert "3 frames" in out and "dropped frames 0" in out, out
