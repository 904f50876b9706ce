"""edge-runtime bench: reports carry their evidence, numbers are internally consistent, every mode runs in --quick
form and writes JSON/CSV/MD/PNG, bad input is one line with exit code 2. No timing assertions."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
FIXED_BATCH_ONNX = ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.onnx"  # exported with batch 1 fixed
EVIDENCE = ("when", "cpu", "cores", "os", "python", "numpy", "opencv", "onnxruntime", "torch", "tensorrt", "cuda",
            "gpu", "loadavg", "loadavg_end", "cpu_governor", "jetson", "warnings", "code")


def check_stats(s, batch=1):
    assert s["min_ms"] <= s["p50_ms"] <= s["p90_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["min_ms"] <= s["mean_ms"] <= s["max_ms"] and s["median_ms"] == s["p50_ms"]
    assert s["throughput_ips"] == pytest.approx(batch * 1000.0 / s["mean_ms"])
    assert s["ms_per_image"] == pytest.approx(s["mean_ms"] / batch)
    if batch == 1:
        assert s["fps"] == pytest.approx(1000.0 / s["mean_ms"])


def check_report(out: Path, mode: str):
    files = [out / ("bench-%s%s" % (mode, ext)) for ext in (".json", ".csv", ".md", ".png")]
    for f in files:
        assert f.is_file() and f.stat().st_size > 0, f
    assert files[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp")), "atomic writes leave no temporary files"
    rep = json.loads(files[0].read_text())
    assert rep["format"] == "edge-runtime.bench/1" and rep["mode"] == mode and rep["command"].startswith("edge-runtime bench")
    for k in EVIDENCE:
        assert k in rep["evidence"], k
    assert rep["evidence"]["cores"] >= 1 and rep["evidence"]["python"]
    code = rep["evidence"]["code"]  # the git commit measured, and whether the tree was dirty
    assert set(code) >= {"commit", "dirty", "version"} and (code["commit"] is None or len(code["commit"]) == 40)
    res = rep["resources"]
    assert res["peak_rss_mb"] > 0 and res["process_peak_rss_mb"] > 0
    assert "power_note" in res
    if any(r.get("backend") == "tensorrt" for r in rep["rows"]):  # a GPU run: a figure, no excuse
        assert res["gpu_memory_mb"] > 0 and "gpu_memory_note" not in res, res
    else:  # ONNX Runtime / PyTorch on the CPU: no figure, and the note says why
        assert res["gpu_memory_mb"] is None and res["gpu_memory_note"] == "no GPU used by this run", res
    rows = list(csv.DictReader(files[1].open()))
    assert len(rows) == len(rep["rows"]) and rows[0]["mode"] == mode and rows[0]["evidence_cpu"] == str(rep["evidence"]["cpu"])
    assert rows[0]["evidence_commit"] == (code["commit"] or "")
    md = files[2].read_text()
    assert "## Evidence" in md and "| onnxruntime |" in md and "ms/image" in md
    return rep


def test_latency_stats_are_consistent():
    from edge_runtime.bench import latency_stats

    rng = np.random.default_rng(0)
    ms = rng.gamma(2.0, 0.5, 1000)
    check_stats(latency_stats(ms, 1), 1)
    s8 = latency_stats(ms, 8)
    check_stats(s8, 8)
    assert s8["fps"] == pytest.approx(8000.0 / ms.mean())


def test_timing_rejects_bad_values():
    from edge_runtime.bench import Timing
    from edge_runtime.errors import EdgeRuntimeError

    for kw in ({"duration_s": 0}, {"duration_s": -1}, {"iterations": 0}, {"warmup_s": -1}):
        with pytest.raises(EdgeRuntimeError):
            Timing(**kw)


def test_evidence_names_versions_and_warns_about_clocks():
    from edge_runtime.bench import evidence

    ev = evidence()
    for k in EVIDENCE:
        if k != "loadavg_end":
            assert k in ev, k
    assert ev["tensorrt"].startswith("absent") or ev["tensorrt"][0].isdigit()
    if ev["cpu_governor"] != "performance":
        assert any("governor" in w or "clocks" in w for w in ev["warnings"])


def test_engine_quick_with_batches_and_vs_bare(lenet_onnx, tmp_path, capsys):
    rc, out, err = run_cli(["bench", "engine", lenet_onnx, "--quick", "--batch", "1", "4", "--vs-bare", "--out",
                            tmp_path, "--no-progress"], capsys)
    assert rc == 0, err
    assert "ms/image" in out and "runner overhead" in out and "evidence:" in out
    rep = check_report(tmp_path, "engine")
    for b, s in rep["details"]["per_batch"].items():
        check_stats(s, int(b))
    v = rep["details"]["vs_bare"]
    check_stats(v["bare"])
    check_stats(v["runner"])
    assert v["overhead_median_ms"] == pytest.approx(v["runner"]["median_ms"] - v["bare"]["median_ms"])
    assert v["allowed_ms"] >= 0.05 and isinstance(v["goal_met"], bool)
    assert "not available here" in rep["details"]["tensorrt"]
    assert [r["batch"] for r in rep["rows"]] == [1, 4, 1, 1]


def test_engine_iterations_exact(lenet_onnx):
    from edge_runtime.bench import Timing, bench_engine

    rep = bench_engine(lenet_onnx, (2,), Timing(warmup_s=0.0, iterations=7), progress=False)
    s = rep["details"]["per_batch"]["2"]
    assert s["n"] == 7
    check_stats(s, 2)


@pytest.mark.parametrize("kind", ["synthetic", "video"])
def test_e2e_quick(kind, lenet_onnx, tmp_path, capsys):
    if kind == "synthetic":
        source = "synthetic://?rate=60&frames=40&width=64&height=48"
    else:
        cv2 = pytest.importorskip("cv2")
        source = str(tmp_path / "clip.avi")
        w = cv2.VideoWriter(source, cv2.VideoWriter_fourcc(*"MJPG"), 60.0, (64, 48))
        assert w.isOpened()
        for i in range(30):
            w.write(np.full((48, 64, 3), (i * 8) % 256, np.uint8))
        w.release()
    out_dir = tmp_path / "out"
    rc, out, err = run_cli(["bench", "e2e", source, "--model", lenet_onnx, "--quick", "--out", out_dir], capsys)
    assert rc == 0, err
    assert "capture->decision p90" in out
    rep = check_report(out_dir, "e2e")
    d = rep["details"]
    check_stats(d["decision_latency_ms"])
    assert d["frames"] >= 10 and d["source_fps"] == pytest.approx(60.0)
    assert d["achieved_fps"] > 0 and d["stale_frames"] >= 0 and d["dropped_frames"] >= 0
    assert set(d["stages_ms"]) == {"capture->read", "preprocess", "infer", "policy", "sinks"}
    assert d["e2e_over_preprocess_infer"] > 0
    row = rep["rows"][0]  # no ground truth on this source: no accuracy quoted, and the table says so
    assert row["accuracy"] is None and row["accuracy_by"] == "not measured on this source"
    assert "not measured on this source" in out
    assert len(d["samples_ms"][row["format"]]) == d["frames"]
    from edge_runtime.bench.reports import plot_kind

    assert plot_kind(rep) == "distribution"  # one row: a latency histogram/CDF, not a lone dot
    assert "capture->decision" in (out_dir / "bench-e2e.md").read_text()


def test_compare_quick_with_measured_accuracy(lenet_onnx, lenet_ckpt, fixture_data, tmp_path, capsys):
    pytest.importorskip("torch")
    rc, out, err = run_cli(["bench", "compare", lenet_onnx, lenet_ckpt, "--quick", "--accuracy", "--limit", "40",
                            "--data-dir", fixture_data, "--out", tmp_path, "--no-progress"], capsys)
    assert rc == 0, err
    rep = check_report(tmp_path, "compare")
    rows = {r["format"]: r for r in rep["rows"]}  # one model: formats without a model prefix
    assert rows["ONNX Runtime FP32"]["status"] == "ok" and rows["PyTorch eager FP32"]["status"] == "ok"
    for r in rep["rows"]:
        if r["status"] == "ok":
            assert r["fps"] == pytest.approx(1000.0 / r["mean_ms"]) and r["p50_ms"] <= r["p90_ms"]
            assert "measured here" in r["accuracy_source"] and 0 <= r["accuracy"] <= 100
            assert r["accuracy_by"] == "%s (here, 40 images)" % {"onnxruntime": "ONNX Runtime", "torch": "PyTorch",
                                                                  "pytorch": "PyTorch"}[r["backend"]]
            assert r["params"] and r["size_mb"] > 0
    if rep["evidence"]["tensorrt"].startswith("absent"):
        assert rows["TensorRT FP16"]["status"].startswith("not available here")
    sp = rep["details"]["speedup_vs_pytorch_eager"][0]
    assert sp["ratio"] == pytest.approx(sp["pytorch_ms"] / sp["onnxruntime_fp32_ms"])
    assert "TensorRT" in out and "PyTorch eager / ONNX Runtime FP32" in out


def _one_line_exit_2(rc, err):
    assert rc == 2, err
    assert err.strip() and err.strip().count("\n") == 0 and "Traceback" not in err, err


def test_bad_artifact_is_one_line(tmp_path, capsys):
    for name in ("broken.onnx", "broken.pt"):
        bad = tmp_path / name
        bad.write_bytes(b"not a model")
        rc, _, err = run_cli(["bench", "engine", bad, "--quick", "--no-progress"], capsys)
        _one_line_exit_2(rc, err)
    rc, _, err = run_cli(["bench", "engine", tmp_path / "missing.onnx", "--quick"], capsys)
    _one_line_exit_2(rc, err)


def test_a_fixed_batch_model_runs_a_multiple_of_its_batch_as_sliced_calls(tmp_path, capsys):
    rc, _, err = run_cli(["bench", "engine", FIXED_BATCH_ONNX, "--quick", "--batch", "4", "--no-progress", "--out",
                          tmp_path], capsys)
    assert rc == 0, err
    rep = check_report(tmp_path, "engine")
    assert rep["rows"][0]["batch"] == 4 and "4" in rep["details"]["per_batch"]


def test_camera_that_does_not_open(lenet_onnx, capsys):
    pytest.importorskip("cv2")
    rc, _, err = run_cli(["bench", "e2e", "/dev/video97", "--model", lenet_onnx, "--quick", "--no-progress"], capsys)
    _one_line_exit_2(rc, err)
    assert "/dev/video97" in err


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_duration(value, lenet_onnx, capsys):
    rc, _, err = run_cli(["bench", "engine", lenet_onnx, "--duration", value], capsys)
    _one_line_exit_2(rc, err)
    rc, _, err = run_cli(["bench", "engine", lenet_onnx, "--duration", value, "--quick"], capsys)
    _one_line_exit_2(rc, err)
    rc, _, err = run_cli(["bench", "e2e", "synthetic://", "--model", lenet_onnx, "--duration", value], capsys)
    _one_line_exit_2(rc, err)


def test_vs_bare_and_split_need_their_backends(lenet_ckpt, lenet_onnx, capsys):
    pytest.importorskip("torch")
    rc, _, err = run_cli(["bench", "engine", lenet_ckpt, "--quick", "--vs-bare", "--no-progress"], capsys)
    _one_line_exit_2(rc, err)
    rc, _, err = run_cli(["bench", "engine", lenet_onnx, "--quick", "--cuda-graph", "--no-progress"], capsys)
    _one_line_exit_2(rc, err)
    assert "TensorRT" in err


def test_bench_without_mode_is_one_line(capsys):
    rc, _, err = run_cli(["bench"], capsys)
    _one_line_exit_2(rc, err)


def test_command_line_is_the_one_helper_and_quotes_what_was_given(monkeypatch):
    import argparse

    from edge_runtime.cli._common import command_line

    monkeypatch.setattr("sys.argv", ["/usr/bin/edge-runtime", "from", "sys.argv"])
    assert command_line(["bench", "e2e", "a b.mp4"]) == "edge-runtime bench e2e 'a b.mp4'"
    assert command_line() == "edge-runtime from sys.argv"
    ns = argparse.Namespace(_command_line="edge-runtime eval x.onnx")
    assert command_line(ns) == "edge-runtime eval x.onnx"  # what main() parsed, not sys.argv
    assert command_line(argparse.Namespace()) == "edge-runtime from sys.argv"
    monkeypatch.setattr("sys.argv", ["benchmarks/runtime_bench.py", "latency"])
    assert command_line() == "python benchmarks/runtime_bench.py latency"


def test_models_latency_interleaves_rounds_and_prints_the_machine(capsys):
    pytest.importorskip("torch")
    rc, out, err = run_cli(["models", "lenet5", "mobilenetv2_paper", "--latency", "--rounds", "3", "--seconds", "0.02",
                            "--format", "json", "--no-progress"], capsys)
    assert rc == 0, err
    assert "load average" in err and "torch threads 1" in err and "3 rounds x 2 models" in err
    rep = json.loads(out)
    ev = rep["latency"]
    assert ev["torch_threads"] == 1 and ev["rounds"] == 3 and ev["cores"] >= 1 and len(ev["loadavg"]) == 3
    for r in rep["models"]:
        meds = r["cpu_latency_round_medians_ms"]
        assert len(meds) == 3 and r["cpu_latency_ms"] == pytest.approx(float(np.median(meds)), abs=1e-3)
    rc, out, err = run_cli(["models", "--latency", "--rounds", "0"], capsys)
    assert rc == 2 and "argument --rounds: expected an integer >= 1, got 0" in err and err.count("\n") == 1


def test_interleaved_reverses_the_order_every_other_round():
    from edge_runtime.bench.statistics import Timing, interleaved

    order = []
    res = interleaved([("a", lambda: order.append("a")), ("b", lambda: order.append("b"))], 4,
                      Timing(warmup_s=0.0, duration_s=1.0, iterations=2, min_iterations=1))
    firsts = [order[i * 6] for i in range(4)]  # each turn: 1 warm-up call + 2 timed calls, 2 names a round
    assert firsts == ["a", "b", "a", "b"]
    assert res["a"]["rounds"] == 4 and len(res["a"]["samples_ms"]) == 8 and res["a"]["pooled"]["n"] == 8
    assert res["a"]["median_ms"] == pytest.approx(float(np.median(res["a"]["round_medians_ms"])))


def test_one_latency_summary_for_bench_runtime_metrics_and_evaluate(lenet_onnx):
    from edge_runtime.backends import runner_for
    from edge_runtime.bench.statistics import latency_stats, summarize
    from edge_runtime.evaluate import latency
    from edge_runtime.metrics import RingBuffer

    rb = RingBuffer(8)
    for v in (0.001, 0.002, 0.004, 0.003):
        rb.add(v)
    s = summarize([1.0, 2.0, 4.0, 3.0])
    assert rb.summary() == pytest.approx(s) and s["p50_ms"] == 2.5 and s["max_ms"] == 4.0 and s["n"] == 4
    assert set(s) <= set(latency_stats([1.0, 2.0], 1))
    with runner_for(lenet_onnx, threads=1) as r:
        lat = latency(r, np.zeros((1, 3, 32, 32), np.float32), warmup=1, iters=5)
    assert set(s) <= set(lat) and lat["n"] == 5


def test_compare_without_accuracy_says_which_backend_measured_each_figure(tmp_path, capsys):
    bundled = ROOT / "engines" / "bundled"
    fp32, int8 = bundled / "mobilenetv2_cifar_x0_5.onnx", bundled / "mobilenetv2_cifar_x0_5.int8-cpu.onnx"
    rc, out, err = run_cli(["bench", "compare", fp32, int8, "--quick", "--out", tmp_path, "--no-progress"], capsys)
    assert rc == 0, err
    rep = check_report(tmp_path, "compare")
    by = {r["artifact"]: r for r in rep["rows"] if r["status"] == "ok"}
    man32 = json.loads(Path(str(fp32) + ".json").read_text())["accuracy"]
    man8 = json.loads(Path(str(int8) + ".json").read_text())["accuracy"]
    # the artifact's own measured figure, and the backend that measured it (FP32's came from PyTorch in training)
    assert by[str(fp32)]["accuracy"] == man32["top1"] and by[str(fp32)]["accuracy_by"] == "PyTorch (manifest)"
    assert by[str(int8)]["accuracy"] == man8["top1"] and by[str(int8)]["accuracy_by"] == "ONNX Runtime (manifest)"
    assert "accuracy measured by" in out and "PyTorch (manifest)" in out
    assert "accuracy_by" in (tmp_path / "bench-compare.csv").read_text().splitlines()[0]


def test_engine_with_one_row_plots_its_distribution_and_several_rows_compare(lenet_onnx, tmp_path, capsys):
    from edge_runtime.bench.reports import plot_kind

    rc, out, err = run_cli(["bench", "engine", lenet_onnx, "--quick", "--out", tmp_path / "one", "--no-progress"],
                           capsys)
    assert rc == 0, err
    one = check_report(tmp_path / "one", "engine")
    assert plot_kind(one) == "distribution" and len(one["details"]["samples_ms"][one["rows"][0]["format"]]) == \
        one["rows"][0]["n"]
    rc, out, err = run_cli(["bench", "engine", lenet_onnx, "--quick", "--batch", "1", "2", "--out", tmp_path / "two",
                            "--no-progress"], capsys)
    assert rc == 0, err
    assert plot_kind(check_report(tmp_path / "two", "engine")) == "compare"


def test_runtime_report_is_generated_from_the_json_and_the_manifests(tmp_path):
    """benchmarks/runtime.md is written by `runtime_bench.py report`; its accuracies come from the manifests (with
    the backend that measured them) and its goal rows from the result JSON, not typed by hand."""
    import subprocess
    import sys

    out = tmp_path / "runtime.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "runtime_bench.py"), "report", "--out", str(out)],
                       cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout
    page = out.read_text()
    acc = json.loads((ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.int8-cpu.onnx.json").read_text())["accuracy"]
    assert "(%.2f %% CIFAR-10 test top-1 on %d images, measured with %s" % (acc["top1"], acc["n"], acc["measured_with"]) \
        in page
    assert "%.2f %% measured with ONNX Runtime" % acc["fp32_onnx"]["top1"] in page
    lat = json.loads((ROOT / "benchmarks" / "runtime-results" / "latency.mobilenetv2_cifar_x0_5.int8-cpu.json").read_text())
    st = lat["clip@30fps"]["decision_latency_ms"]
    assert "| INT8 CPU (default) | %.2f ms pooled" % st.get("p99_ms", st.get("p99")) in page
    for hand_typed in ("24 us", "47 us", "69 %", "~0.2 ms"):  # the figures issue #16 found without a file
        assert hand_typed not in page


def test_e2e_measures_accuracy_only_on_a_source_with_ground_truth(tmp_path, capsys):
    pytest.importorskip("cv2")
    import shutil

    clip = ROOT / "deploy" / "demo" / "cifar10-demo.mp4"
    model = ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.int8-cpu.onnx"
    rc, out, err = run_cli(["bench", "e2e", clip, "--model", model, "--rate", "0", "--max-frames", "60", "--duration",
                            "60", "--out", tmp_path / "gt", "--no-progress"], capsys)
    assert rc == 0, err
    row = json.loads((tmp_path / "gt" / "bench-e2e.json").read_text())["rows"][0]
    assert row["accuracy_by"].startswith("ONNX Runtime (here, ") and "frames of this source" in row["accuracy_by"]
    assert 0 <= row["accuracy"] <= 100 and "cifar10-demo.json" in row["accuracy_source"]
    bare = tmp_path / "copy.mp4"  # the same frames without the scenario JSON beside them: no ground truth
    shutil.copy(clip, bare)
    rc, out, err = run_cli(["bench", "e2e", bare, "--model", model, "--rate", "0", "--max-frames", "30", "--duration",
                            "60", "--out", tmp_path / "none", "--no-progress"], capsys)
    assert rc == 0, err
    row = json.loads((tmp_path / "none" / "bench-e2e.json").read_text())["rows"][0]
    assert row["accuracy"] is None and row["accuracy_by"] == "not measured on this source"
