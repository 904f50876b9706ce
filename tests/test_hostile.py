"""The hostile-input matrix (issue #15): every bad input and injected fault we know of, one row each.

A row says what is called (``edge-runtime`` arguments, or a Python API call on the workspace), the exit code
expected (2: a one-line user error; API calls: 2 when they raise EdgeRuntimeError), a fragment of that one line
(or of stdout when the call succeeds), the files that must stay byte-for-byte unchanged (sha256 before/after)
and, where a run happens, the reason codes its JSONL sink must show (in that order). Each row runs in its own
working directory holding the files below. ``R`` is the issue's
``edge-runtime run deploy/demo/cifar10-demo.mp4 --max-frames 30 --quiet`` (on a copy of the clip).

Rows run in-process (``edge_runtime.cli.main``), except the ``noise`` group: those check what reaches a real
terminal from the C libraries (OpenCV, FFmpeg), so they run as a subprocess and stderr must be exactly one line.

New bad-input handling is added here as a row.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError

from .helpers import CLASSES10, make_checkpoint, one_line, run_cli, sha256_files

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "deploy" / "demo" / "cifar10-demo.mp4"
BUNDLED_ONNX = ROOT / "engines" / "bundled" / "mobilenetv2_cifar_x0_5.onnx"
R = ("run", "clip.mp4", "--max-frames", "30", "--quiet")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

POLICY = """policy:
  default_action: GO
  rules:
    - {name: animals, action: STOP, classes: [bird, cat, deer, dog, frog, horse], min_confidence: 0.4}
  debounce: {trigger_k: 1, trigger_n: 1, release_m: 1, min_hold_ms: 0}
"""
SINKS = "sinks:\n  - {type: jsonl, path: events.jsonl, heartbeat_s: 0.5}\n"
RULE = "    - {action: STOP, classes: [cat]%s}\n"

#: the configs every workspace holds
CONFIGS = {
    "c.yaml": POLICY + SINKS,
    "norules.yaml": "policy:\n  rules: []\n",
    "noclasses.yaml": "policy:\n  rules:\n    - {action: STOP}\n",
    "emptyclasses.yaml": "policy:\n  rules:\n    - {action: STOP, classes: []}\n",
    "dupnames.yaml": "policy:\n  rules:\n    - {name: a, action: STOP, classes: [cat]}\n    - {name: a, action: SLOW, classes: [truck]}\n",
    "twice-top.yaml": POLICY + "policy:\n  rules:\n    - {action: GO, classes: [ship]}\n",
    "twice-nested.yaml": POLICY.replace("  default_action: GO\n", "  default_action: GO\n  default_action: STOP\n"),
    "twice-rule.yaml": "policy:\n  rules:\n" + RULE % ", min_confidence: 0.4, min_confidence: 0.9",
    "twice-sinks.yaml": POLICY + SINKS + SINKS,
    "conf-high.yaml": "policy:\n  rules:\n" + RULE % ", min_confidence: 1.5",
    "conf-neg.yaml": "policy:\n  rules:\n" + RULE % ", min_confidence: -0.1",
    "k-gt-n.yaml": "policy:\n  rules:\n" + RULE % "" + "  debounce: {trigger_k: 4, trigger_n: 3}\n",
    "badkey.yaml": POLICY.replace("default_action", "default_acton"),
    "badclass.yaml": "policy:\n  rules:\n    - {action: STOP, classes: [person]}\n",
    "rate0.yaml": POLICY + SINKS + "source: {rate: 0}\n",
    "rate-neg.yaml": POLICY + "source: {rate: -5}\n",
    "jsonl-onnx.yaml": POLICY + "sinks:\n  - {type: jsonl, path: model.onnx}\n",
    "jsonl-csv.yaml": POLICY + "sinks:\n  - {type: jsonl, path: notes.txt}\n",
    "record-self.yaml": POLICY + SINKS + "run: {record: clip.mp4}\n",
    "record-uri.yaml": POLICY + SINKS + "source: {uri: clip.mp4}\nrun: {record: clip.mp4}\n",
    "open1s.yaml": POLICY + "source: {open_timeout_ms: 1000}\n",
    "evil.yaml": "policy: !!python/object/apply:os.system ['echo pwned >> afile']\n",
    "empty.yaml": "",
    "c100.yaml": "policy:\n  rules:\n    - {action: STOP, classes: [fine_03]}\n",
    "cams.yaml": POLICY + SINKS + "sources:\n  - {name: front, uri: clip.mp4}\n  - {name: rear, uri: imgs}\n"
                 "run: {record: out.mp4}\n",
}


@dataclasses.dataclass(frozen=True)
class Row:
    group: str
    id: str
    #: ``edge-runtime`` arguments ({name} = a session artifact, see ``artifacts``), or fn(workspace) for an API call
    call: Union[Sequence[str], Callable[[Path], Any]]
    rc: int
    #: in the one stderr line (rc != 0) or in stdout (rc == 0)
    fragment: str
    #: workspace files (or folders) whose bytes must not change
    keep: Tuple[str, ...] = ()
    #: reason codes the JSONL sink must show, in this order (a subsequence of its events)
    reasons: Tuple[str, ...] = ()
    events: str = "events.jsonl"
    #: must NOT be in the line (a misleading blame)
    absent: str = ""
    #: run as a subprocess: what the terminal shows
    terminal: bool = False
    skip: str = ""


def rows_from(group: str, *rows: Union[Tuple[Any, ...], Row], **common: Any) -> List[Row]:
    return [Row(group, *r, **common) if not isinstance(r, Row) else r for r in rows]


# ----------------------------------------------------------------------------------- API calls used by rows
class _FaultyRunner:
    """Scripted outputs for the fault rows: ``mode`` raise | nan | short | ok."""

    def __new__(cls, mode: str) -> Any:
        from edge_runtime.backends.base import Runner

        class Faulty(Runner):
            name = "faulty"

            def __init__(self) -> None:
                super().__init__(MANIFEST)
                self.input_shape = ["batch", 3, 32, 32]
                self.output_shape = ["batch", 10]

            def _activate(self) -> None:
                pass

            def _infer(self, x: np.ndarray) -> np.ndarray:
                if mode == "raise":
                    raise RuntimeError("CUDA error: an illegal memory access was encountered")
                if mode == "nan":
                    return np.full((x.shape[0], 10), np.nan, np.float32)
                if mode == "short":
                    return np.zeros((x.shape[0], 5), np.float32)
                z = np.zeros((x.shape[0], 10), np.float32)
                z[:, 3] = 8.0  # cat
                return z

        return Faulty()


MANIFEST = mf.new("onnx", {"name": "fake"}, mf.make_dataset("cifar10", CLASSES10),
                  mf.make_preprocess((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)))


def run_faulty(mode: str, source: Optional[Dict[str, Any]] = None) -> Callable[[Path], Any]:
    def call(ws: Path) -> Any:
        from edge_runtime.config import load_config
        from edge_runtime.runtime import Runtime
        from edge_runtime.sources import SyntheticSource

        frames = [np.full((48, 64, 3), 40 * i % 250, np.uint8) for i in range(1, 6)]
        rt = Runtime.from_config(load_config(ws / "c.yaml"), model=_FaultyRunner(mode),
                                 source=SyntheticSource(images=frames, loop=False, **(source or {})))
        with rt:
            return rt.run()
    return call


def policy_config_without_rules(ws: Path) -> Any:
    from edge_runtime.policy_config import PolicyConfig

    return PolicyConfig(rules=())


def jsonl_sink_on(name: str) -> Callable[[Path], Any]:
    def call(ws: Path) -> Any:
        from edge_runtime.sinks import JsonlSink

        JsonlSink(str(ws / name)).close()
    return call


def check_writable_on(name: str, directory: bool) -> Callable[[Path], Any]:
    def call(ws: Path) -> Any:
        from edge_runtime.fsio import check_writable

        return check_writable(ws / name, "--out", directory=directory)
    return call


def tune_out_config_onto(name: str, text: str) -> Callable[[Path], Any]:
    """tune's --out-config check on ``name`` holding ``text`` (base config c.yaml, scenario sc.json, no --force)."""
    def call(ws: Path) -> Any:
        from edge_runtime.cli.tune import check_out_config

        (ws / name).write_text(text)
        check_out_config(ws / name, [ws / "c.yaml", ws / "sc.json"], force=False)
    return call


# ------------------------------------------------------------------------------------------------ the rows
ROWS: List[Row] = []

ROWS += rows_from(
    "refused-at-start",
    ("policy-rules-empty", ("run", "clip.mp4", "--config", "norules.yaml"), 2, "policy.rules: no rules"),
    ("rule-without-classes", ("run", "clip.mp4", "--config", "noclasses.yaml"), 2,
     "policy.rules[0]: a rule needs classes or superclasses"),
    ("rule-with-empty-classes", ("run", "clip.mp4", "--config", "emptyclasses.yaml"), 2,
     "policy.rules[0]: a rule needs classes or superclasses"),
    ("duplicate-rule-names", ("run", "clip.mp4", "--config", "dupnames.yaml"), 2,
     "policy.rules[1].name: 'a' is also the name of rules[0]"),
    ("yaml-key-twice-top-level", ("run", "clip.mp4", "--config", "twice-top.yaml"), 2,
     "key 'policy' given twice (first on line 1)"),
    ("yaml-key-twice-in-policy", ("run", "clip.mp4", "--config", "twice-nested.yaml"), 2,
     "key 'default_action' given twice"),
    ("yaml-key-twice-in-a-rule", ("run", "clip.mp4", "--config", "twice-rule.yaml"), 2,
     "key 'min_confidence' given twice"),
    ("yaml-sinks-twice", ("run", "clip.mp4", "--config", "twice-sinks.yaml"), 2, "key 'sinks' given twice"),
    ("min-confidence-above-1", ("run", "clip.mp4", "--config", "conf-high.yaml"), 2,
     "policy.rules[0].min_confidence: expected a number in [0, 1], got 1.5"),
    ("min-confidence-below-0", ("run", "clip.mp4", "--config", "conf-neg.yaml"), 2,
     "policy.rules[0].min_confidence: expected a number in [0, 1], got -0.1"),
    ("trigger-k-above-n", ("run", "clip.mp4", "--config", "k-gt-n.yaml"), 2,
     "policy.debounce.trigger_k: 4 is more than trigger_n (3)"),
    ("unknown-config-key", ("run", "clip.mp4", "--config", "badkey.yaml"), 2, "policy.default_acton: unknown key"),
    ("unknown-class", ("run", "clip.mp4", "--config", "badclass.yaml"), 2, "unknown class 'person'"),
    ("config-rate-negative", ("run", "clip.mp4", "--config", "rate-neg.yaml"), 2,
     "source.rate: expected a number >= 0, got -5"),
    ("rate-negative", R + ("--rate", "-5"), 2, "argument --rate: expected a number >= 0, got -5.0"),
    ("threads-negative", R + ("--threads", "-1"), 2, "argument --threads: expected an integer >= 0, got -1"),
    ("std-zero", R + ("--std", "0", "0.2", "0.2"), 2, "argument --std: expected a number > 0, got 0.0"),
    ("mean-nan", R + ("--mean", "nan", "0.5", "0.5"), 2, "argument --mean: expected a number, got nan"),
    ("unknown-source-scheme", ("run", "gopher://cam"), 2, "unknown source scheme 'gopher'"),
    ("csi-without-a-sensor-id", ("run", "csi://front"), 2, "csi://front: expected csi://N"),
    ("source-not-found", ("run", "missing.mp4"), 2, "source not found: missing.mp4"),
    ("onnx-without-manifest-or-labels", R + ("--model", "{out5}"), 2, "has no manifest"),
    ("calib-images-zero", ("quantize", "{onnx}", "--target", "cpu", "--calib-images", "0", "--out", "q.onnx"), 2,
     "argument --calib-images: expected an integer >= 1, got 0"),
    ("calib-images-negative", ("quantize", "{onnx}", "--target", "cpu", "--calib-images", "-5"), 2,
     "argument --calib-images: expected an integer >= 1, got -5"),
    ("quantize-limit-zero", ("quantize", "{onnx}", "--target", "cpu", "--limit", "0"), 2,
     "argument --limit: expected an integer >= 1"),
    ("calib-per-class-zero", ("calib", "make", "--dataset", "cifar10", "--per-class", "0"), 2,
     "argument --per-class: expected an integer >= 1"),
    ("export-opset-too-old", ("export", "{ckpt}", "--opset", "11"), 2, "argument --opset: expected an integer >= 17"),
    ("build-engine-max-batch-zero", ("build-engine", "{onnx}", "--precision", "fp32", "--max-batch", "0"), 2,
     "argument --max-batch: expected an integer >= 1"),
    ("bench-duration-zero", ("bench", "engine", "{onnx}", "--duration", "0"), 2,
     "argument --duration: expected a number > 0, got 0.0"),
    ("bench-e2e-max-frames-negative", ("bench", "e2e", "clip.mp4", "--max-frames", "-1"), 2,
     "argument --max-frames: expected an integer >= 1, got -1"),
    ("bench-e2e-rate-negative", ("bench", "e2e", "clip.mp4", "--rate", "-5"), 2, "argument --rate: expected a number >= 0"),
    ("eval-limit-zero", ("eval", "{onnx}", "--limit", "0"), 2, "argument --limit: expected an integer >= 1, got 0"),
    ("eval-std-negative", ("eval", "{onnx}", "--std", "-1", "1", "1"), 2, "argument --std: expected a number > 0"),
    ("predict-topk-zero", ("predict", "imgs", "--topk", "0"), 2, "argument --topk: expected an integer >= 1, got 0"),
    ("api-policy-config-without-rules", policy_config_without_rules, 2, "rules: no rules"),
    ("config-empty", ("run", "clip.mp4", "--config", "empty.yaml"), 2, "empty.yaml: the config is empty"),
    ("yaml-python-tag-does-not-run", ("run", "clip.mp4", "--config", "evil.yaml"), 2, "evil.yaml: not valid YAML",
     ("afile",)),
    ("pickle-does-not-run", R + ("--model", "evil.pt"), 2, "evil.pt is not a readable checkpoint", ("afile",)),
    ("onnx-truncated", R + ("--model", "trunc.onnx"), 2, "trunc.onnx is corrupt, truncated or not a valid ONNX model",
     ("trunc.onnx",)),
)

LABELS = ("--labels", ",".join(CLASSES10), "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25")
ROWS += rows_from(  # the model disagrees with its manifest or --labels: refused when the runner activates
    "refused-at-start",
    ("model-outputs-5-labels-say-10", R + ("--model", "{out5}") + LABELS, 2,
     "the model outputs 5 scores per image; its manifest (or --labels) names 10 classes"),
    ("model-outputs-100-labels-say-10", R + ("--model", "{out100}") + LABELS, 2,
     "the model outputs 100 scores per image; its manifest (or --labels) names 10 classes"),
    ("model-input-1x28", R + ("--model", "{in1x28}") + LABELS, 2,
     "the model's input is 1x28; its manifest expects float32 (N, 3, 32, 32)"),
    ("model-input-64x64", R + ("--model", "{in64}") + LABELS, 2,
     "the model's input is 1x3x64x64; its manifest expects float32 (N, 3, 32, 32)"),
)

SC = ("sc.json",)
ROWS += rows_from(  # numeric flags of score, tune, scenario, calibrate, doctor, eda, predict, models, experiment: the
    "refused-at-start",  # flag's own rule (config.flag_type), argparse's one line naming the flag, before any work
    ("score-threads-negative", ("score",) + SC + ("--threads", "-1"), 2,
     "argument --threads: expected an integer >= 0, got -1"),
    ("score-grace-negative", ("score",) + SC + ("--grace", "-1"), 2,
     "argument --grace: expected a number >= 0, got -1.0"),
    ("score-grace-nan", ("score",) + SC + ("--grace", "nan"), 2, "argument --grace: expected a number >= 0, got nan"),
    ("tune-threads-negative", ("tune",) + SC + ("--threads", "-1"), 2, "argument --threads: expected an integer >= 0"),
    ("tune-gate-above-1", ("tune",) + SC + ("--gate", "0.2,1.5"), 2,
     "argument --gate: expected a number in [0, 1], got 1.5 (in '0.2,1.5')"),
    ("tune-gate-nan", ("tune",) + SC + ("--gate", "nan"), 2, "argument --gate: expected a number in [0, 1], got nan"),
    ("tune-threshold-above-1", ("tune",) + SC + ("--thresholds", "animals=0.5,2"), 2,
     "argument --thresholds: expected a number in [0, 1], got 2.0 (in '0.5,2')"),
    ("tune-thresholds-without-values", ("tune",) + SC + ("--thresholds", "animals"), 2,
     "argument --thresholds: expected RULE=V1,V2,..."),
    ("tune-thresholds-unknown-rule", ("tune",) + SC + ("--config", "c.yaml", "--thresholds", "nosuch=0.5"), 2,
     "--thresholds nosuch=...: c.yaml has no rule named 'nosuch'; its rules: animals"),
    ("tune-kn-k-above-n", ("tune",) + SC + ("--kn", "1/1,3/2"), 2,
     "argument --kn: expected K/N,... with integers 1 <= K <= N (e.g. 2/3), got '3/2'"),
    ("tune-release-m-zero", ("tune",) + SC + ("--release-m", "0"), 2,
     "argument --release-m: expected an integer >= 1, got 0"),
    ("tune-min-hold-negative", ("tune",) + SC + ("--min-hold-ms", "0,-5"), 2,
     "argument --min-hold-ms: expected a number >= 0, got -5.0"),
    ("tune-max-configs-zero", ("tune",) + SC + ("--max-configs", "0"), 2,
     "argument --max-configs: expected an integer >= 1"),
    ("tune-seed-negative", ("tune",) + SC + ("--seed", "-1"), 2, "argument --seed: expected an integer >= 0, got -1"),
    ("tune-max-reaction-negative", ("tune",) + SC + ("--max-reaction-frames", "-1"), 2,
     "argument --max-reaction-frames: expected a number >= 0"),
    ("tune-max-false-stop-above-1", ("tune",) + SC + ("--max-false-stop", "1.5"), 2,
     "argument --max-false-stop: expected a number in [0, 1], got 1.5"),
    ("tune-max-go-in-stop-negative", ("tune",) + SC + ("--max-go-in-stop", "-0.1"), 2,
     "argument --max-go-in-stop: expected a number in [0, 1], got -0.1"),
    ("tune-grace-inf", ("tune",) + SC + ("--grace", "inf"), 2, "argument --grace: expected a number >= 0, got inf"),
    ("scenario-seed-negative", ("scenario", "new.mp4", "--seed", "-1"), 2, "argument --seed: expected an integer >= 0"),
    ("scenario-duration-zero", ("scenario", "new.mp4", "--seed", "1", "--duration", "0"), 2,
     "argument --duration: expected a number > 0, got 0.0"),
    ("scenario-duration-nan", ("scenario", "new.mp4", "--seed", "1", "--duration", "nan"), 2,
     "argument --duration: expected a number > 0, got nan"),
    ("scenario-fps-negative", ("scenario", "new.mp4", "--seed", "1", "--fps", "-30"), 2,
     "argument --fps: expected a number > 0, got -30.0"),
    ("scenario-size-portrait", ("scenario", "new.mp4", "--seed", "1", "--size", "10x100"), 2,
     "argument --size: expected a landscape WxH at least 32 pixels high"),
    ("scenario-images-reversed", ("scenario", "new.mp4", "--seed", "1", "--images", "5-2"), 2,
     "argument --images: expected FIRST-LAST, two integers with 0 <= FIRST <= LAST <= 999"),
    ("scenario-images-past-999", ("scenario", "new.mp4", "--seed", "1", "--images", "0-1000"), 2,
     "argument --images: expected FIRST-LAST"),
    ("scenario-hold-reversed", ("scenario", "new.mp4", "--seed", "1", "--hold", "2-1"), 2,
     "argument --hold: expected MIN-MAX seconds (or one number), 0 < MIN <= MAX, got '2-1'"),
    ("scenario-unknown-share-1", ("scenario", "new.mp4", "--seed", "1", "--unknown-share", "1"), 2,
     "argument --unknown-share: expected a number in [0, 1), got '1'"),
    ("scenario-unknown-share-negative", ("scenario", "new.mp4", "--seed", "1", "--unknown-share", "-0.1"), 2,
     "argument --unknown-share: expected a number in [0, 1), got '-0.1'"),
    ("calibrate-threads-negative", ("calibrate", "model.onnx", "--threads", "-1"), 2,
     "argument --threads: expected an integer >= 0, got -1", ("model.onnx",)),
    ("calibrate-slice-too-small", ("calibrate", "model.onnx", "--slice", "10:20"), 2,
     "argument --slice: expected START:END train images, 0 <= START, at least 100 images", ("model.onnx",)),
    ("calibrate-slice-not-a-range", ("calibrate", "model.onnx", "--slice", "abc"), 2,
     "argument --slice: expected START:END",
     ("model.onnx",)),
    ("doctor-bench-seconds-zero", ("doctor", "--bench-seconds", "0"), 2,
     "argument --bench-seconds: expected a number > 0"),
    ("doctor-bench-seconds-nan", ("doctor", "--bench-seconds", "nan"), 2,
     "argument --bench-seconds: expected a number > 0, got nan"),
    ("doctor-images-zero", ("doctor", "--images", "0"), 2, "argument --images: expected an integer >= 1, got 0"),
    ("eda-tsne-samples-too-few", ("eda", "--dataset", "cifar10", "--tsne-samples", "4"), 2,
     "argument --tsne-samples: expected an integer >= 5, got 4"),
    ("eda-pca-samples-negative", ("eda", "--dataset", "cifar10", "--pca-samples", "-1"), 2,
     "argument --pca-samples: expected an integer >= 3, got -1"),
    ("eda-seed-negative", ("eda", "--dataset", "cifar10", "--seed", "-1"), 2,
     "argument --seed: expected an integer >= 0"),
    ("predict-topk-negative", ("predict", "imgs", "--topk", "-1"), 2,
     "argument --topk: expected an integer >= 1, got -1"),
    ("models-rounds-zero", ("models", "--latency", "--rounds", "0"), 2,
     "argument --rounds: expected an integer >= 1, got 0"),
    ("models-seconds-zero", ("models", "--latency", "--seconds", "0"), 2, "argument --seconds: expected a number > 0"),
    ("models-seconds-nan", ("models", "--latency", "--seconds", "nan"), 2,
     "argument --seconds: expected a number > 0, got nan"),
    ("models-threads-negative", ("models", "--latency", "--threads", "-1"), 2,
     "argument --threads: expected an integer >= 0, got -1"),
    ("models-num-classes-zero", ("models", "--num-classes", "0"), 2,
     "argument --num-classes: expected an integer >= 2"),
    ("experiment-epochs-zero", ("experiment", "grid.yaml", "--epochs", "0"), 2,
     "argument --epochs: expected an integer >= 1, got 0"),
    ("experiment-subset-negative", ("experiment", "grid.yaml", "--subset", "-5"), 2,
     "argument --subset: expected an integer >= 1, got -5"),
)

ROWS += rows_from(
    "traceback->line",
    ("run-pt-manifest-100-weights-10", R + ("--model", "{m100w10}", "--config", "c100.yaml"), 2,
     "the weights do not fit the manifest's model (lenet5 with 100 classes)"),
    ("run-pt-7-class-head", R + ("--model", "{head7}"), 2, "the weights do not fit the manifest's model (lenet5 with 10 "
                                                           "classes): classifier.5.weight is 7x84"),
    ("eval-pt-manifest-100-weights-10", ("eval", "{m100w10}", "--data-dir", "{data100}"), 2,
     "the weights do not fit the manifest's model (lenet5 with 100 classes)"),
    ("eval-pt-7-class-head", ("eval", "{head7}", "--data-dir", "{data}"), 2,
     "the weights do not fit the manifest's model (lenet5 with 10 classes): classifier.5.weight is 7x84"),
    ("export-out-under-a-file", ("export", "{ckpt}", "--out", "afile/m.onnx"), 2,
     "--out afile/m.onnx: cannot be created: afile is a file, not a folder", ("afile",)),
    ("quantize-out-under-a-file", ("quantize", "{onnx}", "--target", "cpu", "--out", "afile/q.onnx"), 2,
     "--out afile/q.onnx: cannot be created: afile is a file"),
    ("build-engine-cpu-out-under-a-file",
     ("build-engine", "{onnx}", "--precision", "int8", "--backend", "onnxruntime", "--out", "afile/e"), 2,
     "--out afile/e: cannot be created: afile is a file"),
    ("calib-make-out-under-a-file", ("calib", "make", "--dataset", "cifar10", "--out", "afile/c"), 2,
     "--out afile/c: cannot be created: afile is a file"),
    ("train-out-under-a-file", ("train", "--model", "lenet5", "--out", "afile/t"), 2,
     "--out afile/t: cannot be created: afile is a file"),
    ("run-snapshots-under-a-file", R + ("--snapshots", "afile/s"), 2, "--snapshots afile/s: cannot be created"),
    ("run-record-under-a-file", R + ("--record", "afile/r.mp4"), 2, "--record afile/r.mp4: cannot be created"),
    ("run-record-txt", R + ("--record", "r.txt"), 2, "--record r.txt: expected a video file name ending in .mp4"),
    Row("traceback->line", "export-out-read-only-folder", ("export", "{ckpt}", "--out", "ro/m.onnx"), 2,
        "--out ro/m.onnx: cannot write in ro (read-only or no permission)", skip="root writes anywhere" if IS_ROOT else ""),
    Row("traceback->line", "run-record-read-only-folder", R + ("--record", "ro/r.mp4"), 2,
        "--record ro/r.mp4: cannot write in ro", skip="root writes anywhere" if IS_ROOT else ""),
    ("api-check-writable-folder-is-a-file", check_writable_on("afile", True), 2,
     "exists and is not a folder", ("afile",)),
    ("run-record-per-camera-under-a-file", ("run", "clip.mp4", "imgs", "--max-frames", "3", "--quiet", "--record",
                                            "afile/r.mp4"), 2, "--record afile/r.cam0.mp4: cannot be created"),
    ("score-out-under-a-file", ("score",) + SC + ("--out", "afile/s"), 2,
     "--out afile/s: cannot be created: afile is a file"),
    ("tune-out-under-a-file", ("tune",) + SC + ("--out", "afile/t"), 2,
     "--out afile/t: cannot be created: afile is a file"),
    ("tune-out-config-under-a-file", ("tune",) + SC + ("--out-config", "afile/t.yaml"), 2,
     "--out-config afile/t.yaml: cannot be created: afile is a file"),
    ("scenario-out-under-a-file", ("scenario", "afile/x.mp4", "--seed", "1"), 2,
     "OUT afile/x.mp4: cannot be created: afile is a file"),
    ("calibrate-out-under-a-file", ("calibrate", "model.onnx", "--out", "afile/c"), 2,
     "--out afile/c: cannot be created: afile is a file", ("model.onnx",)),
    ("doctor-out-is-a-file", ("doctor", "--out", "afile", "--no-tests"), 2, "--out afile: exists and is not a folder",
     ("afile",)),
    ("eda-out-is-a-file", ("eda", "--dataset", "cifar10", "--out", "afile"), 2,
     "--out afile: exists and is not a folder",
     ("afile",)),
)

ROWS += rows_from(
    "files-not-destroyed",
    ("record-onto-the-source", ("run", "clip.mp4", "--max-frames", "30", "--quiet", "--record", "clip.mp4"), 2,
     "--record clip.mp4: is the SOURCE itself", ("clip.mp4",)),
    ("record-onto-the-source-with-force", R + ("--record", "clip.mp4", "--force"), 2, "is the SOURCE itself", ("clip.mp4",)),
    ("record-onto-the-source-by-another-path", R + ("--record", "./sub/../clip.mp4"), 2, "is the SOURCE itself",
     ("clip.mp4",)),
    ("record-from-the-config-onto-the-source", ("run", "clip.mp4", "--config", "record-self.yaml"), 2,
     "record-self.yaml: run.record clip.mp4: is the SOURCE itself", ("clip.mp4",)),
    ("record-onto-the-configs-source-uri", ("run", "--config", "record-uri.yaml"), 2,
     "record-uri.yaml: run.record clip.mp4: is the SOURCE itself", ("clip.mp4",)),
    ("record-onto-an-existing-file", R + ("--record", "existing.mp4"), 2,
     "--record existing.mp4: exists (21 bytes); pass --force", ("existing.mp4",)),
    ("snapshots-onto-an-existing-file", R + ("--snapshots", "existing.mp4"), 2,
     "--snapshots existing.mp4: exists and is not a folder", ("existing.mp4",)),
    ("snapshots-onto-an-earlier-runs-snapshots", R + ("--snapshots", "oldsnaps"), 2,
     "--snapshots oldsnaps: holds an earlier run's snapshots", ("oldsnaps",)),
    ("snapshots-into-the-source-folder", ("run", "imgs", "--max-frames", "3", "--quiet", "--snapshots", "imgs", "--force"),
     2, "--snapshots imgs: is the SOURCE itself", ("imgs",)),
    ("jsonl-sink-onto-an-onnx", ("run", "clip.mp4", "--config", "jsonl-onnx.yaml", "--max-frames", "3"), 2,
     "model.onnx exists and is not an edge-runtime event log", ("model.onnx",)),
    ("jsonl-sink-onto-a-text-file", ("run", "clip.mp4", "--config", "jsonl-csv.yaml", "--max-frames", "3"), 2,
     "notes.txt exists and is not an edge-runtime event log", ("notes.txt",)),
    ("api-jsonl-sink-onto-an-onnx", jsonl_sink_on("model.onnx"), 2, "is not an edge-runtime event log", ("model.onnx",)),
    ("quantize-out-is-the-input", ("quantize", "onnx-copy", "--target", "cpu", "--out", "onnx-copy"), 2,
     "is the input file", ("onnx-copy",)),
    # several cameras record one video each (out.mp4 -> out.<camera>.mp4): each is checked as the single one is
    ("record-per-camera-onto-an-existing-file", ("run", "clip.mp4", "imgs", "--max-frames", "3", "--quiet", "--record",
                                                 "out.mp4"), 2,
     "--record out.mp4: out.cam1.mp4 (camera cam1's recording) exists (21 bytes); pass --force", ("out.cam1.mp4",)),
    ("record-per-named-camera-onto-an-existing-file",
     ("run", "front=clip.mp4", "rear=imgs", "--max-frames", "3", "--quiet", "--record", "out.mp4"), 2,
     "--record out.mp4: out.front.mp4 (camera front's recording) exists", ("out.front.mp4",)),
    ("record-from-the-config-per-camera-onto-an-existing-file", ("run", "--config", "cams.yaml", "--max-frames", "3"),
     2,
     "cams.yaml: run.record out.mp4: out.front.mp4 (camera front's recording) exists", ("out.front.mp4",)),
    ("record-per-camera-onto-another-cameras-source-with-force",
     ("run", "imgs", "rec.cam0.mp4", "--max-frames", "3", "--quiet", "--record", "rec.mp4", "--force"), 2,
     "--record rec.mp4: rec.cam0.mp4 (camera cam0's recording) is the SOURCE of camera cam1 itself", ("rec.cam0.mp4",)),
    ("record-per-camera-onto-its-own-source-with-force",
     ("run", "rec.cam0.mp4", "imgs", "--max-frames", "3", "--quiet", "--record", "rec.mp4", "--force"), 2,
     "is the SOURCE of camera cam0 itself", ("rec.cam0.mp4",)),
    ("record-one-named-camera-onto-an-existing-file",
     ("run", "front=clip.mp4", "--max-frames", "3", "--quiet", "--record", "existing.mp4"), 2,
     "--record existing.mp4: exists (21 bytes); pass --force", ("existing.mp4",)),
    ("snapshots-into-the-second-cameras-source-folder",
     ("run", "clip.mp4", "imgs", "--max-frames", "3", "--quiet", "--snapshots", "imgs", "--force"), 2,
     "--snapshots imgs: is the SOURCE of camera cam1 itself", ("imgs",)),
    ("tune-out-config-onto-the-base-config-with-force",
     ("tune",) + SC + ("--config", "c.yaml", "--out-config", "c.yaml", "--force"), 2,
     "--out-config c.yaml: is an input of this run (c.yaml)", ("c.yaml", "sc.json")),
    ("tune-out-config-onto-the-scenario-with-force", ("tune",) + SC + ("--out-config", "sc.json", "--force"), 2,
     "--out-config sc.json: is an input of this run", ("sc.json",)),
    ("tune-out-config-onto-a-file-tune-did-not-write", ("tune",) + SC + ("--out-config", "notes.txt"), 2,
     "--out-config notes.txt: exists and was not written by tune (16 bytes); pass --force", ("notes.txt",)),
    ("api-tune-out-config-replaces-its-own-earlier-output",
     tune_out_config_onto("tuned.yaml", "# Tuned by: edge-runtime tune sc.json\npolicy: {}\n"), 0, ""),
    ("api-tune-out-config-not-its-own", tune_out_config_onto("mine.yaml", "# my config\npolicy: {}\n"), 2,
     "mine.yaml: exists and was not written by tune"),
    ("scenario-onto-an-existing-video", ("scenario", "existing.mp4", "--seed", "1"), 2,
     "existing.mp4 exists; pass --force to replace it", ("existing.mp4",)),
    ("scenario-beside-an-existing-json", ("scenario", "sc.mp4", "--seed", "1"), 2,
     "sc.json exists; pass --force to replace it",
     ("sc.json",)),
)

ROWS += rows_from(
    "noise",
    ("truncated-mp4", ("run", "trunc.mp4", "--quiet"), 2, "cannot open video file trunc.mp4", ("trunc.mp4",)),
    ("empty-mp4", ("run", "empty.mp4", "--quiet"), 2, "cannot open video file empty.mp4"),
    ("text-mp4", ("run", "text.mp4", "--quiet"), 2, "cannot open video file text.mp4"),
    ("missing-camera-dev-video9", ("run", "/dev/video9", "--quiet"), 2, "cannot open camera /dev/video9"),
    ("missing-camera-index-0", ("run", "0", "--quiet"), 2, "cannot open camera 0"),
    ("rtsp-closed-port", ("run", "rtsp://127.0.0.1:{closed_port}/x", "--quiet", "--config", "open1s.yaml"), 2,
     "cannot open stream rtsp://127.0.0.1:"),
    ("rtsp-silent-port", ("run", "rtsp://127.0.0.1:{silent_port}/x", "--quiet", "--config", "open1s.yaml"), 2,
     "cannot open stream rtsp://127.0.0.1:"),
    terminal=True,
)

ROWS += rows_from(
    "misleading",
    ("dev-null-is-not-a-source", ("run", "/dev/null", "--quiet"), 2,
     "/dev/null exists but is not a video file, an image folder or a camera"),
    ("max-frames-negative", R[:2] + ("--max-frames", "-1", "--quiet"), 2, "argument --max-frames: expected an integer >= 1, got -1"),
    ("max-frames-zero", R[:2] + ("--max-frames", "0", "--quiet"), 2, "argument --max-frames: expected an integer >= 1, got 0"),
    ("duration-negative", R + ("--duration", "-1"), 2, "argument --duration: expected a number > 0, got -1.0"),
    ("duration-nan", R + ("--duration", "nan"), 2, "argument --duration: expected a number > 0, got nan"),
    absent="vehicle.yaml",
)

ROWS += rows_from(
    "runs-fail-safe",
    Row("runs-fail-safe", "R", R, 0, "30 frames", ("clip.mp4",), ("startup", "shutdown"), "runs/vehicle/events.jsonl"),
    Row("runs-fail-safe", "rate-zero-same-as-config-rate-zero", R + ("--rate", "0", "--config", "c.yaml"), 0, "30 frames",
        reasons=("startup", "shutdown")),
    Row("runs-fail-safe", "record-per-camera-with-force-leaves-the-sources",
        ("run", "clip.mp4", "imgs", "--max-frames", "6", "--quiet", "--record", "out.mp4", "--force"), 0, "6 frames",
        ("clip.mp4", "imgs")),
    Row("runs-fail-safe", "config-rate-zero", ("run", "clip.mp4", "--max-frames", "30", "--quiet", "--config", "rate0.yaml"),
        0, "30 frames", reasons=("startup", "shutdown")),
    ("inference-raises", run_faulty("raise"), 0, "", (), ("startup", "inference_error", "end_of_stream")),
    ("outputs-nan", run_faulty("nan"), 0, "", (), ("startup", "non_finite", "end_of_stream")),
    ("outputs-5-of-10-classes", run_faulty("short"), 0, "", (), ("startup", "bad_output", "end_of_stream")),
    ("source-fails-mid-stream", run_faulty("ok", {"fail_after": 3}), 0, "", (), ("startup", "rule", "source_failed")),
)


# ------------------------------------------------------------------------------------------ the workspace
def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def _tiny_onnx(path: Path, in_shape: List[int], n_out: int) -> Path:
    """An ONNX model (input -> [pool, flatten] -> MatMul -> logits) of the given input shape and class count."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = []
    feat = "input"
    if len(in_shape) == 4:
        nodes = [helper.make_node("GlobalAveragePool", ["input"], ["p"]), helper.make_node("Flatten", ["p"], ["f"])]
        feat = "f"
    w = numpy_helper.from_array(np.ones((in_shape[1], n_out), np.float32), "W")
    nodes.append(helper.make_node("MatMul", [feat, "W"], ["logits"]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [in_shape[0], n_out])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, fixture_data: Path, cifar100_dir: Path) -> Dict[str, str]:
    """Session-made files rows name as {key}: checkpoints whose weights disagree with their manifests, data."""
    names = {"data": str(fixture_data), "data100": str(cifar100_dir), "onnx": str(BUNDLED_ONNX)}
    d = tmp_path_factory.mktemp("hostile")
    try:
        for key, shape, n_out in (("out5", [1, 3, 32, 32], 5), ("out100", [1, 3, 32, 32], 100), ("in1x28", [1, 28], 10),
                                  ("in64", [1, 3, 64, 64], 10)):
            names[key] = str(_tiny_onnx(d / (key + ".onnx"), shape, n_out))
    except ImportError:
        pass
    try:
        import torch

        from train import checkpoint
        from train.models import create_model
    except ImportError:  # a robot install: rows that need a checkpoint skip
        return names
    ok = make_checkpoint(d / "lenet5.pt")
    ck = torch.load(str(ok), weights_only=True)
    from edge_runtime.cifar import load_split

    names100 = load_split("cifar100", "test", cifar100_dir).class_names  # the fixture's class names
    man = dict(ck["manifest"], dataset=mf.make_dataset("cifar100", list(names100)))
    checkpoint.save(d / "m100w10.pt", dict(ck, manifest=man))  # manifest: 100 classes; weights: 10
    checkpoint.save(d / "head7.pt", dict(ck, model=create_model("lenet5", num_classes=7).state_dict()))  # 7-class head
    return dict(names, ckpt=str(ok), m100w10=str(d / "m100w10.pt"), head7=str(d / "head7.pt"))


class _Evil:
    """Unpickling this runs a shell command that appends to ./afile (it must never run)."""

    def __reduce__(self) -> Any:
        return (os.system, ("echo pwned >> afile",))


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with the files rows use; the CLI's own log-quieting env vars are restored after."""
    import cv2

    for key in ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL", "OPENCV_VIDEOIO_DEBUG", "GST_DEBUG"):
        monkeypatch.setenv(key, os.environ.get(key, ""))
        monkeypatch.delenv(key)
    for name, text in CONFIGS.items():
        (tmp_path / name).write_text(text)
    shutil.copyfile(CLIP, tmp_path / "clip.mp4")
    (tmp_path / "trunc.mp4").write_bytes(CLIP.read_bytes()[:1000])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    (tmp_path / "afile").write_text("a file where a folder belongs\n")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(_Evil(), protocol=2))
    (tmp_path / "trunc.onnx").write_bytes(BUNDLED_ONNX.read_bytes()[:5000])
    (tmp_path / "existing.mp4").write_bytes(b"someone else's video!")
    for name in ("out.cam1.mp4", "out.front.mp4", "rec.cam0.mp4"):  # a camera's recording would have these names
        (tmp_path / name).write_bytes(b"someone else's video!")
    shutil.copyfile(CLIP.with_suffix(".json"), tmp_path / "sc.json")  # the demo clip's scenario (score, tune)
    (tmp_path / "notes.txt").write_text("seq,action\n1,GO\n")
    shutil.copyfile(BUNDLED_ONNX, tmp_path / "model.onnx")
    shutil.copyfile(BUNDLED_ONNX, tmp_path / "onnx-copy")
    (tmp_path / "oldsnaps").mkdir()
    (tmp_path / "oldsnaps" / "000007_rule_cat.jpg").write_bytes(b"\xff\xd8 an earlier run's snapshot")
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "imgs" / ("%d.png" % i)), np.full((32, 32, 3), 60 * i, np.uint8))
    (tmp_path / "sub").mkdir()
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    (tmp_path / "ro").chmod(0o755)


def _argv(call: Sequence[str], names: Dict[str, Any]) -> List[str]:
    try:
        return [str(a).format(**names) if "{" in str(a) else str(a) for a in call]
    except KeyError as exc:
        pytest.skip("needs %s, which needs torch or onnx (the training extras)" % exc)
        raise


def _run_terminal(argv: List[str], cwd: Path) -> Tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCV_", "GST_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "edge_runtime"] + argv, cwd=str(cwd), capture_output=True, text=True,
                          env=env, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _reasons(path: Path) -> List[str]:
    return [json.loads(x)["reason"] for x in path.read_text().splitlines()] if path.is_file() else []


def _is_subsequence(want: Sequence[str], got: Sequence[str]) -> bool:
    it = iter(got)
    return all(any(g == w for g in it) for w in want)


@pytest.mark.parametrize("row", ROWS, ids=["%s/%s" % (r.group, r.id) for r in ROWS])
def test_hostile(row: Row, ws: Path, artifacts: Dict[str, str], capsys: pytest.CaptureFixture) -> None:
    if row.skip:
        pytest.skip(row.skip)
    before = sha256_files(ws, row.keep)
    silent: Optional[socket.socket] = None
    if callable(row.call):
        try:
            row.call(ws)
            rc, out, err = 0, "", ""
        except EdgeRuntimeError as exc:
            rc, out, err = exc.exit_code, "", str(exc) + "\n"
    else:
        names: Dict[str, Any] = dict(artifacts, closed_port=_free_port())
        if "{silent_port}" in " ".join(row.call):  # accepts connections, never answers
            silent = socket.socket()
            silent.bind(("127.0.0.1", 0))
            silent.listen(4)
            names["silent_port"] = silent.getsockname()[1]
        argv = _argv(row.call, names)
        try:
            rc, out, err = _run_terminal(argv, ws) if row.terminal else run_cli(argv, capsys)
        finally:
            if silent is not None:
                silent.close()
    assert rc == row.rc, (rc, out[-500:], err[-2000:])
    assert "Traceback" not in err, err
    if row.rc != 0:
        lines = one_line(err)
        assert len(lines) == 1, "expected one line on stderr, got:\n" + err
        assert row.fragment in lines[0], lines[0]
        if row.absent:
            assert row.absent not in lines[0], lines[0]
    else:
        assert row.fragment in out, out
    assert sha256_files(ws, row.keep) == before, "a file that must be kept changed"
    if row.reasons:
        got = _reasons(ws / row.events)
        assert _is_subsequence(row.reasons, got), got


def test_every_row_group_is_known_and_ids_are_unique() -> None:
    groups = {"refused-at-start", "traceback->line", "files-not-destroyed", "noise", "misleading", "runs-fail-safe"}
    assert {r.group for r in ROWS} <= groups
    ids = ["%s/%s" % (r.group, r.id) for r in ROWS]
    assert len(ids) == len(set(ids))
    assert all(r.rc == 0 or r.fragment for r in ROWS)  # a refused row names what its line must say


def test_verbose_lets_the_library_logs_through(ws: Path) -> None:
    """The noise rows mean something: without quieting, FFmpeg does print before the project's line."""
    rc, _, err = _run_terminal(["run", "trunc.mp4", "--quiet", "--verbose"], ws)
    assert rc == 2 and "moov atom not found" in err and len(one_line(err)) > 1, err
