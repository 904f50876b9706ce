"""The reports of an experiment grid: results.md (the table), results.json and summary.png."""
from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from edge_runtime.fsio import PathLike, write_json_atomic, write_text_atomic

RESULTS_FORMAT = "edge-runtime.experiment-results/1"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return "%g" % v
    if isinstance(v, dict):
        return "-".join("%s=%s" % (k, _fmt_value(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return "+".join(_fmt_value(x) for x in v)
    return str(v)


def _num(v: Optional[float], fmt: str) -> str:
    return "-" if v is None else fmt % v


def data_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """One sentence on what the accuracies were measured on."""
    ns = sorted({int(r["test_images"]) for r in rows if r.get("test_images") is not None})
    sets = sorted({str(r["dataset"]) for r in rows if r.get("test_images") is not None})
    if not ns:
        return "No run has finished yet."
    n_text = "%d" % ns[0] if len(ns) == 1 else "%d-%d" % (ns[0], ns[-1])
    text = ("Test accuracy is measured on the data at hand: %s test images of %s per run, top-1 of best.pt (the epoch "
            "with the highest test accuracy, as the trainer selects it, or the weight average of a run with "
            "average_from when that scored higher)." % (n_text, "/".join(sets)))
    if ns != [10000]:
        text += " That is not the full 10,000-image test set, so these figures are not comparable to the paper's."
    return text


def _minutes(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    return "%.2f" % (seconds / 60.0) if seconds < 60 else "%.1f" % (seconds / 60.0)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The results as a markdown table: ours beside the paper's top-1, params, MACs, epochs, minutes."""
    head = ("| # | run | model | optimizer | lr | dataset | top-1 ours (%) | top-1 paper (%) | params (M) | MACs (M) "
            "| epochs | minutes | status |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        epochs = "-" if r.get("epochs_run") is None else str(r["epochs_run"])
        if r.get("epochs_run") is not None and r["epochs_run"] != r["epochs"]:
            epochs += " of %d" % r["epochs"]
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["index"], str(r["label"]).replace("|", "/"), r["model"], r["optimizer"], _fmt_value(r["lr"]), r["dataset"],
            _num(r.get("top1"), "%.2f"), _num(r.get("paper_top1"), "%.2f"),
            _num(None if r.get("params") is None else r["params"] / 1e6, "%.2f"),
            _num(None if r.get("macs") is None else r["macs"] / 1e6, "%.1f"), epochs,
            _minutes(r.get("seconds")), r["status"]))
    return "\n".join(lines) + "\n"


def render_markdown(name: str, rows: Sequence[Mapping[str, Any]], command: str) -> str:
    """results.md: a title, the table, the command and what the accuracy was measured on."""
    return ("# %s\n\n%s\nCommand: `%s`\n\n%s \"-\" where the paper gives no figure.\n"
            % (name, markdown_table(rows), command, data_note(rows)))


def plot_summary(rows: Sequence[Mapping[str, Any]], path: PathLike, title: str) -> None:
    """summary.png: ours vs the paper per row (bars), and our top-1 against MACs (log scale)."""
    from .plots import new_figure, save_png

    done = [r for r in rows if r.get("top1") is not None]
    fig = new_figure((13, 4.8))
    a1, a2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    xs = list(range(len(rows)))
    w = 0.4
    ours = [r.get("top1") if r.get("top1") is not None else math.nan for r in rows]
    paper = [r.get("paper_top1") if r.get("paper_top1") is not None else math.nan for r in rows]
    a1.bar([x - w / 2 for x in xs], ours, w, label="ours", color="tab:blue")
    a1.bar([x + w / 2 for x in xs], paper, w, label="paper", color="tab:orange")
    for x, v in zip(xs, ours):
        if not math.isnan(v):
            a1.text(x - w / 2, v + 0.5, "%.1f" % v, ha="center", va="bottom", fontsize=7)
    for x, v in zip(xs, paper):
        if not math.isnan(v):
            a1.text(x + w / 2, v + 0.5, "%.1f" % v, ha="center", va="bottom", fontsize=7)
    a1.set_xticks(xs)
    a1.set_xticklabels(["%d %s" % (r["index"], r["label"]) for r in rows], rotation=35, ha="right", fontsize=8)
    a1.set_ylabel("top-1 accuracy (%)")
    a1.set_ylim(0, 100)
    a1.legend(loc="upper left")
    a1.grid(axis="y", alpha=0.3)
    a1.set_title("ours vs paper (no orange bar: no figure in the paper)", fontsize=9)
    pts = [r for r in done if r.get("macs")]
    for r in pts:
        a2.scatter(r["macs"] / 1e6, r["top1"], color="tab:blue")
        a2.annotate(str(r["index"]), (r["macs"] / 1e6, r["top1"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        if r.get("paper_top1") is not None:
            a2.scatter(r["macs"] / 1e6, r["paper_top1"], facecolors="none", edgecolors="tab:orange")
    if pts:
        a2.set_xscale("log")
    a2.set_xlabel("multiply-adds per 32x32 image (M, log)")
    a2.set_ylabel("top-1 accuracy (%)")
    a2.grid(alpha=0.3)
    a2.set_title("accuracy vs compute (numbers: rows; hollow: paper)", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def write_results(out_dir: PathLike, name: str, rows: Sequence[Mapping[str, Any]], command: str,
                  overrides: Optional[Mapping[str, Any]] = None) -> None:
    """Write results.json, results.md and summary.png (each atomically) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", {
        "format": RESULTS_FORMAT, "grid": name, "command": command,
        "overrides": {k: v for k, v in (overrides or {}).items() if v is not None},
        "note": data_note(rows), "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": [dict(r) for r in rows]})
    write_text_atomic(out / "results.md", render_markdown(name, rows, command))
    plot_summary(rows, out / "summary.png", "%s: top-1 on %s" % (name, "/".join(sorted({str(r["dataset"]) for r in rows}))))

