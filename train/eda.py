"""Exploratory data analysis of CIFAR-10 / CIFAR-100 (the paper's section III.C).

:func:`run_eda` writes into one folder:

  summary.json / summary.md  image size and counts, per-channel mean/std (0-1 and 0-255) of train
                             and test, pixel statistics, class (and superclass) counts, PCA and
                             t-SNE figures of merit
  samples.png                a sample grid (CIFAR-10: 10 random train images per class; CIFAR-100:
                             one row per superclass, one image of each of its fine classes)
  pca_variance.png           cumulative explained variance, components for 90/95/99 % marked
  pca_scatter.png            train images on the first two principal components
  tsne.png                   t-SNE of a random train subset, run on its top-50 PCA components

PCA is fitted on a seeded random sample of flattened train images scaled to [0, 1]; t-SNE runs on
another seeded random subset (never "the first N" images: the order of a split is not random).
Points are coloured by class for CIFAR-10 and by superclass for CIFAR-100 (100 colours are not
readable). Figures are rendered with matplotlib's Agg canvas and written atomically.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import write_json_atomic, write_text_atomic

from .plots import save_png
from train.data import CifarData, Split, channel_stats

#: channel values at or above / at or below these count as near-saturated (0-255 scale)
SATURATION_HIGH = 250
SATURATION_LOW = 5
#: t-SNE input dimensionality (top principal components)
TSNE_PCA_DIMS = 50
#: resolution of every figure (the output folder is meant to be small enough to commit)
DPI = 90

FILES = {
    "summary_json": "summary.json",
    "summary_md": "summary.md",
    "samples": "samples.png",
    "pca_variance": "pca_variance.png",
    "pca_scatter": "pca_scatter.png",
    "tsne": "tsne.png",
}

# Stream offsets so the sample grid, PCA sample and t-SNE subset draw independent random indices.
_STREAM_SAMPLES, _STREAM_PCA, _STREAM_TSNE = 1, 2, 3


# ---------------------------------------------------------------------------------------- statistics


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def _random_indices(n_total: int, n: int, seed: int, stream: int) -> np.ndarray:
    """``min(n, n_total)`` distinct indices drawn at random (sorted, for cache-friendly reads)."""
    n = min(int(n), n_total)
    return np.sort(_rng(seed, stream).permutation(n_total)[:n])


def _channel_summary(images: np.ndarray) -> Dict[str, Any]:
    mean, std = channel_stats(images)
    return {
        "mean": [round(v, 6) for v in mean],
        "std": [round(v, 6) for v in std],
        "mean_255": [round(v * 255.0, 4) for v in mean],
        "std_255": [round(v * 255.0, 4) for v in std],
    }


def _pixel_summary(images: np.ndarray, chunk: int = 10000) -> Dict[str, Any]:
    """Pixel-value statistics from an exact 256-bin histogram, and per-image brightness."""
    hist = np.zeros(256, np.int64)
    brightness = np.empty(len(images), np.float64)
    for i in range(0, len(images), chunk):
        block = images[i:i + chunk]
        hist += np.bincount(block.reshape(-1), minlength=256)
        brightness[i:i + len(block)] = block.reshape(len(block), -1).mean(axis=1, dtype=np.float64)
    total = int(hist.sum())
    nonzero = np.nonzero(hist)[0]
    cdf = np.cumsum(hist)
    median = int(np.searchsorted(cdf, (total + 1) // 2))  # lower median of all channel values
    return {
        "value_min": int(nonzero[0]),
        "value_max": int(nonzero[-1]),
        "value_median": median,
        "value_mean": round(float((hist * np.arange(256)).sum() / total), 4),
        "image_brightness_min": round(float(brightness.min()), 3),
        "image_brightness_median": round(float(np.median(brightness)), 3),
        "image_brightness_max": round(float(brightness.max()), 3),
        "near_white_fraction": round(float(hist[SATURATION_HIGH:].sum() / total), 6),
        "near_black_fraction": round(float(hist[:SATURATION_LOW + 1].sum() / total), 6),
    }


def _counts(labels: np.ndarray, names: Sequence[str]) -> Dict[str, int]:
    c = np.bincount(np.asarray(labels, np.int64), minlength=len(names))
    return {str(n): int(v) for n, v in zip(names, c)}


def _split_summary(data: CifarData, split: Split) -> Dict[str, Any]:
    out: Dict[str, Any] = {"images": len(split)}
    out["channels"] = _channel_summary(split.images)
    out["pixels"] = _pixel_summary(split.images)
    out["class_counts"] = _counts(split.labels, data.class_names)
    counts = list(out["class_counts"].values())
    out["class_count_min"] = min(counts)
    out["class_count_max"] = max(counts)
    if data.superclass_names and split.coarse_labels is not None:
        out["superclass_counts"] = _counts(split.coarse_labels, data.superclass_names)
    return out


# ---------------------------------------------------------------------------------------- figures


def _new_figure(figsize: Tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Any, path: Path) -> None:
    save_png(fig, path, DPI)  # no "Software" tag: the same data and seed give byte-identical PNGs


def _mosaic(images: List[List[Optional[np.ndarray]]], gap_x: int = 2, gap_y: int = 2) -> np.ndarray:
    """Tile rows of 32x32x3 images onto a white canvas (``None`` leaves a blank cell)."""
    rows, cols = len(images), max(len(r) for r in images)
    canvas = np.full((rows * (32 + gap_y) - gap_y, cols * (32 + gap_x) - gap_x, 3), 255, np.uint8)
    for r, row in enumerate(images):
        for c, img in enumerate(row):
            if img is not None:
                y, x = r * (32 + gap_y), c * (32 + gap_x)
                canvas[y:y + 32, x:x + 32] = img
    return canvas


def _plot_samples(data: CifarData, path: Path, seed: int, per_class: int = 10) -> str:
    """Sample grid of random train images; returns a one-line description of its layout."""
    split = data.train
    rng = _rng(seed, _STREAM_SAMPLES)
    by_class = [np.nonzero(split.labels == k)[0] for k in range(data.num_classes)]

    def pick(k: int, n: int) -> List[Optional[np.ndarray]]:
        chosen = rng.permutation(by_class[k])[:n]
        imgs: List[Optional[np.ndarray]] = [split.images[i] for i in chosen]
        return imgs + [None] * (n - len(imgs))

    captions: List[Tuple[int, int, str]] = []  # (row, column, fine-class name) under a tile
    if data.superclass_names and data.fine_to_coarse is not None:
        groups = [[f for f, c in enumerate(data.fine_to_coarse) if c == k] for k in range(len(data.superclass_names))]
        cols = max(len(g) for g in groups)
        rows: List[List[Optional[np.ndarray]]] = []
        for r, fines in enumerate(groups):
            row: List[Optional[np.ndarray]] = []
            for c, f in enumerate(fines):
                row += pick(f, 1)
                captions.append((r, c, data.class_names[f]))
            rows.append(row + [None] * (cols - len(row)))
        row_labels = [name.replace("_", " ") for name in data.superclass_names]
        layout = "one row per superclass, one random train image of each of its fine classes"
        title = "%s: one random train image per fine class, one row per superclass" % data.name
        gap_x, gap_y, tile_w, tile_h = 8, 11, 0.8, 0.86
    else:
        shown = list(range(min(data.num_classes, 20)))
        rows = [pick(k, per_class) for k in shown]
        cols = per_class
        row_labels = [data.class_names[k] for k in shown]
        layout = "%d random train images per class, one row per class" % per_class
        if data.num_classes > len(shown):
            layout += " (first %d of %d classes)" % (len(shown), data.num_classes)
        title = "%s: %d random train images per class" % (data.name, per_class)
        gap_x, gap_y, tile_w, tile_h = 2, 2, 0.62, 0.62
    canvas = _mosaic(rows, gap_x, gap_y)
    label_w = 0.075 * max(len(t) for t in row_labels) + 0.25  # inches for the row labels
    top = 0.45
    fig_w, fig_h = label_w + cols * tile_w + 0.15, len(rows) * tile_h + top + 0.1
    fig = _new_figure((fig_w, fig_h))
    ax = fig.add_axes((label_w / fig_w, 0.1 / fig_h, cols * tile_w / fig_w, len(rows) * tile_h / fig_h))
    extra = gap_y if captions else 0  # the caption strip under the last row
    ax.imshow(canvas, interpolation="nearest", aspect="auto",
              extent=(-0.5, canvas.shape[1] - 0.5, canvas.shape[0] - 0.5, -0.5))
    ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
    ax.set_ylim(canvas.shape[0] - 0.5 + extra, -0.5)
    ax.set_xticks([])
    ax.set_yticks([r * (32 + gap_y) + 15.5 for r in range(len(rows))])
    ax.set_yticklabels(row_labels, fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for r, c, text in captions:
        ax.text(c * (32 + gap_x) + 15.5, r * (32 + gap_y) + 32.5, text.replace("_", " "), ha="center", va="top",
                fontsize=6)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / fig_h, va="top")
    _save_png(fig, path)
    return layout


def _colour_key(data: CifarData, labels: np.ndarray, coarse: Optional[np.ndarray]) -> Tuple[np.ndarray, List[str], str]:
    """Colour index per point, legend names, and what the colours mean."""
    if data.superclass_names and coarse is not None:
        return np.asarray(coarse), list(data.superclass_names), "superclass"
    return np.asarray(labels), list(data.class_names), "class"


def _scatter(path: Path, xy: np.ndarray, key: np.ndarray, names: List[str], title: str, xlabel: str, ylabel: str) -> None:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    fig = _new_figure((9.0 if len(names) > 10 else 8.0, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    size = 4.0 if len(xy) > 3000 else 7.0 if len(xy) > 500 else 14.0
    order = np.random.default_rng(0).permutation(len(xy))  # no class drawn entirely on top of another
    colours = cmap(np.asarray(key)[order] % cmap.N)
    ax.scatter(xy[order, 0], xy[order, 1], c=colours, s=size, alpha=0.6, linewidths=0, rasterized=True)
    for k, name in enumerate(names):
        ax.scatter([], [], color=cmap(k % cmap.N), s=30, label=name.replace("_", " "))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7 if len(names) > 10 else 8,
              frameon=False, handletextpad=0.2, borderaxespad=0.0)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    _save_png(fig, path)


def _plot_variance(path: Path, ratios: np.ndarray, marks: Dict[str, int], name: str, n_samples: int,
                   n_features: int) -> None:
    cum = np.cumsum(ratios)
    fig = _new_figure((8.0, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    comps = np.arange(1, len(cum) + 1)
    ax.plot(comps, cum * 100.0, color="tab:blue", lw=1.8, label="cumulative")
    ax.plot(comps, ratios * 100.0, color="tab:gray", lw=1.0, label="per component")
    colours = {"90": "tab:green", "95": "tab:orange", "99": "tab:red"}
    for pct, k in marks.items():
        ax.axhline(float(pct), color=colours.get(pct, "k"), ls=":", lw=0.9)
        ax.axvline(k, color=colours.get(pct, "k"), ls="--", lw=0.9)
        ax.plot([k], [float(pct)], "o", color=colours.get(pct, "k"), label="%s %% at %d components" % (pct, k))
    ax.set_xscale("log")
    ax.set_xlim(1, len(cum))
    ax.set_ylim(0, 101)
    ax.set_xlabel("number of principal components (log scale)")
    ax.set_ylabel("explained variance (%)")
    ax.set_title("%s: PCA explained variance\n(%d random train images, %d values in [0, 1] each)"
                 % (name, n_samples, n_features), fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    _save_png(fig, path)


# ---------------------------------------------------------------------------------------- markdown


def _fmt3(values: Sequence[float], digits: int) -> List[str]:
    return [("%." + str(digits) + "f") % v for v in values]


def _markdown(s: Dict[str, Any]) -> str:
    lines: List[str] = []
    add = lines.append
    add("# Exploratory data analysis: %s" % s["dataset"])
    add("")
    add("| | |")
    add("|---|---|")
    add("| images | %d train, %d test (%d in all) |" % (s["images"]["train"], s["images"]["test"], s["images"]["total"]))
    add("| image size | %s (height x width x channels), uint8 RGB |" % " x ".join(str(v) for v in s["image_size"]))
    add("| classes | %d%s |" % (s["num_classes"], " in %d superclasses" % s["num_superclasses"] if s.get("num_superclasses") else ""))
    add("| source | `%s`%s |" % (s["source"], " (partial copy)" if s["partial"] else ""))
    add("| seed | %d |" % s["seed"])
    add("")
    for note in s.get("notes") or []:
        add("> Note: %s" % note)
        add("")
    add("## Per-channel statistics")
    add("")
    add("| split | scale | mean R | mean G | mean B | std R | std G | std B |")
    add("|---|---|---:|---:|---:|---:|---:|---:|")
    for split in ("train", "test"):
        ch = s[split]["channels"]
        add("| %s | 0-1 | %s | %s |" % (split, " | ".join(_fmt3(ch["mean"], 4)), " | ".join(_fmt3(ch["std"], 4))))
        add("| %s | 0-255 | %s | %s |" % (split, " | ".join(_fmt3(ch["mean_255"], 2)), " | ".join(_fmt3(ch["std_255"], 2))))
    add("")
    add("## Pixel statistics (0-255)")
    add("")
    add("Values are over all channel values; brightness is an image's mean over its pixels and channels. "
        "Near-white: value >= %d, near-black: value <= %d." % (SATURATION_HIGH, SATURATION_LOW))
    add("")
    add("| split | min | max | median | mean | darkest image | median image | brightest image | near-white | near-black |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for split in ("train", "test"):
        p = s[split]["pixels"]
        add("| %s | %d | %d | %d | %.2f | %.2f | %.2f | %.2f | %.3f %% | %.3f %% |" % (
            split, p["value_min"], p["value_max"], p["value_median"], p["value_mean"], p["image_brightness_min"],
            p["image_brightness_median"], p["image_brightness_max"], 100 * p["near_white_fraction"],
            100 * p["near_black_fraction"]))
    add("")
    add("## Class balance")
    add("")
    for split in ("train", "test"):
        add("- %s: %d to %d images per class" % (split, s[split]["class_count_min"], s[split]["class_count_max"]))
    add("")
    if s.get("num_superclasses"):
        add("| superclass | fine classes | train | test |")
        add("|---|---|---:|---:|")
        for name, fines in s["superclass_members"].items():
            add("| %s | %s | %d | %d |" % (name, ", ".join(fines), s["train"]["superclass_counts"][name],
                                          s["test"]["superclass_counts"][name]))
        add("")
    add("| class | train | test |")
    add("|---|---:|---:|")
    for name, n in s["train"]["class_counts"].items():
        add("| %s | %d | %d |" % (name, n, s["test"]["class_counts"][name]))
    add("")
    pca = s["pca"]
    add("## PCA")
    add("")
    add("Fitted on %d random train images, flattened to %d values in [0, 1]." % (pca["samples"], pca["features"]))
    add("")
    add("| explained variance | components |")
    add("|---|---:|")
    for pct, k in pca["components_for"].items():
        add("| %s %% | %d |" % (pct, k))
    add("")
    add("The first two components explain %.1f %% and %.1f %% of the variance." % tuple(
        100 * v for v in pca["explained_variance_ratio_first"][:2]))
    add("")
    t = s["tsne"]
    add("## t-SNE")
    add("")
    add("%d random train images, on their top %d PCA components; perplexity %.1f, init=pca, final KL divergence %.3f."
        % (t["samples"], t["pca_dims"], t["perplexity"], t["kl_divergence"]))
    add("")
    add("## Figures")
    add("")
    add("Samples (%s):" % s["samples_layout"])
    add("")
    add("![samples](%s)" % FILES["samples"])
    add("")
    add("![PCA explained variance](%s)" % FILES["pca_variance"])
    add("")
    add("![PCA scatter](%s)" % FILES["pca_scatter"])
    add("")
    add("![t-SNE](%s)" % FILES["tsne"])
    add("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- driver


def run_eda(data: CifarData, out_dir: Path, tsne_samples: int = 2000, pca_samples: int = 10000, seed: int = 0,
            progress: bool = True) -> Dict[str, Any]:
    """Write summary.json, summary.md and the four figures for ``data`` into ``out_dir``.

    Returns the summary (the content of summary.json), whose ``files`` maps each output to its
    path under ``out_dir`` (summary.json itself stores the bare file names, so it can be moved).
    Raises :class:`EdgeRuntimeError` for sample sizes that cannot work.
    """
    if pca_samples < 3:
        raise EdgeRuntimeError("--pca-samples must be at least 3, got %d" % pca_samples)
    if tsne_samples < 5:
        raise EdgeRuntimeError("--tsne-samples must be at least 5 (t-SNE needs perplexity >= 1), got %d" % tsne_samples)
    if len(data.train) < 5:
        raise EdgeRuntimeError("%s has only %d train images; the analysis needs at least 5" % (data.name, len(data.train)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    steps: List[Tuple[str, Callable[[], None]]] = []
    timing: Dict[str, float] = {}
    s: Dict[str, Any] = {
        "dataset": data.name,
        "source": data.source,
        "partial": bool(data.partial),
        "seed": int(seed),
        "image_size": [int(v) for v in data.train.images.shape[1:]],
        "images": {"train": len(data.train), "test": len(data.test), "total": len(data.train) + len(data.test)},
        "num_classes": data.num_classes,
    }
    if data.superclass_names:
        s["num_superclasses"] = len(data.superclass_names)
        if data.fine_to_coarse is not None:
            s["superclass_members"] = {sup: [data.class_names[f] for f, c in enumerate(data.fine_to_coarse) if c == k]
                                       for k, sup in enumerate(data.superclass_names)}
    state: Dict[str, Any] = {}

    def statistics() -> None:
        s["train"] = _split_summary(data, data.train)
        s["test"] = _split_summary(data, data.test)

    def samples() -> None:
        s["samples_layout"] = _plot_samples(data, out_dir / FILES["samples"], seed)

    def pca() -> None:
        from sklearn.decomposition import PCA

        idx = _random_indices(len(data.train), pca_samples, seed, _STREAM_PCA)
        x = data.train.images[idx].reshape(len(idx), -1).astype(np.float32) / np.float32(255.0)
        # More images than pixels: the covariance route (d x d eigh) is several times faster than an SVD of x.
        solver = "covariance_eigh" if x.shape[0] >= x.shape[1] else "full"
        model = PCA(svd_solver=solver, random_state=seed).fit(x)
        ratios = model.explained_variance_ratio_.astype(np.float64)
        cum = np.cumsum(ratios)
        marks = {}
        for pct in (90, 95, 99):
            k = int(np.searchsorted(cum, pct / 100.0 - 1e-12) + 1)
            marks[str(pct)] = min(k, len(cum))
        state.update(pca=model, pca_idx=idx, pca_xy=model.transform(x)[:, :2], ratios=ratios, marks=marks)
        s["pca"] = {"samples": int(len(idx)), "features": int(x.shape[1]), "solver": solver,
                    "components_fitted": int(len(ratios)),
                    "components_for": marks,
                    "explained_variance_ratio_first": [round(float(v), 6) for v in ratios[:10]]}

    def pca_plots() -> None:
        idx = state["pca_idx"]
        _plot_variance(out_dir / FILES["pca_variance"], state["ratios"], state["marks"], data.name, len(idx),
                       s["pca"]["features"])
        key, names, what = _colour_key(data, data.train.labels[idx],
                                       None if data.train.coarse_labels is None else data.train.coarse_labels[idx])
        r = state["ratios"]
        _scatter(out_dir / FILES["pca_scatter"], state["pca_xy"], key, names,
                 "%s: %d random train images on the first two principal components\n(colour: %s)" % (data.name, len(idx), what),
                 "PC1 (%.1f %% of variance)" % (100 * r[0]), "PC2 (%.1f %% of variance)" % (100 * r[1]))

    def tsne() -> None:
        from sklearn.manifold import TSNE

        idx = _random_indices(len(data.train), tsne_samples, seed, _STREAM_TSNE)
        n = len(idx)
        x = data.train.images[idx].reshape(n, -1).astype(np.float32) / np.float32(255.0)
        dims = min(TSNE_PCA_DIMS, state["pca"].n_components_)
        z = state["pca"].transform(x)[:, :dims]
        perplexity = float(min(30.0, (n - 1) / 3.0))
        model = TSNE(n_components=2, init="pca", perplexity=perplexity, learning_rate="auto", random_state=seed)
        state["tsne_xy"] = model.fit_transform(z)
        state["tsne_idx"] = idx
        s["tsne"] = {"samples": int(n), "pca_dims": int(dims), "perplexity": round(perplexity, 3),
                     "kl_divergence": round(float(model.kl_divergence_), 4)}

    def tsne_plot() -> None:
        idx = state["tsne_idx"]
        key, names, what = _colour_key(data, data.train.labels[idx],
                                       None if data.train.coarse_labels is None else data.train.coarse_labels[idx])
        t = s["tsne"]
        _scatter(out_dir / FILES["tsne"], state["tsne_xy"], key, names,
                 "%s: t-SNE of %d random train images\n(on the top %d PCA components, perplexity %.0f; colour: %s)"
                 % (data.name, t["samples"], t["pca_dims"], t["perplexity"], what), "t-SNE 1", "t-SNE 2")

    def write_summary() -> None:
        s["notes"] = list(data.notes)
        s["timing_s"] = {k: round(v, 2) for k, v in timing.items()}
        s["files"] = dict(FILES)
        write_json_atomic(out_dir / FILES["summary_json"], s)
        write_text_atomic(out_dir / FILES["summary_md"], _markdown(s))

    steps = [("statistics", statistics), ("sample grid", samples), ("PCA", pca), ("PCA plots", pca_plots),
             ("t-SNE", tsne), ("t-SNE plot", tsne_plot), ("summary", write_summary)]
    with tqdm(total=len(steps), disable=not progress, desc="eda %s" % data.name, unit="step",
              dynamic_ncols=True) as bar:
        for name, fn in steps:
            bar.set_postfix_str(name)
            t0 = time.perf_counter()
            fn()
            timing[name] = time.perf_counter() - t0
            bar.update(1)
    result = dict(s)
    result["files"] = {k: str(out_dir / v) for k, v in FILES.items()}
    return result
