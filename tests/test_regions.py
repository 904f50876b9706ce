"""Regions of interest: geometry, config errors, the batched crop in the grabber, per-region policies and their
merge, and the Runtime with regions on both backends that run here (ONNX Runtime, PyTorch)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime.backends import Runner
from edge_runtime.config import parse_config
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.policy import Action, Reason
from edge_runtime.preprocess import preprocess
from edge_runtime.regions import Camera, Grid, Rect, Region, RegionCropper, RegionPolicies, expand, pixel_boxes
from edge_runtime.runtime import Runtime
from edge_runtime.sources import SyntheticSource

from .helpers import CAT, LEFT, MANIFEST, PATH, RULES, SHIP, BrightnessRunner, road  # noqa: F401


def config(regions: Any = None, **timeouts: Any) -> Any:
    data = {"policy": {"default_action": "GO", "rules": RULES,
                       "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
                       "timeouts": dict({"source_timeout_ms": 300, "max_frame_age_ms": 1000, "deadline_ms": 1000},
                                        **timeouts)}}
    if regions is not None:
        data["regions"] = regions
    return parse_config(data, origin="test.yaml")


# ------------------------------------------------------------------------------------------------ geometry
def test_grid_cells_cover_the_frame_with_the_overlap_asked():
    cells = expand((Region(grid=Grid(rows=2, cols=3, overlap=0.2)),))
    assert [c.name for c in cells] == ["r0c0", "r0c1", "r0c2", "r1c0", "r1c1", "r1c2"]
    assert cells[0].x == 0 and abs(cells[2].x + cells[2].w - 1) < 1e-9 and abs(cells[5].y + cells[5].h - 1) < 1e-9
    assert abs((cells[0].x + cells[0].w - cells[1].x) / cells[0].w - 0.2) < 1e-9  # neighbours share 20 % of a cell
    assert pixel_boxes(cells, 300, 200)[:, 2].max() == 300


def test_pixel_boxes_are_at_least_one_pixel_and_inside_the_frame():
    b = pixel_boxes([Rect("a", 0.0, 0.0, 0.001, 0.001), Rect("b", 0.5, 0.25, 0.5, 0.75)], 64, 36)
    assert b.tolist() == [[0, 0, 1, 1], [32, 9, 64, 36]]


@pytest.mark.parametrize("regions, message", [
    ([{"name": "p", "x": 0.8, "y": 0, "w": 0.3, "h": 1}], "regions[0].w: x + w is 1.1"),
    ([{"name": "p", "x": 0.1, "y": 0.1}], "regions[0].w: missing"),
    ([{"x": 0.1, "y": 0.1, "w": 0.1, "h": 0.1}], "regions[0].name: missing"),
    ([{"name": "p", "x": 0, "y": 0, "w": 1, "h": 1, "rules": ["nope"]}], "no policy rule is named 'nope'"),
    ([{"name": "p", "x": 0, "y": 0, "w": 1, "h": 1}, {"name": "p", "x": 0, "y": 0, "w": 1, "h": 1}], "used twice"),
    ([{"grid": {"rows": 2, "cols": 2}, "x": 0.1}], "regions[0].grid: a grid covers the whole frame"),
    ([{"grid": {"rows": 0, "cols": 2}}], "regions[0].grid.rows: expected an integer in [1, 16]"),
])
def test_bad_regions_are_one_line_errors_naming_the_key(regions, message):
    with pytest.raises(EdgeRuntimeError) as e:
        config(regions)
    assert message in str(e.value) and str(e.value).startswith("test.yaml: ") and "\n" not in str(e.value)


# -------------------------------------------------------------------------------------------------- crop
def test_cropper_is_the_plain_preprocessing_without_regions_and_per_crop_preprocessing_with():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)
    pp = MANIFEST["preprocess"]
    whole = RegionCropper(pp)(img)
    assert whole.shape == (1, 3, 32, 32) and np.array_equal(whole, preprocess(img, pp, bgr=True))
    rects = expand(config([PATH, LEFT, {"grid": {"rows": 1, "cols": 2, "overlap": 0.1}}]).regions)
    crop = RegionCropper(pp, rects)
    out = crop(img)
    assert out.shape == (4, 3, 32, 32) and out.dtype == np.float32
    for i, (x0, y0, x1, y1) in enumerate(crop.boxes(160, 90).tolist()):  # the vectorized pass = one crop at a time
        np.testing.assert_allclose(out[i], preprocess(img[y0:y1, x0:x1], pp, bgr=True)[0], rtol=0, atol=1e-6)
    assert not np.array_equal(out[0], out[1])


# ------------------------------------------------------------------------------------------------ policies
def test_each_region_debounces_on_its_own_and_the_output_is_the_most_severe():
    cfg = config([PATH, LEFT], source_timeout_ms=10000)
    cfg = parse_config(dict(__import__("edge_runtime.config", fromlist=["x"]).config_to_dict(cfg),
                            policy=dict(__import__("edge_runtime.config", fromlist=["x"]).config_to_dict(cfg)["policy"],
                                        debounce={"trigger_k": 2, "trigger_n": 3, "release_m": 1, "min_hold_ms": 0})))
    cam = Camera(None, expand(cfg.regions))
    rp = RegionPolicies([cam], cfg.policy, MANIFEST)
    cat, ship = np.eye(10)[CAT], np.eye(10)[SHIP]
    rp.decide(0, np.stack([ship, ship]), 0.0)
    d = rp.output(0.0)
    assert d.action is Action.GO and [p.region for p in d.regions] == ["path", "left"]
    rp.decide(0, np.stack([ship, cat]), 0.1)  # one cat frame on the left: pending (k=2)
    assert rp.output(0.1).action is Action.GO
    rp.decide(0, np.stack([cat, cat]), 0.2)  # the left's second: SLOW there; the path's first: pending
    d = rp.output(0.2)
    assert (d.action, d.region, d.reason) == (Action.SLOW, "left", Reason.RULE) and d.changed
    rp.decide(0, np.stack([cat, ship]), 0.3)  # the path's second within 3: STOP, named by the path
    d = rp.output(0.3)
    assert (d.action, d.region, d.rule) == (Action.STOP, "path", "animals_stop") and d.changed
    parts = {p.region: p.action for p in d.regions}
    assert parts == {"path": Action.STOP, "left": Action.GO}  # the left released after one clear frame
    again = rp.output(0.31)
    assert not again.changed and again.seq == d.seq + 1
    assert d.to_dict()["regions"][0] == {"camera": None, "region": "path", "action": "STOP", "reason": "rule",
                                         "rule": "animals_stop", "score": 1.0, "class": "cat", "confidence": 1.0}


def test_a_region_without_rules_uses_all_of_them():
    cfg = config([{"name": "all", "x": 0, "y": 0, "w": 1, "h": 1}])
    rp = RegionPolicies([Camera(None, expand(cfg.regions))], cfg.policy, MANIFEST)
    assert len(rp.first.config.rules) == 2
    rp.decide(0, np.eye(10)[CAT][None], 0.0)
    assert rp.output(0.0).action is Action.STOP


# ------------------------------------------------------------------------------------------------ runtime
def run_frames(cfg: Any, frames: List[np.ndarray], runner: Runner) -> Any:
    rt = Runtime(cfg, runner, MANIFEST, source=SyntheticSource(frames, loop=False))
    with rt:
        out = list(rt.decisions())
    return rt, out


def test_regions_catch_a_small_object_in_the_path_that_the_whole_frame_misses():
    frames = [road()] * 3 + [road(patch=(26, 19, 38, 36))] * 3  # a white object low in the middle: the path
    rt, whole = run_frames(config(), frames, BrightnessRunner())
    assert all(d.action is not Action.STOP or d.reason.failsafe for d in whole)  # the frame's mean stays dark
    runner = BrightnessRunner()
    rt, ds = run_frames(config([PATH, LEFT]), frames, runner)
    stops = [d for d in ds if d.action is Action.STOP and not d.failsafe]
    assert stops and stops[0].region == "path" and stops[0].rule == "animals_stop" and stops[0].frame_index == 3
    assert runner.batches[-7:] == [2] * 7  # the warm-up, then one call per frame with both regions
    r = rt.report()
    assert r["steps"] == 6 and r["mean_batch"] == 2 and r["cpu_ms_per_step"] > 0
    assert ds[-1].reason is Reason.END_OF_STREAM


def test_a_fixed_batch_model_is_called_in_slices_with_the_same_decisions():
    frames = [road(patch=(0, 20, 12, 36))] * 4  # an object on the left: SLOW
    _, dyn = run_frames(config([PATH, LEFT]), frames, BrightnessRunner())
    fixed = BrightnessRunner(fixed=1)
    rt, ds = run_frames(config([PATH, LEFT]), frames, fixed)
    assert [(d.action, d.region) for d in ds] == [(d.action, d.region) for d in dyn]
    assert set(fixed.batches) == {1} and rt.report()["model_batch"] == 1
    assert any(d.action is Action.SLOW and d.region == "left" for d in ds)


@pytest.fixture(scope="module")
def backends(lenet_onnx, lenet_ckpt):
    from edge_runtime.backends.onnxrt import OnnxRuntimeRunner
    from edge_runtime.backends.torch_runner import TorchRunner

    return {"onnxruntime": lambda: OnnxRuntimeRunner(lenet_onnx, threads=1, manifest=mf.for_artifact(lenet_onnx)),
            "torch": lambda: TorchRunner(lenet_ckpt, threads=1)}


def test_both_backends_decide_the_same_per_region_with_one_batched_call(backends):
    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (36, 64, 3), dtype=np.uint8) for _ in range(6)]
    cfg = parse_config({"policy": {"default_action": "GO", "rules": [
        {"name": r, "action": "SLOW", "classes": [c], "min_confidence": 0.0} for r, c in (("a", "cat"), ("b", "ship"))]},
        "regions": [{"grid": {"rows": 2, "cols": 2, "overlap": 0.1}}]}, origin="t.yaml")
    got = {}
    for name, make in backends.items():
        runner = make()
        rt, ds = run_frames(cfg, frames, runner)
        got[name] = [[(p.region, p.class_name, round(p.confidence, 3)) for p in d.regions] for d in ds if d.regions
                     and not d.failsafe]
        assert rt.report()["mean_batch"] == 4 and rt.report()["model_batch"] is None
    assert got["onnxruntime"] and got["onnxruntime"] == got["torch"]
    assert len(got["torch"][0]) == 4 and got["torch"][0][0][0] == "r0c0"


def test_predict_regions_one_line_per_region_with_its_rules(tmp_path, lenet_onnx, capsys):
    cv2 = pytest.importorskip("cv2")
    from .conftest import run_cli

    img = tmp_path / "wide.png"
    cv2.imwrite(str(img), road(640, 360, patch=(250, 200, 380, 340)))
    cfg = Path(__file__).resolve().parents[1] / "deploy/configs/vehicle-regions.yaml"
    rc, out, err = run_cli(["predict", img, "--regions", "--config", cfg, "--model", lenet_onnx, "--json"], capsys)
    assert rc == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["path"].rsplit("#", 1)[1] for r in rows] == ["path", "left", "right"]
    assert all(r["action"] in ("GO", "SLOW", "STOP") for r in rows)
    assert {r["rule"] for r in rows[1:]} <= {"animals_slow", None}  # the sides apply only the rule they name
    rc, out, err = run_cli(["predict", img, "--regions", "--model", lenet_onnx], capsys)  # vehicle.yaml: none
    assert rc == 2 and "--regions: " in err and "has no regions:" in err and "Traceback" not in err


def test_a_single_grid_may_be_written_as_a_mapping():
    cfg = config({"grid": {"rows": 2, "cols": 3, "overlap": 0.1}, "rules": ["animals_slow"]})
    assert [r.name for r in expand(cfg.regions)][:2] == ["r0c0", "r0c1"] and len(expand(cfg.regions)) == 6
    two = parse_config({"policy": {"rules": RULES}, "sources": [
        {"name": "a", "uri": "csi://0", "regions": {"grid": {"rows": 1, "cols": 2}}}]})
    assert len(expand(two.sources[0].regions)) == 2


def test_overlay_draws_each_region_in_its_own_actions_colour(tmp_path):
    pytest.importorskip("cv2")
    from edge_runtime.overlay import COLORS, FrameOutputs
    from edge_runtime.policy import Decision
    from edge_runtime.sources import Frame

    rects = expand(config([PATH, LEFT]).regions)
    parts = (Decision(Action.STOP, Reason.RULE, 0.0, 1, region="path"), Decision(Action.GO, Reason.DEFAULT, 0.0, 1,
                                                                                 region="left"))
    d = Decision(Action.STOP, Reason.RULE, 0.0, 1, changed=True, region="path", regions=parts)
    out = FrameOutputs(False, str(tmp_path / "o.mp4"), str(tmp_path / "snaps"), 30.0, regions={None: rects})
    img = np.zeros((360, 640, 3), np.uint8)
    drawn = out.overlay(img, d)
    x0, y0 = int(round(PATH["x"] * 640)), int(round(PATH["y"] * 360))
    assert tuple(drawn[y0 + 40, x0]) == COLORS["STOP"]  # the path's left edge, below the banner
    assert tuple(drawn[300, 159]) == COLORS["GO"]  # the left region's right edge (x 0.25 of 640, minus 1)
    out(Frame(image=img, t_capture=0.0, index=0), d)
    out.close()
    assert (tmp_path / "o.mp4").stat().st_size > 0 and len(list((tmp_path / "snaps").glob("*.jpg"))) == 1
