"""The TensorRT runner, CUDA buffers, calibrator data path and split timing, run on CPU against the per-version
TensorRT doubles and a numpy-backed fake cudart through the ``engine.cuda`` seam (bytes really move)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest

from edge_runtime import backends
from edge_runtime import manifest as mf
from edge_runtime.engine import build as B
from edge_runtime.engine import cuda as C
from edge_runtime.engine import trt as T
from edge_runtime.errors import EdgeRuntimeError

from .trt_double import VERSIONS, FakeCudart, fake_tensorrt, reference_logits

ROOT = Path(__file__).resolve().parents[1]


def _cuda_major(trt_version: str) -> int:
    return 11 if trt_version.startswith("8.5") else 12  # JetPack 5 (TensorRT 8.5) ships CUDA 11.4


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a TensorRT double + fake CUDA for one version; returns a function (version, **double kwargs) -> (trt, cudart)."""

    def install(version: str, major: int = 0, **kw: Any) -> Tuple[Any, FakeCudart]:
        rt = FakeCudart(major or _cuda_major(version))
        trt = fake_tensorrt(version, cuda=rt, **kw)
        monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
        monkeypatch.setattr(C, "_factory", lambda: C.Cuda(rt=rt, major=rt.major))
        return trt, rt

    return install


def _engine(tmp_path: Path, onnx: Path, version: str, precision: str = "fp32", **kw: Any) -> Path:
    src = onnx if precision != "fp16" or not version.startswith("11") else _as_fp16(tmp_path, onnx)
    return B.build_engine(src, precision, out_dir=tmp_path / "e", **kw).paths[0]


def _as_fp16(tmp_path: Path, onnx: Path) -> Path:
    """TensorRT 11 builds FP16 only from an FP16 ONNX: a copy whose manifest says fp16 (the double does not parse)."""
    p = tmp_path / "m.fp16.onnx"
    shutil.copy(onnx, p)
    m = dict(mf.for_artifact(onnx))
    m["precision"] = "fp16"
    m.pop("sha256", None)
    mf.write(p, m)
    return p


@pytest.mark.parametrize("version", VERSIONS)
def test_runner_moves_bytes_binds_by_name_and_releases(tmp_path: Path, lenet_onnx: Path, device: Any, version: str) -> None:
    trt, rt = device(version, dynamic=True, extra_outputs=("features",))
    path = _engine(tmp_path, lenet_onnx, version)
    runner = backends.load(path)
    assert runner.name == "tensorrt" and runner.manifest is not None and runner.manifest["engine"]["tensorrt"] == version
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with runner:
        assert runner.input_shape == ["batch", 3, 32, 32] and runner.logits == "logits"
        rt.moved.clear()
        y = runner.infer(x)
        assert set(runner.context.addr) == {"input", "logits", "features"}  # every I/O tensor bound by name
        assert runner.context.addr["input"] == runner.cu.ptr(runner.bufs["input"])
        y2 = runner.infer(x[:1])  # another batch: rebound
    np.testing.assert_allclose(y, reference_logits(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(y2, reference_logits(x[:1]), rtol=1e-5, atol=1e-4)
    h2d = [m for m in rt.moved if m[0] == "h2d"]
    d2h = [m for m in rt.moved if m[0] == "d2h"]
    assert h2d[0] == ("h2d", x.nbytes, True) and d2h[0] == ("d2h", 3 * 10 * 4, True)  # all through pinned buffers
    assert all(m[2] for m in rt.moved)
    assert rt.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0, "graphs": 0, "execs": 0}
    assert runner.context is None and runner.engine is None and runner.runtime is None
    assert any(r.startswith("execute_async_v3(batch 3)") for r in trt.record)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("graph", [False, True])
def test_split_timing_per_cuda_major(tmp_path: Path, lenet_onnx: Path, device: Any, version: str, graph: bool) -> None:
    from edge_runtime.bench import trt_split

    trt, rt = device(version)
    path = _engine(tmp_path, lenet_onnx, version)
    x = np.ones((1, 3, 32, 32), np.float32)
    with backends.load(path) as runner:
        rt.moved.clear()
        res = trt_split(runner, x, 5, graph)
    assert res["h2d_ms"] == res["compute_ms"] == res["d2h_ms"] == 0.25  # one fake event tick apart each
    assert res["host_memory"] == "page-locked" and res["cuda_major"] == rt.major
    assert rt.moved.count(("h2d", x.nbytes, True)) == 6  # 1 warm-up infer + 5 timed
    if graph:
        want = "cudaGraphInstantiateWithFlags(graph, flags)" if rt.major < 12 else "cudaGraphInstantiate(graph, flags)"
        assert rt.calls.count(want) == 1 and rt.calls.count("cudaGraphLaunch") == 5
    assert rt.live() == {"device": 0, "pinned": 0, "streams": 0, "events": 0, "graphs": 0, "execs": 0}


def test_other_io_and_options_refused_in_one_line(tmp_path: Path, lenet_onnx: Path, device: Any) -> None:
    device("10.3.0", inputs=("input", "mask"))
    path = _engine(tmp_path, lenet_onnx, "10.3.0")
    with pytest.raises(EdgeRuntimeError, match=r"has 2 inputs \(input, mask\); the runner feeds one image input"):
        backends.load(path).activate()
    with pytest.raises(EdgeRuntimeError, match=r"--threads 4: TensorRT runs on the GPU from one host thread"):
        backends.load(path, threads=4)
    orphan = tmp_path / "orphan.engine"
    orphan.write_bytes(path.read_bytes())
    with pytest.raises(EdgeRuntimeError, match="orphan.engine has no manifest.*rebuild it with edge-runtime build-engine"):
        backends.load(orphan)


def test_engine_from_another_gpu_or_version_refused_at_activation(tmp_path: Path, lenet_onnx: Path, device: Any) -> None:
    device("10.3.0")
    path = _engine(tmp_path, lenet_onnx, "10.3.0")
    device("10.13.0")
    with pytest.raises(EdgeRuntimeError, match=r"built with TensorRT 10.3.0 on GPU Orin \(nvgpu\).*this is TensorRT 10.13.0"):
        backends.load(path).activate()


@pytest.mark.parametrize("major", [11, 12])
def test_calibrator_feeds_each_batch_to_the_device(device: Any, major: int, tmp_path: Path) -> None:
    trt, rt = device("10.3.0", major=major)
    batches = [np.full((2, 3, 32, 32), i + 1, np.float32) for i in range(2)] + [np.zeros((1, 3, 32, 32), np.float32)]
    cal = T.make_entropy_calibrator(trt, iter(batches), 2, tmp_path / "c" / "x.calib")
    seen: List[np.ndarray] = []
    while True:
        ptrs = cal.get_batch(["input"])
        if ptrs is None:
            break
        seen.append(rt._dev(ptrs[0], batches[0].nbytes).view(np.float32).reshape(2, 3, 32, 32).copy())
    assert [float(s.mean()) for s in seen] == [1.0, 2.0] and cal.batches_fed == 2  # the short last batch ends it
    assert [m for m in rt.moved] == [("h2d", batches[0].nbytes, False)] * 2
    cal.write_calibration_cache(b"abc")
    assert cal.read_calibration_cache() == b"abc"
    with pytest.raises(EdgeRuntimeError, match="feeds one image input; the network asks for 2"):
        cal.get_batch(["a", "b"])
    cal.release()
    assert rt.live()["device"] == 0


def test_cuda_python_surface_matches_the_real_bindings() -> None:
    """Every cudart function the Cuda helper calls exists in the installed cuda-python (names, not behaviour)."""
    try:
        from cuda.bindings import runtime as real
    except ImportError:
        pytest.skip("cuda-python (cuda.bindings) is not installed here")
    src = (ROOT / "edge_runtime" / "engine" / "cuda.py").read_text()
    used = sorted(set(re.findall(r"\b(cuda[A-Z]\w+)\(", src)))
    assert "cudaMallocHost" in used and "cudaGraphInstantiateWithFlags" in used and len(used) > 15
    missing = [u for u in used if not hasattr(real, u)]
    assert not missing, missing
    fake = FakeCudart(12)
    assert [u for u in used if not hasattr(fake, u)] == []


def test_engine_cache_builds_once_then_reuses(tmp_path: Path, lenet_onnx: Path, device: Any) -> None:
    from edge_runtime.backends.tensorrt import engine_for_onnx

    trt, rt = device("10.3.0", dynamic=True)
    man = mf.for_artifact(lenet_onnx)
    p1, _ = engine_for_onnx(lenet_onnx, man, tmp_path)
    p2, _ = engine_for_onnx(lenet_onnx, man, tmp_path)
    assert p1 == p2 and trt.record.count("build_serialized_network") == 1
    assert p1.name == "lenet5.fp16.b1-1-8.trt10.3.0.orin-nvgpu-sm87.engine"
    rt.cc = (8, 9)  # another GPU: rebuilt
    p3, _ = engine_for_onnx(lenet_onnx, man, tmp_path)
    assert trt.record.count("build_serialized_network") == 2 and p3.name.endswith("-sm89.engine")
    # run --backend tensorrt on an ONNX goes through the same loader and cache
    r = backends.load(lenet_onnx, backend="tensorrt", engines_dir=tmp_path)
    assert r.path == p3 and trt.record.count("build_serialized_network") == 2


def _stubs_copy(tmp: Path) -> Path:
    """tensorrt-stubs 10.13 as mypy can read them: the package has no py.typed, and two stub lines are not valid
    Python (a parameter named ``in``; a required parameter after defaults). Copied and patched under ``tmp``."""
    import importlib.util

    spec = importlib.util.find_spec("tensorrt_bindings")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tensorrt-stubs is not installed (make dev installs it)")
    site = Path(list(spec.submodule_search_locations)[0]).parent
    for pkg in ("tensorrt", "tensorrt_bindings"):
        shutil.copytree(site / pkg, tmp / pkg, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    stub = tmp / "tensorrt_bindings" / "tensorrt.pyi"
    text = re.sub(r"([(,] *)in: ", r"\1in_: ", stub.read_text())
    text = text.replace("power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = ...)")
    stub.write_text(text)
    (tmp / "mypy.ini").write_text("[mypy]\npython_version = 3.10\nignore_missing_imports = True\nfollow_imports = silent\n"
                                  "check_untyped_defs = True\n[mypy-tensorrt_bindings.*]\nignore_errors = True\n"
                                  "[mypy-tensorrt.*]\nignore_errors = True\n")
    return tmp


def test_mypy_checks_the_running_code_against_the_stubs(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    stubs = _stubs_copy(tmp_path)
    files = ["edge_runtime/engine/trt_api.py", "edge_runtime/engine/trt.py", "edge_runtime/engine/cuda.py",
             "edge_runtime/engine/build.py", "edge_runtime/backends/tensorrt.py"]
    env = dict(__import__("os").environ, MYPYPATH=str(stubs))
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(stubs / "mypy.ini")] + files,
                       capture_output=True, text=True, cwd=str(ROOT), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    # the check can fail: a Protocol member the stubs lack (execute_async_v2 left with TensorRT 10) is an error
    bad = tmp_path / "bad_api.py"
    bad.write_text((ROOT / "edge_runtime/engine/trt_api.py").read_text().replace(
        "    def execute_async_v3(self, stream_handle: int) -> bool: ...",
        "    def execute_async_v3(self, stream_handle: int) -> bool: ...\n"
        "    def execute_async_v2(self, bindings: Any, stream_handle: int) -> bool: ..."))
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(stubs / "mypy.ini"), str(bad)],
                       capture_output=True, text=True, cwd=str(ROOT), env=env)
    assert r.returncode == 1 and "execute_async_v2" in r.stdout, r.stdout


def test_runner_on_pycuda(tmp_path: Path, lenet_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JetPack 5's python3-pycuda instead of cuda-python: same bytes, page-locked host memory, all freed; the split
    timing (CUDA events/graphs) is refused in one line naming cuda-python."""
    from .trt_double import FakePycudaDriver

    rt = FakeCudart(11)
    drv = FakePycudaDriver(rt)
    trt = fake_tensorrt("8.5.2", cuda=rt, dynamic=True)
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(C, "_factory", lambda: C.Cuda(drv=drv, major=11))
    path = _engine(tmp_path, lenet_onnx, "8.5.2")
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with backends.load(path) as runner:
        assert runner.cu.kind == "pycuda"
        np.testing.assert_allclose(runner.infer(x), reference_logits(x), rtol=1e-5, atol=1e-4)
        with pytest.raises(EdgeRuntimeError, match="CUDA event timing needs cuda-python"):
            runner.time_split(x, 2, False)
    assert rt.moved[:2] == [("h2d", x.nbytes, True), ("d2h", 2 * 10 * 4, True)]
    assert rt.live()["device"] == 0 and rt.live()["pinned"] == 0
