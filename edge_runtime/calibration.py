"""Calibrated confidence: temperature scaling (Guo et al. 2017), expected calibration error, reliability diagram.

A classifier's softmax is usually over- or under-confident: of the frames where it says "dog 0.9", far fewer
or far more than 90 % are dogs, so a policy threshold of 0.40 means nothing in particular. Temperature scaling
divides the logits by one scalar ``T`` fitted to minimise the negative log-likelihood on labelled images the
test never sees (a slice of the TRAIN split); it does not change the argmax, so accuracy is unchanged, and
after it "0.9" means "right about 90 % of the time" on images like the fitting ones.

The temperature lives in the model's manifest::

    "calibration": {"temperature": 1.31, "fitted_on": "cifar10 train[45000:50000]", "ece_before": 0.041,
                    "ece_after": 0.012, "bins": 15, ...}

and :func:`probabilities` is the ONE place that turns logits into probabilities for the runtime, ``eval``,
``score``/``tune`` and ``predict``: ``probabilities(logits, manifest)`` applies the manifest's temperature
when there is one (and is a plain softmax otherwise).

numpy only (this runs on the robot); the fit is a 1-D golden-section search on log T, no scipy.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import EdgeRuntimeError
from .figures import png_bytes

__all__ = ["temperature_of", "probabilities", "nll", "fit_temperature", "ece", "reliability", "reliability_png",
           "calibration_record", "BINS"]

#: ECE bins (15 equal-width confidence bins, as in Guo et al.)
BINS = 15
#: the search interval for T
T_MIN, T_MAX = 0.05, 20.0


def temperature_of(manifest: Optional[Mapping[str, Any]]) -> float:
    """The manifest's calibration temperature, 1.0 when it has none. A bad value is one line."""
    cal = (manifest or {}).get("calibration") if manifest is not None else None
    if not cal:
        return 1.0
    t = cal.get("temperature") if isinstance(cal, Mapping) else None
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not (T_MIN <= float(t) <= T_MAX):
        raise EdgeRuntimeError("manifest calibration.temperature is %r; expected a number in [%g, %g]; refit it with "
                               "edge-runtime calibrate MODEL" % (t, T_MIN, T_MAX))
    return float(t)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.array(z, dtype=np.float64)  # a copy, worked on in place
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def probabilities(logits: np.ndarray, calibration: Union[None, float, Mapping[str, Any]] = None) -> np.ndarray:
    """Softmax of ``logits / T`` over the last axis (float64). ``calibration``: a manifest (its
    ``calibration.temperature``), a temperature, or None (plain softmax)."""
    t = calibration if isinstance(calibration, (int, float)) else temperature_of(calibration)
    z = np.asarray(logits)
    return _softmax(z if t == 1.0 else np.asarray(z, np.float64) / float(t))


def nll(logits: np.ndarray, labels: np.ndarray, t: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / t)``."""
    z = np.asarray(logits, np.float64) / float(t)
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return float((lse - z[np.arange(len(z)), labels]).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, tol: float = 1e-4) -> float:
    """The T in [0.05, 20] minimising the NLL, by golden-section search on log T (the NLL is unimodal in it)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) < 2:
        raise EdgeRuntimeError("temperature fit: need (N, C) logits and N labels with N >= 2, got %s and %d labels"
                               % (logits.shape, len(labels)))
    if not np.all(np.isfinite(logits)):
        raise EdgeRuntimeError("temperature fit: the model produced non-finite logits; the artifact is broken")
    a, b = math.log(T_MIN), math.log(T_MAX)
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, labels, math.exp(c)), nll(logits, labels, math.exp(d))
    while b - a > tol:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, labels, math.exp(d))
    return float(math.exp((a + b) / 2.0))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Dict[str, Any]:
    """Per confidence bin (equal width on [0, 1]): count, mean confidence, accuracy; and the ECE (the
    count-weighted mean |accuracy - confidence|, as a fraction) and the maximum gap (MCE)."""
    p = np.asarray(probs, np.float64)
    conf = p.max(axis=1)
    ok = (p.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    idx = np.minimum((conf * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    sconf = np.bincount(idx, weights=conf, minlength=bins)
    sacc = np.bincount(idx, weights=ok, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mconf = np.where(count > 0, sconf / count, np.nan)
        macc = np.where(count > 0, sacc / count, np.nan)
    gap = np.abs(macc - mconf)
    n = max(1.0, float(count.sum()))
    return {"bins": bins, "count": count.astype(int).tolist(), "confidence": mconf.tolist(), "accuracy": macc.tolist(),
            "ece": float(np.nansum(gap * count) / n), "mce": float(np.nanmax(gap)) if count.any() else 0.0,
            "accuracy_all": float(ok.mean()) if len(ok) else 0.0, "mean_confidence": float(conf.mean()) if len(ok) else 0.0}


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error (fraction, not %), ``bins`` equal-width confidence bins."""
    return float(reliability(probs, labels, bins)["ece"])


def calibration_record(t: float, fit_logits: np.ndarray, fit_labels: np.ndarray, fitted_on: str,
                       command: str = "", measured_with: str = "") -> Dict[str, Any]:
    """The manifest's ``calibration`` block: T, where it was fitted, and ECE/NLL before and after on that slice."""
    before = reliability(probabilities(fit_logits, 1.0), fit_labels)
    after = reliability(probabilities(fit_logits, t), fit_labels)
    return {"temperature": round(float(t), 4), "fitted_on": fitted_on, "n": int(len(fit_labels)), "bins": BINS,
            "ece_before": round(before["ece"], 5), "ece_after": round(after["ece"], 5),
            "nll_before": round(nll(fit_logits, fit_labels, 1.0), 5), "nll_after": round(nll(fit_logits, fit_labels, t), 5),
            "method": "temperature scaling, golden-section search on log T minimising NLL",
            "measured_with": measured_with, "command": command}


def reliability_png(curves: Sequence[Tuple[str, Mapping[str, Any]]], title: str) -> bytes:
    """A reliability diagram: accuracy against confidence per bin for each (label, :func:`reliability` result),
    with the diagonal; matplotlib when installed, else a plain bar picture."""
    try:

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .evaluate import _png

        h, w = 200, 200 * max(1, len(curves))
        img = np.full((h, w, 3), 255, np.uint8)
        for j, (_, rel) in enumerate(curves):
            b = int(rel["bins"])
            for i, acc in enumerate(rel["accuracy"]):
                if acc == acc:  # not NaN
                    x0 = j * 200 + i * 200 // b
                    img[h - int(acc * (h - 1)) - 1:, x0:x0 + max(1, 200 // b - 1)] = (60, 90, 200)
        return _png(img)
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.2), squeeze=False)
    for ax, (label, rel) in zip(axes[0], curves):
        b = int(rel["bins"])
        centers = (np.arange(b) + 0.5) / b
        acc = np.array(rel["accuracy"], dtype=np.float64)
        conf = np.array(rel["confidence"], dtype=np.float64)
        ax.bar(centers, np.nan_to_num(acc), width=1.0 / b, edgecolor="black", color="#4c72b0", label="accuracy")
        ax.bar(centers, np.nan_to_num(conf - acc), bottom=np.nan_to_num(acc), width=1.0 / b, color="#dd8452",
               alpha=0.5, edgecolor="#dd8452", label="gap to confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top-class probability)")
        ax.set_ylabel("accuracy")
        ax.set_title("%s: ECE %.2f %%" % (label, 100 * rel["ece"]), fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return png_bytes(fig)


def _slice(spec: str, n: int) -> Tuple[int, int]:
    a, _, b = spec.partition(":")
    try:
        lo, hi = int(a or 0), int(b or n)
    except ValueError:
        raise EdgeRuntimeError("--slice %r: expected START:END, e.g. 45000:50000" % spec) from None
    if not (0 <= lo < hi <= n) or hi - lo < 100:
        raise EdgeRuntimeError("--slice %s: expected 0 <= START < END <= %d with at least 100 images" % (spec, n))
    return lo, hi


def calibrate_artifact(artifact: Any, data_dir: Any = None, slice_spec: str = "45000:50000", test: bool = True,
                       write: bool = True, out_dir: Any = None, command: str = "",
                       threads: Optional[int] = None) -> Dict[str, Any]:
    """Fit T for an artifact on a slice of its dataset's TRAIN split, measure ECE before/after on that slice (and on
    the full test split with ``test``), store the ``calibration`` block in its manifest (``write``: the sidecar,
    and for an ONNX file the embedded copy too) and write a reliability diagram to ``out_dir``."""
    from pathlib import Path

    from . import manifest as mf
    from .cifar import load_split
    from .evaluate import load_artifact, predict
    from .fsio import write_bytes_atomic, write_json_atomic

    p = Path(artifact)
    if p.suffix not in (".onnx", ".engine", ".plan"):
        raise EdgeRuntimeError("%s: calibrate updates an .onnx or .engine manifest; export a checkpoint to ONNX first "
                               "(edge-runtime export)" % p)
    runner, man = load_artifact(p, threads=threads)
    ds = man["dataset"]["name"]
    train = load_split(ds, "train", data_dir)
    lo, hi = _slice(slice_spec, len(train))
    with runner:
        logits = predict(runner, train.images[lo:hi], man["preprocess"])
        tl = predict(runner, load_split(ds, "test", data_dir).images, man["preprocess"]) if test else None
    labels = train.labels[lo:hi]
    t = fit_temperature(logits, labels)
    rec = calibration_record(t, logits, labels, "%s train[%d:%d]" % (ds, lo, hi), command, runner.name)
    res: Dict[str, Any] = {"artifact": str(p), "calibration": rec, "accuracy_on_slice": float(
        (logits.argmax(1) == labels).mean())}
    curves = [("fit slice, T=1", reliability(probabilities(logits, 1.0), labels)),
              ("fit slice, T=%.3f" % t, reliability(probabilities(logits, t), labels))]
    if tl is not None:
        test_split = load_split(ds, "test", data_dir)
        yl = test_split.labels
        before, after = reliability(probabilities(tl, 1.0), yl), reliability(probabilities(tl, t), yl)
        rec["test_ece_before"], rec["test_ece_after"] = round(before["ece"], 5), round(after["ece"], 5)
        oracle = fit_temperature(tl, yl)
        res["test"] = {"n": int(len(yl)), "ece_before": before["ece"], "ece_after": after["ece"],
                       "accuracy": float((tl.argmax(1) == yl).mean()), "oracle_temperature": oracle,
                       "ece_oracle": ece(probabilities(tl, oracle), yl),
                       "note": "oracle = T fitted on the test set itself, for reference only (never stored)"}
        curves += [("test, T=1", before), ("test, T=%.3f" % t, after)]
    if out_dir is not None:
        out = Path(out_dir)
        write_json_atomic(out / ("%s.calibration.json" % p.name), res)
        write_bytes_atomic(out / ("%s.reliability.png" % p.name), reliability_png(
            curves, "%s (%s, %s): temperature fitted on %s" % (man["model"]["name"], man.get("precision"), runner.name,
                                                            rec["fitted_on"])))
        res["files"] = [str(out / ("%s.calibration.json" % p.name)), str(out / ("%s.reliability.png" % p.name))]
    if write:
        new = dict(man)
        new["calibration"] = rec
        if p.suffix == ".onnx":
            from . import onnxutil

            onnxutil.save(onnxutil.load(p, check=False), p, new)
        else:
            mf.write(p, new)
        res["wrote_manifest"] = str(mf.sidecar_path(p))
    return res


def eval_block(logits: np.ndarray, labels: np.ndarray, manifest: Mapping[str, Any]) -> Dict[str, Any]:
    """What ``eval`` reports: ECE (15 bins) with raw softmax and with the manifest's temperature."""
    t = temperature_of(manifest)
    before = reliability(probabilities(logits, 1.0), labels)
    after = reliability(probabilities(logits, t), labels)
    return {"temperature": t, "calibrated": t != 1.0 or bool(manifest.get("calibration")), "bins": BINS,
            "ece_before": before["ece"], "ece_after": after["ece"], "reliability_before": before,
            "reliability_after": after}
