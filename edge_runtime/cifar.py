"""CIFAR-10/100 splits as numpy arrays, without torch (for calibration and evaluation on a device).

Reads the official python layout (the same files ``train.data`` reads) with an unpickler that
admits numpy arrays and plain containers only. Validation is by structure; see ``train/data.py``
for the full loader with channel statistics and augmentation.
"""
from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .errors import EdgeRuntimeError

#: The one CIFAR layout table (train/data.py reads it too): folders, files, keys, counts and the official archive.
LAYOUT: Dict[str, Dict[str, Any]] = {
    "cifar10": {"folder": "cifar-10-batches-py", "train": ["data_batch_%d" % i for i in range(1, 6)],
                "test": ["test_batch"], "meta": "batches.meta", "label_key": "labels", "names_key": "label_names",
                "num_classes": 10, "counts": (50000, 10000),
                "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "md5": "c58f30108f718f92721af3b95e74349a"},
    "cifar100": {"folder": "cifar-100-python", "train": ["train"], "test": ["test"], "meta": "meta",
                 "label_key": "fine_labels", "names_key": "fine_label_names", "num_classes": 100, "counts": (50000, 10000),
                 "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "md5": "eb9058c3a382ffc7106e4002c42a8d85"},
}
_LAYOUT = LAYOUT
DATASETS = tuple(LAYOUT)


def default_data_dir() -> Path:
    env = os.environ.get("EDGE_RUNTIME_DATA")
    return Path(env) if env else Path.home() / ".cache" / "edge-runtime" / "data"


class _SafeUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("global %s.%s is not allowed in a CIFAR file" % (module, name))


def load_pickle(path: Path) -> Dict[str, object]:
    try:
        with open(str(path), "rb") as fh:
            obj = _SafeUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise EdgeRuntimeError("%s is corrupt or truncated (%s); re-unpack or re-download the dataset" % (path, exc))
    if not isinstance(obj, dict):
        raise EdgeRuntimeError("%s is not a CIFAR batch (expected a dict, got %s)" % (path, type(obj).__name__))
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


@dataclass(frozen=True)
class SplitData:
    """One split: images ``(N, 32, 32, 3)`` uint8 RGB, labels ``(N,)`` int64, and the dataset's names."""

    dataset: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    class_names: List[str]
    superclass_names: Optional[List[str]] = None
    coarse_labels: Optional[np.ndarray] = None     # CIFAR-100 superclass of each image

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_split(name: str, split: str, data_dir: "Optional[Union[str, os.PathLike[str]]]" = None) -> SplitData:
    """Load the ``train`` or ``test`` split of ``cifar10``/``cifar100``; missing or corrupt files are one line."""
    if name not in _LAYOUT:
        raise EdgeRuntimeError("unknown dataset %r; expected one of: %s" % (name, ", ".join(DATASETS)))
    if split not in ("train", "test"):
        raise ValueError("split must be train or test, got %r" % split)
    lay = _LAYOUT[name]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / str(lay["folder"])
    files = list(lay[split]) + [str(lay["meta"])]
    absent = [f for f in files if not (folder / f).is_file()]
    partial = (folder / "PARTIAL-DATA.txt").is_file()
    if absent and not (partial and str(lay["meta"]) not in absent and len(absent) < len(files) - 1):
        raise EdgeRuntimeError("%s: missing %s under %s; unpack the official python-layout dataset there (--data-dir or "
                               "EDGE_RUNTIME_DATA)" % (name, ", ".join(absent), folder))
    meta = load_pickle(folder / str(lay["meta"]))
    class_names = [str(c) for c in meta.get(str(lay["names_key"]), [])]  # type: ignore[attr-defined]
    k = int(lay["num_classes"])
    if len(class_names) != k:
        raise EdgeRuntimeError("%s: %d class names, expected %d" % (folder / str(lay["meta"]), len(class_names), k))
    supers = None
    if name == "cifar100":
        supers = [str(c) for c in meta.get("coarse_label_names", [])]  # type: ignore[attr-defined]
    xs, ys, cs = [], [], []
    for fname in lay[split]:
        path = folder / fname
        if not path.is_file():
            continue
        d = load_pickle(path)
        if "data" not in d or str(lay["label_key"]) not in d:
            raise EdgeRuntimeError("%s has no data/%s entries; the file is not a %s batch" % (path, lay["label_key"], name))
        x = np.asarray(d["data"])
        y = np.asarray(d[str(lay["label_key"])], dtype=np.int64)
        if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or y.shape != (x.shape[0],):
            raise EdgeRuntimeError("%s: data %s %s with %d labels, expected uint8 (N, 3072) and N labels"
                                   % (path, x.dtype, x.shape, y.shape[0]))
        if y.size and (y.min() < 0 or y.max() >= k):
            raise EdgeRuntimeError("%s: labels span %d..%d, expected 0..%d" % (path, y.min(), y.max(), k - 1))
        if name == "cifar100":
            if "coarse_labels" not in d:
                raise EdgeRuntimeError("%s has no 'coarse_labels' entry; the file is not a cifar100 batch" % path)
            cs.append(np.asarray(d["coarse_labels"], dtype=np.int64))
        xs.append(x)
        ys.append(y)
    if not xs:
        return SplitData(name, split, np.zeros((0, 32, 32, 3), np.uint8), np.zeros((0,), np.int64), class_names, supers,
                         np.zeros((0,), np.int64) if name == "cifar100" else None)
    images = np.ascontiguousarray(np.concatenate(xs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return SplitData(name, split, images, np.concatenate(ys), class_names, supers, np.concatenate(cs) if cs else None)
