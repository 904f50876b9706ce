"""Helpers shared by test modules (import them from here, not from another test module)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from edge_runtime import manifest as mf
from edge_runtime.backends import Runner
from edge_runtime.config import parse_config

CLASSES10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def run_cli(args: Iterable[Any], capsys: Any) -> Tuple[Any, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from edge_runtime.cli import main

    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def make_checkpoint(path: Path, name: str = "lenet5", dataset: str = "cifar10", num_classes: int = 10,
                    seed: int = 0) -> Path:
    """A tiny untrained checkpoint with a manifest, as `edge-runtime train` writes it."""
    import torch

    from edge_runtime import manifest as mf
    from train import checkpoint
    from train.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, num_classes=num_classes)
    classes = CLASSES10 if num_classes == 10 else ["c%02d" % i for i in range(num_classes)]
    man = mf.new("checkpoint", model={"name": name, "kwargs": {}}, dataset=mf.make_dataset(dataset, classes),
                 preprocess=mf.make_preprocess((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
                 accuracy={"top1": 10.0, "top1_first1000": None, "split": "test", "n": 100, "command": "test fixture"})
    checkpoint.save(path, {"model": model.state_dict(), "manifest": man, "config": {"model": name}})
    return path


def sha256_files(root: Path, names: Iterable[str]) -> Dict[str, str]:
    """sha256 of each named file under ``root`` (a folder: of its sorted file names and contents)."""
    out: Dict[str, str] = {}
    for name in names:
        p = root / name
        h = hashlib.sha256()
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file()):
                h.update(str(f.relative_to(p)).encode() + b"\0" + f.read_bytes())
        else:
            h.update(p.read_bytes())
        out[name] = h.hexdigest()
    return out


def one_line(err: str) -> List[str]:
    """The non-empty lines of a stderr text."""
    return [x for x in err.splitlines() if x.strip()]


# ----------------------------------------------------------------------- a fake runtime (test_runtime, test_deploy)
CAT = CLASSES10.index("cat")
SHIP = CLASSES10.index("ship")


class FakeRunner(Runner):
    """Scripted logits: ``script(call_index) -> logits`` (it may sleep or raise)."""

    name = "fake"

    def __init__(self, script: Callable[[int], np.ndarray]) -> None:
        super().__init__()
        self.script = script
        self.calls = 0
        self.input_shape = ["batch", 3, 32, 32]

    def _activate(self) -> None:
        pass

    def _infer(self, x: np.ndarray) -> np.ndarray:
        if not x.any():  # the runtime's warm-up call (zeros); frames are never all zero after normalizing
            return np.zeros((1, 10), np.float32)
        i = self.calls
        self.calls += 1
        return np.asarray(self.script(i), np.float32).reshape(1, -1)


def logits_for(cls: int) -> np.ndarray:
    z = np.zeros(10, np.float32)
    z[cls] = 8.0
    return z


MANIFEST = mf.new("onnx", {"name": "fake"}, mf.make_dataset("cifar10", CLASSES10),
                  mf.make_preprocess((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)))


def runtime_config(source_timeout_ms: float = 200, deadline_ms: float = 500, deadline_action: str = "STOP",
                   sinks: Optional[list] = None, latch: bool = False) -> Any:
    """test_runtime's config: STOP on a confident cat, GO otherwise; no debouncing."""
    return parse_config({"policy": {"default_action": "GO", "rules": [
        {"name": "animals", "action": "STOP", "classes": ["cat"], "min_confidence": 0.5}],
        "debounce": {"trigger_k": 1, "trigger_n": 1, "release_m": 1, "min_hold_ms": 0},
        "latch": {"stop": latch},
        "timeouts": {"source_timeout_ms": source_timeout_ms, "max_frame_age_ms": 1000, "deadline_ms": deadline_ms,
                     "deadline_action": deadline_action}},
        "sinks": sinks or []}, origin="test.yaml")


def images(n: int) -> List[np.ndarray]:
    return [np.full((40, 48, 3), 10 * i % 250, np.uint8) for i in range(n)]


# --------------------------------------------------------------------- regions (test_regions, test_cameras)
RULES = [{"name": "animals_stop", "action": "STOP", "classes": ["cat"], "min_confidence": 0.5},
         {"name": "animals_slow", "action": "SLOW", "classes": ["cat"], "min_confidence": 0.5}]
PATH = {"name": "path", "x": 0.375, "y": 0.5, "w": 0.25, "h": 0.5, "rules": ["animals_stop"]}
LEFT = {"name": "left", "x": 0.0, "y": 0.5, "w": 0.25, "h": 0.5, "rules": ["animals_slow"]}


class BrightnessRunner(Runner):
    """A 'classifier' that says cat where the image is bright on average, ship elsewhere; records batch sizes."""

    name = "bright"

    def __init__(self, fixed: Any = "batch") -> None:
        super().__init__(MANIFEST)
        self.input_shape = [fixed, 3, 32, 32]
        self.batches: List[int] = []

    def _activate(self) -> None:
        pass

    def _infer(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(len(x))
        out = np.zeros((len(x), 10), np.float32)
        bright = x.reshape(len(x), -1).mean(1) > 0.0
        out[bright, CAT] = 8.0
        out[~bright, SHIP] = 8.0
        return out


def road(w: int = 64, h: int = 36, patch: Any = None) -> np.ndarray:
    """A dark grey frame; ``patch=(x0, y0, x1, y1)`` paints a white object there."""
    img = np.full((h, w, 3), 60, np.uint8)
    if patch is not None:
        x0, y0, x1, y1 = patch
        img[y0:y1, x0:x1] = 255
    return img
