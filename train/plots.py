"""Figures written the way every artifact is: rendered in memory, then an atomic write."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from edge_runtime.fsio import PathLike, write_bytes_atomic
from edge_runtime.figures import png_bytes


def new_figure(figsize: Tuple[float, float]) -> Any:
    """A matplotlib Figure on the Agg canvas, outside pyplot (no global state, nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Any, path: PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG atomically; no "Software" tag, so the same data give the same bytes."""
    write_bytes_atomic(path, png_bytes(fig, dpi=dpi, close=False, metadata={"Software": None}))
    return Path(path)


def _points(rows: Sequence[Dict[str, Any]], key: str) -> Tuple[List[float], List[float]]:
    pts = [(float(r["epoch"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_curves(rows: Sequence[Dict[str, Any]], path: PathLike, title: str, epochs: Optional[int] = None,
                schedule: Optional[Callable[[float], float]] = None, steps_per_epoch: int = 0) -> Path:
    """Loss, top-1 and learning rate per epoch (as Ultralytics' results.png), readable for 1 to 1000 epochs.

    Every recorded epoch is a marker (up to 30 epochs; beyond, a line), so a 1-epoch run shows its
    points; each legend entry carries the series' last value (no labels to collide in the plot).
    ``schedule(x)`` draws the planned learning rate over the whole run (x in epochs, 0 to ``epochs``)
    under the recorded values, which are the rates of each epoch's last step (drawn at that step).
    """
    n = len(rows)
    mk = dict(marker="o", markersize=4 if n <= 30 else 0)
    fig = new_figure((13, 3.8))
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    last_epoch = max([int(r["epoch"]) for r in rows] + [int(epochs or 1)])
    few = last_epoch <= 10

    def finish(ax: Any, ylabel: str, x0: float) -> None:
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_xlim(x0, last_epoch + (0.5 if few else last_epoch * 0.02))
        if few:
            ax.set_xticks(range(0 if x0 < 0.5 else 1, last_epoch + 1))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)

    for key, label, color in (("train_loss", "train", "C0"), ("test_loss", "test", "C1")):
        xs, ys = _points(rows, key)
        if xs:
            ax_loss.plot(xs, ys, label="%s (last %.3f)" % (label, ys[-1]), color=color, **mk)
    finish(ax_loss, "loss", 0.5 if few else 0)
    for key, label, color, ls in (("train_acc", "train", "C0", "-"), ("test_acc", "test", "C1", "-"),
                                  ("test_acc_first1000", "test, first 1000 (exact)", "C2", "--")):
        xs, ys = _points(rows, key)
        if xs:
            ax_acc.plot(xs, ys, label="%s (last %.2f %%)" % (label, ys[-1]), color=color, ls=ls, **mk)
    finish(ax_acc, "top-1 accuracy (%)", 0.5 if few else 0)
    if schedule is not None:
        grid = [last_epoch * i / 400.0 for i in range(401)]
        ax_lr.plot(grid, [schedule(e) for e in grid], color="0.6", lw=1, label="schedule")
    xs, ys = _points(rows, "lr")
    if xs:
        shift = 1.0 / steps_per_epoch if steps_per_epoch else 0.0
        ax_lr.plot([x - shift for x in xs], ys, color="C3", ls="none" if schedule is not None else "-",
                   label="last step of each epoch (last %.3g)" % ys[-1], marker="o",
                   markersize=4 if n <= 30 else (2 if schedule is not None else 0))
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    finish(ax_lr, "learning rate", 0)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
