"""Report shape and its renderings: the terminal table, markdown, CSV, JSON and a PNG."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ..fsio import PathLike, write_bytes_atomic, write_json_atomic, write_text_atomic
from ..figures import png_bytes

FORMAT = "edge-runtime.bench/1"
#: the terminal/CSV/markdown columns (Ultralytics' benchmark columns, plus p99 and peak memory)
COLUMNS = ("format", "status", "size_mb", "accuracy", "accuracy_by", "ms_per_image", "fps", "p99_ms", "peak_rss_mb")
NA = "not available here"


def make_report(mode: str, command: str, ev: Dict[str, Any], resources: Dict[str, Any], rows: List[Dict[str, Any]],
            details: Dict[str, Any], settings: Dict[str, Any]) -> Dict[str, Any]:
    ev = dict(ev)
    ev["loadavg_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"format": FORMAT, "mode": mode, "command": command, "evidence": ev, "settings": settings,
            "resources": resources, "rows": rows, "details": details, "warnings": list(ev.get("warnings", []))}


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if key == "fps":
            return "%.1f" % v
        if key in ("size_mb", "peak_rss_mb"):
            return "%.1f" % v if key == "peak_rss_mb" else "%.2f" % v
        if key == "accuracy":
            return "%.2f" % v
        return "%.3f" % v
    return str(v)


HEADERS = {"format": "format", "status": "status", "size_mb": "size MB", "accuracy": "accuracy %",
           "accuracy_by": "accuracy measured by",
           "ms_per_image": "ms/image", "fps": "FPS", "p99_ms": "p99 ms/image", "peak_rss_mb": "peak RSS MB"}


def format_table(rep: Dict[str, Any]) -> str:
    """The terminal table (Ultralytics' benchmark columns plus p99 and peak memory)."""
    cells = [[HEADERS[c] for c in COLUMNS]] + [[_cell(c, r.get(c)) for c in COLUMNS] for r in rep["rows"]]
    cells = [[c if len(c) <= 60 else c[:57] + "..." for c in row] for row in cells]
    w = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return out


def to_markdown(rep: Dict[str, Any]) -> str:
    ev = rep["evidence"]
    out = ["# edge-runtime bench %s" % rep["mode"], "", "Command: `%s`" % (rep["command"] or "(library call)"), ""]
    extra = ("params", "macs", "rss_growth_mb") if rep["mode"] == "compare" else ()
    heads = [HEADERS[c] for c in COLUMNS] + [{"params": "params M", "macs": "MACs M",
                                              "rss_growth_mb": "RSS added MB"}[e] for e in extra]
    body = []
    for r in rep["rows"]:
        body.append([_cell(c, r.get(c)) for c in COLUMNS] + ["-" if r.get(e) is None else "%.2f" % (
            r[e] / (1.0 if e == "rss_growth_mb" else 1e6)) for e in extra])
    out += _md_table(heads, body)
    d = rep["details"]
    if rep["mode"] == "engine":
        out += ["", "## Latency per call (ms)", ""]
        out += _md_table(["batch", "n", "min", "mean", "median", "p90", "p95", "p99", "max", "images/s"], [
            [b, s["n"]] + ["%.3f" % s[k] for k in ("min_ms", "mean_ms", "median_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")]
            + ["%.1f" % s["throughput_ips"]] for b, s in d["per_batch"].items()])
        if "vs_bare" in d:
            v = d["vs_bare"]
            out += ["", "## Runner overhead vs bare InferenceSession.run", "",
                    "Runner median %.4f ms, bare %.4f ms: overhead %+.4f ms (%+.2f %%; mean %+.4f ms); allowed %.3f ms: "
                    "goal %s. %s." % (v["runner"]["median_ms"], v["bare"]["median_ms"], v["overhead_median_ms"],
                                      v["overhead_median_pct"], v["overhead_mean_ms"], v["allowed_ms"],
                                      "met" if v["goal_met"] else "NOT met", v["method"])]
        if "tensorrt" in d:
            out += ["", "TensorRT: %s." % d["tensorrt"]]
    if rep["mode"] == "e2e":
        out += ["", "Headline: %s; achieved %.1f FPS, source %s FPS; stale %d, dropped %d, deadline misses %d; "
                "p90 / (preprocess p90 + infer p90) = %s." % (
                    d["headline"], d["achieved_fps"], "-" if d["source_fps"] is None else "%g" % d["source_fps"],
                    d["stale_frames"], d["dropped_frames"], d["deadline_misses"],
                    "-" if d["e2e_over_preprocess_infer"] is None else "%.2f" % d["e2e_over_preprocess_infer"]), ""]
        stages = list(d["stages_ms"].items()) + [("capture->decision", d["decision_latency_ms"])]
        out += _md_table(["stage (ms)", "mean", "p50", "p90", "p99", "max"], [
            [k] + ["%.3f" % s[q] for q in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")] for k, s in stages if s])
    for sp in d.get("speedup_vs_pytorch_eager", []):
        out += ["", "PyTorch eager / ONNX Runtime FP32 (%s): mean %.3f ms / %.3f ms = **%.1fx**; median %.3f / %.3f ms "
                "= %.1fx (goal %s)." % (sp["model"], sp["pytorch_ms"], sp["onnxruntime_fp32_ms"], sp["ratio"],
                                        sp["pytorch_median_ms"], sp["onnxruntime_fp32_median_ms"], sp["ratio_median"],
                                        sp["goal"])]
    res = rep["resources"]
    out += ["", "## Resources", "", "Peak RSS %s MB (process peak %s MB); GPU memory: %s; power: %s." % (
        res.get("peak_rss_mb"), res.get("process_peak_rss_mb"),
        res.get("gpu_memory_mb") if res.get("gpu_memory_mb") is not None else res.get("gpu_memory_note", "-"),
        ("%.2f W, %.3f mJ/image" % (res["power_w"], res["energy_mj_per_image"] or 0)) if res.get("power_w")
        else res.get("power_note"))]
    out += ["", "## Evidence", ""]
    keys = ("when", "code", "cpu", "cores", "os", "os_name", "python", "numpy", "opencv", "onnxruntime", "torch", "tensorrt", "cuda",
            "gpu", "driver", "cpu_governor", "loadavg", "loadavg_end", "jetson")
    out += _md_table(["field", "value"], [[k, json.dumps(ev.get(k)) if isinstance(ev.get(k), (list, dict)) else
                                           ("-" if ev.get(k) is None else ev.get(k))] for k in keys])
    if rep["warnings"]:
        out += ["", "Warnings:", ""] + ["- %s" % w for w in rep["warnings"]]
    return "\n".join(out) + "\n"


def to_csv(rep: Dict[str, Any]) -> str:
    keys = list(COLUMNS) + ["model", "artifact", "params", "macs", "batch", "mean_ms", "p50_ms", "p90_ms", "n",
                            "accuracy_source"]
    ev = dict(rep["evidence"])
    ev.update({k: (ev.get("code") or {}).get(k) for k in ("commit", "dirty")})
    ekeys = ["cpu", "cores", "os", "python", "onnxruntime", "torch", "tensorrt", "loadavg", "commit", "dirty"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["mode"] + keys + ["evidence_" + k for k in ekeys])
    for r in rep["rows"]:
        w.writerow([rep["mode"]] + ["" if r.get(k) is None else r.get(k) for k in keys] +
                   [" ".join(map(str, ev[k])) if isinstance(ev.get(k), list) else ev.get(k) for k in ekeys])
    return buf.getvalue()


def _label(text: str, width: int = 38) -> str:
    """A row's name on at most two lines of ``width`` characters (tick labels never run into each other)."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    cut = cut if cut > 0 else width
    rest = text[cut:].strip()
    return text[:cut] + "\n" + (rest if len(rest) <= width else rest[:width - 3] + "...")


def plot_kind(rep: Dict[str, Any]) -> str:
    """``compare`` when two or more rows were measured, else ``distribution`` (what :func:`plot_png` draws)."""
    return "compare" if sum(r.get("ms_per_image") is not None for r in rep["rows"]) >= 2 else "distribution"


def plot_png(rep: Dict[str, Any]) -> bytes:
    """Two or more measured rows: compared (median bars with p90 and p99 marks, one labelled row each, axis from 0;
    beside it accuracy against latency with a legend, when two or more rows have an accuracy). One row: its latency
    distribution (histogram and CDF of the per-call samples, p50/p90/p99 marked), never a lone dot on a
    microsecond axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rep["rows"] if r.get("ms_per_image") is not None]
    ev = rep["evidence"]
    title = "edge-runtime bench %s: %s, %s cores, load %s" % (rep["mode"], str(ev.get("cpu"))[:40], ev.get("cores"),
                                                              (ev.get("loadavg") or ["-"])[0])
    if plot_kind(rep) == "compare":
        acc = [r for r in ok if r.get("accuracy") is not None]
        two = len({r.get("artifact") for r in acc}) >= 2  # one artifact timed several ways: nothing to compare
        fig, axes = plt.subplots(1, 2 if two else 1, figsize=(15 if two else 8, max(3.6, 1.6 + 0.55 * len(ok))),
                                 squeeze=False)
        ax = axes[0][0]
        names = [_label(r["format"]) for r in ok][::-1]
        rows = ok[::-1]
        med = [r.get("p50_ms", r["ms_per_image"] * (r.get("batch") or 1)) / (r.get("batch") or 1) for r in rows]
        ax.barh(range(len(rows)), med, color="#4c72b0", label="median")
        for k, key, mk in (("p90", "p90_ms", "|"), ("p99", "p99_ms", "x")):
            xs = [(r[key] / (r.get("batch") or 1) if key == "p90_ms" else r[key]) if r.get(key) is not None else None
                  for r in rows]
            pts = [(x, y) for y, x in enumerate(xs) if x is not None]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=mk, color="k", s=50, zorder=3, label=k)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(names, fontsize=8)
        ax.set_xlim(left=0)
        ax.set_xlabel("ms per image (bar: median; marks: p90, p99)")
        ax.legend(fontsize=8, ncol=3, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
        ax.grid(axis="x", alpha=0.3)
        if two:
            ax2 = axes[0][1]
            for i, r in enumerate(acc):
                ax2.scatter(r["ms_per_image"], r["accuracy"], s=60, marker="osD^v<>ph"[i % 9],
                            label="%s; accuracy: %s" % (r["format"][:50], r.get("accuracy_by") or str(
                                r.get("accuracy_source") or "?").split(":")[0]))
            ax2.set_xlabel("ms per image (mean)")
            ax2.set_ylabel("top-1 accuracy (%)")
            ax2.set_xlim(left=0)
            ax2.margins(y=0.3)
            ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
            ax2.grid(alpha=0.3)
            ax2.set_title("accuracy vs latency (legend: who measured the accuracy)", fontsize=9)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), squeeze=False)
        ax, ax2 = axes[0]
        if not ok:
            ax.text(0.5, 0.5, "no row was measured", ha="center", va="center", transform=ax.transAxes)
            ax2.axis("off")
        else:
            r = ok[0]
            samples = (rep.get("details") or {}).get("samples_ms", {}).get(r["format"])
            b = r.get("batch") or 1
            if samples:
                import numpy as np

                v = np.sort(np.asarray(samples, np.float64))
                ax.hist(v, bins=min(60, max(10, int(len(v) ** 0.5))), color="#4c72b0")
                ax2.plot(v, np.arange(1, len(v) + 1) / len(v), color="#4c72b0")
                ax2.set_ylabel("fraction <= x")
                ax.set_ylabel("frames" if rep["mode"] == "e2e" else "calls")
            else:  # a report written before the samples were kept: its percentiles, as a ladder
                st = (rep.get("details") or {}).get("decision_latency_ms") or r
                plt.close(fig)
                fig, ax = plt.subplots(figsize=(6.5, 4))
                keys = [k for k in ("min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms") if st.get(k) is not None]
                ax.bar([k[:-3] for k in keys], [st[k] for k in keys], color="#4c72b0")
                for i, k in enumerate(keys):
                    ax.annotate("%.3f" % st[k], (i, st[k]), ha="center", va="bottom", fontsize=8)
                ax.set_ylabel("ms")
                ax.set_title(_label(r["format"], 60) + "\n(percentiles: this report kept no per-call samples)",
                             fontsize=9)
                fig.suptitle(title, fontsize=9)
                fig.tight_layout()
                return png_bytes(fig, bbox_inches="tight")
            for key, ls in (("p50_ms", "-"), ("p90_ms", "--"), ("p99_ms", ":")):
                if r.get(key) is not None:
                    x = r[key] * (b if key == "p99_ms" else 1)  # the row's p99 is per image, samples per call
                    for a in (ax, ax2):
                        a.axvline(x, color="k", ls=ls, lw=1, label="%s %.3f ms" % (key[:3], x))
            xl = "capture->decision, ms per frame" if rep["mode"] == "e2e" else "ms per call (batch %d)" % b
            ax.set_xlabel(xl)
            ax2.set_xlabel(xl)
            ax.legend(fontsize=8)
            ax.set_title(_label(r["format"], 60), fontsize=9)
            ax2.set_title("CDF (n = %s)" % r.get("n", "-"), fontsize=9)
            ax2.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig, bbox_inches="tight")  # the legends outside the axes included


def write_outputs(rep: Dict[str, Any], out_dir: PathLike, stem: Optional[str] = None) -> List[str]:
    """bench-<mode>.json/.csv/.md/.png in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    stem = stem or "bench-%s" % rep["mode"]
    files = [out / (stem + ext) for ext in (".json", ".csv", ".md", ".png")]
    write_json_atomic(files[0], rep)
    write_text_atomic(files[1], to_csv(rep))
    write_text_atomic(files[2], to_markdown(rep))
    write_bytes_atomic(files[3], plot_png(rep))
    return [str(f) for f in files]


def replot(paths: Sequence[PathLike]) -> List[str]:
    """Redraw the PNG beside each bench-<mode>.json from the JSON alone (no re-measurement):
    ``python -m edge_runtime.bench.reports benchmarks/bench-results/*/bench-*.json``."""
    out = []
    for p in paths:
        path = Path(p)
        png = path.with_suffix(".png")
        write_bytes_atomic(png, plot_png(json.loads(path.read_text())))
        out.append(str(png))
    return out


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    import sys

    for f in replot(sys.argv[1:]):
        print("wrote %s" % f)
