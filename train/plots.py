"""Figures written the way every artifact is: rendered in memory, then an atomic write."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Tuple

from edge_runtime.fsio import PathLike, write_bytes_atomic


def new_figure(figsize: Tuple[float, float]) -> Any:
    """A matplotlib Figure on the Agg canvas, outside pyplot (no global state, nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG atomically; no "Software" tag, so the same data give the same bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)
