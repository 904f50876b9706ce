"""A matplotlib figure rendered to PNG bytes in memory, for the atomic writes every artifact gets (fsio)."""
from __future__ import annotations

import io
from typing import Any


def png_bytes(fig: Any, dpi: int = 100, close: bool = True, **savefig_kw: Any) -> bytes:
    """``fig`` as PNG bytes; ``close`` releases a pyplot figure afterwards (pyplot is imported only then)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, **savefig_kw)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()
