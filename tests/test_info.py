"""`edge-runtime info`: runs here, names what is missing and how to get it; Jetson facts from a fake /etc and /proc."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edge_runtime.info import collect, format_text, jetpack_for_l4t, parse_l4t_release

from .helpers import run_cli


@pytest.fixture(scope="module")
def here() -> dict:
    return collect()


def fake_jetson(root: Path, release: str, model: str = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit"
                ) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(release + "\n")
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    return root


def test_info_text_runs_here_and_says_how_to_get_tensorrt(capsys, here):
    rc, out, err = run_cli(["info"], capsys)
    assert rc == 0, err
    for word in ("platform", "python", "numpy", "tensorrt", "cuda", "onnxruntime", "opencv", "backends", "sinks"):
        assert word in out
    for name in ("tensorrt", "onnxruntime", "torch", "console", "jsonl", "udp", "gpio", "ros2", "callback"):
        assert "\n  %s " % name in out
    if here["backends"]["tensorrt"]["usable"]:  # a GPU machine with TensorRT
        pytest.skip("TensorRT is installed here: nothing missing to name")
    line = next(i for i, l in enumerate(out.splitlines()) if l.startswith("  tensorrt "))
    assert " -- " in out.splitlines()[line]
    hint = out.splitlines()[line + 1]
    assert "install:" in hint and "tensorrt" in hint and "JetPack" in hint


def test_info_json_names_missing_pieces_with_an_install_hint(capsys, here):
    rc, out, err = run_cli(["info", "--format", "json"], capsys)
    assert rc == 0, err
    info = json.loads(out)
    assert set(info["backends"]) == {"tensorrt", "onnxruntime", "torch"}
    assert set(info["sinks"]) == {"console", "jsonl", "udp", "gpio", "ros2", "callback"}
    assert info["python"]["version"].startswith("%d.%d" % sys.version_info[:2])
    assert info["packages"]["numpy"]["status"] == "ok"
    for group in ("backends", "sinks", "sources"):
        for name, row in info[group].items():
            assert row["usable"] or row["install"], (group, name)  # every missing piece says what to install
    if not info["backends"]["tensorrt"]["usable"]:
        assert "tensorrt" in info["backends"]["tensorrt"]["install"]
        assert any(m.startswith("backend tensorrt:") for m in info["missing"])
    cv = info["packages"]["opencv"]
    if cv["status"] == "ok":
        assert isinstance(cv["gstreamer"], bool)
        assert info["sources"]["csi"]["usable"] == cv["gstreamer"]


def test_a_broken_module_is_reported_not_raised(tmp_path, monkeypatch):
    pkg = tmp_path / "rclpy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('librcl.so: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "rclpy", raising=False)
    info = collect()
    assert info["packages"]["rclpy"]["status"] == "broken"
    assert "librcl.so" in info["packages"]["rclpy"]["detail"]
    assert not info["sinks"]["ros2"]["usable"] and "setup.bash" in info["sinks"]["ros2"]["install"]
    assert "broken (RuntimeError: librcl.so" in format_text(info)


def test_jetson_model_and_jetpack_from_a_fake_root(tmp_path):
    root = fake_jetson(tmp_path, "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, "
                                 "DATE: Fri Sep 13 04:36:44 UTC 2024")
    info = collect(str(root))
    jet = info["jetson"]
    assert jet["model"].startswith("NVIDIA Jetson Orin Nano") and "\x00" not in jet["model"]
    assert jet["l4t"] == "36.4.0" and jet["jetpack"] == "6.1" and jet["supported"] is True
    assert jet["argus_socket"] is False and any("nvargus-daemon" in n for n in info["notes"])
    text = format_text(info)
    assert "NVIDIA Jetson Orin Nano" in text and "L4T 36.4.0" in text and "JetPack 6.1" in text
    if not info["backends"]["tensorrt"]["usable"]:  # on a Jetson the hint is JetPack's apt package
        assert "python3-libnvinfer" in info["backends"]["tensorrt"]["install"]
    cv = info["packages"]["opencv"]
    if cv["status"] == "ok" and not cv["gstreamer"]:  # pip's OpenCV here: on a Jetson it is named as the culprit
        assert "pip uninstall" in info["sources"]["csi"]["install"]
        if cv["pip_wheels"]:
            assert any("shadows JetPack's OpenCV" in n for n in info["notes"])


def test_an_old_jetpack_is_flagged_unsupported(tmp_path):
    info = collect(str(fake_jetson(tmp_path, "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref",
                                   "NVIDIA Jetson Nano Developer Kit")))
    assert info["jetson"]["supported"] is False and info["jetson"]["jetpack"] == "4.x"
    assert "NOT SUPPORTED" in format_text(info)


@pytest.mark.parametrize("text, l4t, jetpack", [
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref", (35, 4, 1), "5.1.2"),
    ("# R35 (release), REVISION: 2.1, GCID: 32413640, BOARD: t186ref", (35, 2, 1), "5.1"),
    ("# R36 (release), REVISION: 3.0, GCID: 36191598", (36, 3, 0), "6.0"),
    ("# R36 (release), REVISION: 4.3, GCID: 38968081", (36, 4, 3), "6.2"),
    ("36.4.0-20240912212859", (36, 4, 0), "6.1"),  # dpkg-query nvidia-l4t-core
    ("# R38 (release), REVISION: 2.0", (38, 2, 0), "7.0"),
])
def test_l4t_release_parsing(text, l4t, jetpack):
    assert parse_l4t_release(text) == l4t
    assert jetpack_for_l4t(l4t) == jetpack


def test_info_imports_only_the_standard_library():
    """info must run on a broken install: importing it (and the machine probe it shares with bench) loads no numpy,
    even with numpy made unimportable."""
    import subprocess

    code = ("import sys; sys.modules['numpy'] = None; import edge_runtime.info as i; "
            "print(i.collect()['packages']['numpy']['status'], i.collect()['platform']['cores'] >= 1)")
    r = subprocess.run([sys.executable, "-c", code], cwd=str(Path(__file__).resolve().parents[1]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["missing", "True"], r.stdout  # numpy reported missing, the machine still read


def test_info_and_bench_evidence_read_the_machine_through_one_probe(monkeypatch):
    from edge_runtime.bench import probe as ev

    monkeypatch.setattr(ev, "cpu_model", lambda: "Probe Test CPU 9000")
    monkeypatch.setattr(ev, "os_name", lambda root="/": "Probe OS 1")
    info = collect()
    assert info["platform"]["cpu"] == "Probe Test CPU 9000" and info["platform"]["os"] == "Probe OS 1"
    assert "Probe Test CPU 9000" in format_text(info)
    e = ev.evidence()
    assert e["cpu"] == "Probe Test CPU 9000" and e["os_name"] == "Probe OS 1"
    assert set(e["code"]) >= {"version", "commit", "dirty"}  # the code a number was measured with
