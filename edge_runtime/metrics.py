"""What the loop measures: per-frame stage times in fixed-size rings, and the run's counters.

Constant memory however long the run: a :class:`RingTable` allocates its rows once and writes every page of
them when it is made (``np.zeros`` alone only reserves address space: the kernel then commits each 4 KiB page
the first time the loop writes into it, which showed up as resident memory growing by about the ring's row size
times the frame rate for the ring's first 36 minutes at 30 FPS; ``benchmarks/runtime.md``, "Soak").
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence

import numpy as np

__all__ = ["RingTable", "RingBuffer", "Metrics", "STAGES", "COLUMNS"]

#: the loop's stages, in order; each is timed per frame
STAGES = ("capture->read", "preprocess", "infer", "policy", "sinks")
#: the columns of :attr:`Metrics.table`: the stages, then capture -> decision
COLUMNS = STAGES + ("capture->decision",)


class RingTable:
    """Rows of float samples (one row per frame), the last ``capacity`` rows in one preallocated 2D array (constant
    memory however long the run: every page is written here, at creation), so the loop records a frame's numbers
    with a single assignment. :meth:`column` is a read-only :class:`RingBuffer` view of one column."""

    def __init__(self, columns: Sequence[str], capacity: int = 1 << 16) -> None:
        if int(capacity) < 1:
            raise ValueError("capacity must be >= 1, got %r" % capacity)
        self.columns = tuple(columns)
        self._a = np.empty((int(capacity), len(self.columns)), np.float64)
        self._a.fill(0.0)  # touch every page now: resident memory is the same at frame 1 and at frame 10**7
        self._n = 0

    def add(self, row: Sequence[float]) -> None:
        self._a[self._n % len(self._a)] = row
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, len(self._a))

    @property
    def nbytes(self) -> int:
        """Bytes held by the ring (all of it resident from the start)."""
        return int(self._a.nbytes)

    def column(self, name: str) -> "RingBuffer":
        return RingBuffer(_table=self, _column=self.columns.index(name))


class RingBuffer:
    """The last ``capacity`` float samples (a one-column :class:`RingTable`), or a read-only view of one column of
    a table (``RingTable.column``)."""

    def __init__(self, capacity: int = 1 << 16, _table: Optional[RingTable] = None, _column: int = 0) -> None:
        self._own = _table is None
        self._table = RingTable(("x",), capacity) if _table is None else _table
        self._j = _column

    def add(self, x: float) -> None:
        if not self._own:
            raise TypeError("a RingTable column is read-only: add whole rows with RingTable.add")
        self._table.add((x,))

    def __len__(self) -> int:
        return len(self._table)

    @property
    def total(self) -> int:
        """Samples ever added (``len`` counts only those still held)."""
        return self._table._n

    def values(self) -> np.ndarray:
        return self._table._a[:len(self), self._j].copy()

    def summary(self, scale: float = 1e3) -> Dict[str, Any]:
        """The one latency summary (:func:`edge_runtime.bench.statistics.summarize`: ``mean_ms``, ``p50_ms``, ``p90_ms``,
        ``p99_ms``, ``max_ms``, ``n``...) of the held samples times ``scale`` (seconds -> ms by default); {} if none."""
        from .bench.statistics import summarize

        return summarize(self.values(), scale)


@dataclasses.dataclass
class Metrics:
    """What the loop measured. Times in seconds on ``time.monotonic()``."""

    #: one row per decided frame: the stage times and capture -> decision (:data:`COLUMNS`)
    table: RingTable = dataclasses.field(default_factory=lambda: RingTable(COLUMNS))
    frames: int = 0
    polls: int = 0
    watchdog_ticks: int = 0
    observer_errors: int = 0
    t_start: Optional[float] = None
    t_first_frame: Optional[float] = None
    t_last_frame: Optional[float] = None

    @property
    def stages(self) -> Dict[str, RingBuffer]:
        """Per-stage times (views of :attr:`table`)."""
        return {s: self.table.column(s) for s in STAGES}

    @property
    def latency(self) -> RingBuffer:
        """capture -> decision made (what ``deadline_ms`` bounds)."""
        return self.table.column("capture->decision")

    @property
    def fps(self) -> float:
        """Frames decided per second between the first and the last decided frame."""
        if self.frames < 2 or self.t_first_frame is None or self.t_last_frame is None:
            return 0.0
        return (self.frames - 1) / max(1e-9, self.t_last_frame - self.t_first_frame)
