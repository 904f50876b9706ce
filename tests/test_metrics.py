"""edge_runtime.metrics: the rings hold constant memory from their creation on (resident, not only reserved)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.metrics import COLUMNS, Metrics, RingTable


_RESIDENT_CHECK = r"""
import os, sys
from edge_runtime.metrics import COLUMNS, RingTable

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

rows = 1 << 20  # 48 MiB with the loop's 6 columns: far above the noise of a fresh interpreter
before = rss()
t = RingTable(COLUMNS, capacity=rows)
made = rss()
row = (1.0,) * len(COLUMNS)
t._a[:] = 2.0  # every row written once, in place
for _ in range(1000):
    t.add(row)
after = rss()
print(made - before, after - made, t.nbytes, len(t), t.column("infer").values()[-1])
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to read resident memory")
def test_a_ring_is_resident_when_made_and_filling_it_adds_nothing():
    """In a fresh interpreter: resident memory measured inside the test process depends on what earlier tests
    freed (a 48 MiB block can land on pages that are already resident), so the check runs where nothing else did."""
    out = subprocess.run([sys.executable, "-c", _RESIDENT_CHECK], capture_output=True, text=True, timeout=120,
                         cwd=str(Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr[-2000:]
    grew_made, grew_fill, nbytes, n, last = out.stdout.split()
    assert int(grew_made) > 0.9 * int(nbytes)  # np.zeros alone would leave it unmapped (a few KiB resident)
    assert int(grew_fill) < 0.05 * int(nbytes)  # the pages were already there
    assert int(n) == 1000 and float(last) == 1.0


def test_ring_keeps_the_last_capacity_rows():
    t = RingTable(("a", "b"), capacity=3)
    for i in range(5):
        t.add((i, 10 * i))
    assert len(t) == 3 and sorted(t.column("a").values()) == [2.0, 3.0, 4.0]
    with pytest.raises(TypeError):
        t.column("b").add(1.0)
    with pytest.raises(ValueError):
        RingTable(("a",), capacity=0)


def test_metrics_views_and_fps():
    m = Metrics()
    assert m.fps == 0.0 and set(m.stages) == set(COLUMNS[:-1])
    m.frames, m.t_first_frame, m.t_last_frame = 31, 0.0, 1.0
    assert m.fps == pytest.approx(30.0)
    m.table.add([float(i) for i in range(len(COLUMNS))])
    assert m.latency.values().tolist() == [float(len(COLUMNS) - 1)]
