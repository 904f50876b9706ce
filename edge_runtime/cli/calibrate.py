"""Calibrate an artifact's confidence: fit a temperature on a slice of the TRAIN split, store it in its manifest.

The model's logits on --slice of the train split (never the test split) give the temperature T that minimises
the negative log-likelihood (a 1-D search; numpy only). The manifest gets a calibration block (temperature,
fitted_on, ECE before and after on the slice, with 15 bins), which the runtime, eval, score, tune and predict
apply: probabilities = softmax(logits / T). For an ONNX file the embedded manifest is updated too (the file's
bytes, and so the sidecar's sha256, change). --dry-run measures without writing. With the test split at hand
(default), ECE before/after on the full test set is reported too, and a reliability diagram is written to --out.

Examples:
  edge-runtime calibrate engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx --data-dir data --out runs/calibration
  edge-runtime calibrate engines/mnv2.onnx --slice 0:5000 --dry-run
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import flag_type
from ._common import command_line


def _slice_spec(s: str) -> str:
    """START:END (either may be left out) with 0 <= START < END, END - START >= 100; END is checked against the
    split's size once it is loaded (edge_runtime.calibration)."""
    a, _, b = s.partition(":")
    try:
        lo, hi = int(a or 0), (int(b) if b else None)
    except ValueError:
        lo, hi = -1, None
    if ":" not in s or lo < 0 or (hi is not None and hi - lo < 100):
        raise argparse.ArgumentTypeError("expected START:END train images, 0 <= START, at least 100 images "
                                         "(e.g. 45000:50000), got %r" % s)
    return s


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", type=Path, help=".onnx or .engine (with its manifest)")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset root (default $EDGE_RUNTIME_DATA)")
    p.add_argument("--slice", type=_slice_spec, default="45000:50000", metavar="START:END",
                   help="train images to fit on")
    p.add_argument("--no-test", action="store_true", help="skip the ECE on the test split")
    p.add_argument("--dry-run", action="store_true", help="measure only; leave the manifest as it is")
    p.add_argument("--out", type=Path, default=Path("runs/calibration"), help="calibration JSON and reliability PNG")
    p.add_argument("--threads", type=flag_type(int, lo=0), default=None)


def run(args: argparse.Namespace) -> int:
    from .. import manifest as mf
    from ..calibration import calibrate_artifact
    from ..fsio import check_writable

    check_writable(args.out, "--out", directory=True)
    if not args.dry_run and args.artifact.is_file():  # the manifest (and an ONNX file's embedded copy) is rewritten
        check_writable(mf.sidecar_path(args.artifact), "the manifest of ARTIFACT")
        if args.artifact.suffix == ".onnx":
            check_writable(args.artifact, "ARTIFACT")
    res = calibrate_artifact(args.artifact, args.data_dir, args.slice, not args.no_test, not args.dry_run, args.out,
                             command_line(args), args.threads)
    c = res["calibration"]
    print("%s: T = %.4f fitted on %s (%d images, accuracy %.2f %%); ECE (15 bins) on it %.2f %% -> %.2f %%" % (
        args.artifact, c["temperature"], c["fitted_on"], c["n"], 100 * res["accuracy_on_slice"],
        100 * c["ece_before"], 100 * c["ece_after"]))
    if "test" in res:
        t = res["test"]
        print("full test split (%d images): ECE %.2f %% -> %.2f %% (a temperature fitted on the test set itself would "
              "give %.2f %% at T = %.3f; reference only)" % (t["n"], 100 * t["ece_before"], 100 * t["ece_after"],
                                                             100 * t["ece_oracle"], t["oracle_temperature"]))
    print("manifest %s" % ("updated: %s" % res["wrote_manifest"] if "wrote_manifest" in res else "unchanged (--dry-run)"))
    for f in res.get("files", []):
        print("wrote %s" % f)
    return 0
