"""CIFAR-10 / CIFAR-100 in the official python layout, and a tensor loader with augmentation.

Layout under ``data_dir`` (``--data-dir``; default ``$EDGE_RUNTIME_DATA``, else
``~/.cache/edge-runtime/data``)::

    cifar-10-batches-py/   data_batch_1..5, test_batch, batches.meta
    cifar-100-python/      train, test, meta   (fine + coarse labels and names)

Data are validated by structure (keys, shapes, dtypes, label ranges, counts), not by the
official archives' md5 sums: a faithful copy (say one decoded from another transport) is valid
without being byte-identical. Pickles are read with an unpickler that only admits numpy arrays
and plain containers, so a dataset file cannot run code.

The loader keeps the whole split as a uint8 tensor on the training device and augments there
(random crop with padding, horizontal flip, optional cutout), as the CIFAR speed records do:
no worker processes, identical on CPU and GPU, deterministic for a given seed and epoch.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from edge_runtime.cifar import LAYOUT as _LAYOUT
from edge_runtime.cifar import default_data_dir, load_split
from edge_runtime.errors import EdgeRuntimeError

DATASETS = tuple(_LAYOUT)  # the one layout table (folders, files, counts, archive) is edge_runtime.cifar.LAYOUT

@dataclass(frozen=True)
class Split:
    """One split: images ``(N, 32, 32, 3)`` uint8 RGB (HWC), labels ``(N,)`` int64."""

    images: np.ndarray
    labels: np.ndarray
    coarse_labels: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class CifarData:
    """A loaded dataset with its class names and the train split's per-channel statistics."""

    name: str
    train: Split
    test: Split
    class_names: List[str]
    superclass_names: Optional[List[str]] = None
    fine_to_coarse: Optional[List[int]] = None
    mean: Tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: Tuple[float, float, float] = (0.25, 0.25, 0.25)
    partial: bool = False
    source: str = ""
    notes: List[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _missing_message(name: str, root: Path, what: str) -> str:
    lay = _LAYOUT[name]
    return ("%s: %s; expected %s/%s/{%s} in the official python layout. Get it with "
            "`edge-runtime train --dataset %s --download` (needs network), or unpack a copy into %s "
            "(--data-dir or EDGE_RUNTIME_DATA)" % (name, what, root, lay["folder"], ",".join(lay["train"] + lay["test"]),
                                                   name, root))


def download(name: str, data_dir: Path) -> None:
    """Fetch and md5-check the official archive (torchvision's downloader)."""
    from torchvision.datasets.utils import download_and_extract_archive

    lay = _LAYOUT[name]
    try:
        download_and_extract_archive(lay["url"], download_root=str(data_dir), md5=lay["md5"])
    except Exception as exc:  # network errors come in many types; all are user-facing here
        raise EdgeRuntimeError("could not download %s from %s (%s: %s); without network, copy the official "
                               "python-layout folder into %s" % (name, lay["url"], type(exc).__name__, exc, data_dir))


def channel_stats(images: np.ndarray, chunk: int = 10000) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and std of uint8 HWC images, on the [0, 1] scale."""
    n = 0
    s = np.zeros(3, np.float64)
    s2 = np.zeros(3, np.float64)
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].reshape(-1, 3).astype(np.float64)
        s += x.sum(0)
        s2 += (x * x).sum(0)
        n += x.shape[0]
    mean = s / max(n, 1)
    std = np.sqrt(np.maximum(s2 / max(n, 1) - mean * mean, 1e-12))
    return tuple(float(v) for v in mean / 255.0), tuple(float(v) for v in std / 255.0)


def load(name: str, data_dir: Optional[os.PathLike] = None, download_missing: bool = False) -> CifarData:
    """Load and validate CIFAR-10 or CIFAR-100 from the official python layout."""
    if name not in _LAYOUT:
        raise EdgeRuntimeError("unknown dataset %r; expected one of: %s" % (name, ", ".join(DATASETS)))
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    lay = _LAYOUT[name]
    folder = root / lay["folder"]
    if not folder.is_dir() and download_missing:
        download(name, root)
    if not folder.is_dir():
        raise EdgeRuntimeError(_missing_message(name, root, "no %s folder" % lay["folder"]))
    partial = (folder / "PARTIAL-DATA.txt").is_file()
    absent = [f for f in lay["train"] + lay["test"] + [lay["meta"]] if not (folder / f).is_file()]
    if absent and not (partial and lay["meta"] not in absent):
        raise EdgeRuntimeError(_missing_message(name, root, "missing %s" % ", ".join(absent)))
    tr, te = load_split(name, "train", root), load_split(name, "test", root)
    class_names, superclass_names = tr.class_names, tr.superclass_names
    tr_x, tr_y, tr_c = tr.images, tr.labels, tr.coarse_labels
    te_x, te_y, te_c = te.images, te.labels, te.coarse_labels
    fine_to_coarse = None
    want_train, want_test = lay["counts"]
    if not partial and (len(tr_y) != want_train or len(te_y) != want_test):
        raise EdgeRuntimeError("%s: found %d train and %d test images, expected %d and %d; the copy is incomplete: "
                               "re-unpack or re-download it" % (folder, len(tr_y), len(te_y), want_train, want_test))
    if len(tr_y) == 0 or len(te_y) == 0:
        raise EdgeRuntimeError(_missing_message(name, root, "the train or test split is empty"))
    if name == "cifar100":
        if len(superclass_names or []) != 20:
            raise EdgeRuntimeError("%s: %d coarse label names, expected 20" % (folder / lay["meta"], len(superclass_names or [])))
        mapping = np.full(100, -1, np.int64)
        for f, c in zip(np.concatenate([tr_y, te_y]), np.concatenate([tr_c, te_c])):  # type: ignore[list-item]
            if mapping[f] not in (-1, c):
                raise EdgeRuntimeError("%s: fine class %d maps to two superclasses" % (folder, f))
            mapping[f] = c
        if (mapping < 0).any() and not partial:
            raise EdgeRuntimeError("%s: fine classes %s never appear" % (folder, np.nonzero(mapping < 0)[0].tolist()))
        fine_to_coarse = [int(c) for c in mapping]
    mean, std = channel_stats(tr_x)
    notes = []
    prov = folder / "PROVENANCE.txt"
    if prov.is_file():
        notes.append("copy with PROVENANCE.txt: see %s" % prov)
    return CifarData(name=name, train=Split(tr_x, tr_y, tr_c), test=Split(te_x, te_y, te_c), class_names=class_names,
                     superclass_names=superclass_names, fine_to_coarse=fine_to_coarse, mean=mean, std=std,  # type: ignore[arg-type]
                     partial=partial, source=str(folder), notes=notes)


def select_classes(data: CifarData, classes: Sequence[str]) -> CifarData:
    """Keep only the named classes, relabelled 0..k-1 in the order given (for transfer tasks)."""
    unknown = [c for c in classes if c not in data.class_names]
    if unknown:
        raise EdgeRuntimeError("unknown class(es) %s for %s; valid: %s" % (", ".join(unknown), data.name, ", ".join(data.class_names)))
    idx = [data.class_names.index(c) for c in classes]
    remap = np.full(len(data.class_names), -1, np.int64)
    remap[idx] = np.arange(len(idx))

    def sub(split: Split) -> Split:
        keep = remap[split.labels] >= 0
        return Split(split.images[keep], remap[split.labels[keep]],
                     None if split.coarse_labels is None else split.coarse_labels[keep])

    f2c = [data.fine_to_coarse[i] for i in idx] if data.fine_to_coarse is not None else None
    return CifarData(name=data.name, train=sub(data.train), test=sub(data.test), class_names=list(classes),
                     superclass_names=data.superclass_names, fine_to_coarse=f2c, mean=data.mean, std=data.std,
                     partial=data.partial, source=data.source, notes=data.notes + ["classes: %s" % ",".join(classes)])


def subset(split: Split, n: int, seed: int) -> Split:
    """A seeded random subset of ``n`` images (never "the first n": CIFAR test 1000+ is sorted by class here)."""
    if n >= len(split):
        return split
    idx = np.sort(np.random.default_rng(seed).permutation(len(split))[:n])
    return Split(split.images[idx], split.labels[idx], None if split.coarse_labels is None else split.coarse_labels[idx])


@dataclass(frozen=True)
class Augment:
    """Training augmentation; all on tensors, on the training device."""

    crop_padding: int = 4          # random crop 32x32 from the image padded by this many pixels (0: off)
    pad_mode: str = "reflect"      # reflect | constant
    flip: bool = True              # random horizontal flip, p = 0.5
    cutout: int = 0                # side of a zeroed square at a random centre (0: off); DeVries & Taylor 2017


class TensorLoader:
    """Batches of normalized NCHW float tensors from uint8 images held on ``device``.

    Shuffling and augmentation draw from a CPU generator seeded by (seed, epoch), so a
    resumed run sees exactly the batches the uninterrupted run saw. With ``world > 1`` each
    rank takes every ``world``-th index of the shared permutation (DistributedSampler's rule).
    """

    def __init__(self, split: Split, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 device: torch.device, train: bool, augment: Optional[Augment] = None, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world: int = 1, channels_last: bool = False) -> None:
        self.n = len(split)
        self.batch_size = int(batch_size)
        self.train = train
        self.augment = augment or Augment()
        self.seed = seed
        self.drop_last = drop_last
        self.rank, self.world = rank, world
        self.device = device
        self.channels_last = channels_last
        self.epoch = 0
        self.start_batch = 0
        self.targets: Optional[torch.Tensor] = None
        x = torch.from_numpy(np.ascontiguousarray(split.images)).permute(0, 3, 1, 2).contiguous()
        pad = self.augment.crop_padding if train else 0
        if pad:
            mode = self.augment.pad_mode
            # reflect-pad on float (int pad is not implemented for reflect on every backend), back to uint8
            x = torch.nn.functional.pad(x.float(), (pad, pad, pad, pad), mode=mode).round().to(torch.uint8)
        self.images = x.to(device)
        self.labels = torch.from_numpy(np.asarray(split.labels, np.int64)).to(device)
        self.pad = pad
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255.0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch ``epoch`` from batch ``start_batch`` on (a resume mid-epoch: the same batches follow)."""
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def set_targets(self, targets: torch.Tensor) -> None:
        """Per-image soft targets, (N, 2, K): [:, 0] for the image, [:, 1] for its mirror image.

        With targets set, a training loader yields ``(x, y, t)``, ``t`` picked by image and flip.
        """
        if targets.dim() != 3 or targets.shape[0] != self.n or targets.shape[1] != 2:
            raise ValueError("targets must be (%d, 2, K), got %s" % (self.n, tuple(targets.shape)))
        self.targets = targets.to(self.device)

    def _indices(self) -> torch.Tensor:
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            perm = torch.randperm(self.n, generator=g)
        else:
            perm = torch.arange(self.n)
        if self.world > 1:
            total = (self.n // self.world) * self.world if self.drop_last else -(-self.n // self.world) * self.world
            if total > self.n:  # pad by wrapping, as DistributedSampler does
                perm = torch.cat([perm, perm[: total - self.n]])
            perm = perm[:total][self.rank::self.world]
        return perm

    def __len__(self) -> int:
        per_rank = self.n // self.world if self.drop_last else -(-self.n // self.world)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, ...]]:
        # Every random number of the epoch is drawn up front on the CPU and moved once: per-batch
        # host-to-device copies would make the CPU wait for the GPU at every step.
        idx = self._indices()
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch + 7919)
        m = idx.numel()
        idx = idx.to(self.device)
        if self.train:
            offs = torch.randint(0, 2 * self.pad + 1, (2, m), generator=g).to(self.device) if self.pad else None
            flips = (torch.rand(m, generator=g) < 0.5).to(self.device) if self.augment.flip else None
            cut = torch.randint(0, 32, (2, m), generator=g).to(self.device) if self.augment.cutout else None
        for b in range(self.start_batch, len(self)):
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            bd = idx[sl]
            x = self.images[bd]
            if self.train:
                x = self._augment(x, None if offs is None else offs[:, sl], None if flips is None else flips[sl])
            x = (x.float() - self.mean) / self.std
            if self.train and cut is not None:
                x = self._cutout(x, cut[:, sl])
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.train and self.targets is not None:
                side = flips[sl].long() if flips is not None else torch.zeros_like(bd)
                yield x, self.labels[bd], self.targets[bd, side]
            else:
                yield x, self.labels[bd]

    def _augment(self, x: torch.Tensor, off: Optional[torch.Tensor], flip: Optional[torch.Tensor]) -> torch.Tensor:
        b = x.shape[0]
        if off is not None:
            ar = torch.arange(32, device=self.device)
            rows = (off[0][:, None] + ar)[:, None, :, None]
            cols = (off[1][:, None] + ar)[:, None, None, :]
            bidx = torch.arange(b, device=self.device)[:, None, None, None]
            cidx = torch.arange(3, device=self.device)[None, :, None, None]
            x = x[bidx, cidx, rows, cols]
        if flip is not None:
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
        return x

    def _cutout(self, x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        s = self.augment.cutout
        cy, cx = centre[0] - s // 2, centre[1] - s // 2
        ys = torch.arange(h, device=self.device)[None, :]
        xs = torch.arange(w, device=self.device)[None, :]
        my = ((ys >= cy[:, None]) & (ys < cy[:, None] + s)).view(b, 1, h, 1)
        mx = ((xs >= cx[:, None]) & (xs < cx[:, None] + s)).view(b, 1, 1, w)
        return x.masked_fill(my & mx, 0.0)


def eval_transform(mean: Sequence[float], std: Sequence[float]):
    """The evaluation transform as torchvision composes it (for parity tests of the runtime's preprocessing)."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])


def write_fixture(root: os.PathLike, name: str = "cifar10", n_train: int = 200, n_test: int = 100, seed: int = 0,
                  num_classes: Optional[int] = None) -> Path:
    """Write a tiny dataset in the official python layout (for tests and demos).

    Images are class-dependent colour patterns plus noise, so a model can learn them quickly.
    """
    lay = _LAYOUT[name]
    k = lay["num_classes"] if num_classes is None else num_classes
    rng = np.random.default_rng(seed)
    folder = Path(root) / lay["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    palette = rng.integers(0, 256, size=(lay["num_classes"], 3))

    def make(n: int) -> Tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % k
        rng.shuffle(y)
        img = rng.normal(0, 30, size=(n, 32, 32, 3)) + palette[y][:, None, None, :]
        stripes = (np.arange(32)[None, :, None] * (1 + y[:, None, None] % 4) // 8) % 2 * 40
        img[..., 0] += stripes
        x = np.clip(img, 0, 255).astype(np.uint8).transpose(0, 3, 1, 2).reshape(n, 3072)
        return x, y

    def dump(path: Path, obj: Dict[str, object]) -> None:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=2)

    if name == "cifar10":
        per = -(-n_train // 5)
        x, y = make(n_train)
        for i in range(5):
            dump(folder / ("data_batch_%d" % (i + 1)), {"batch_label": "fixture", "data": x[i * per:(i + 1) * per],
                                                        "labels": y[i * per:(i + 1) * per].tolist()})
        x, y = make(n_test)
        dump(folder / "test_batch", {"batch_label": "fixture", "data": x, "labels": y.tolist()})
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        dump(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": per, "num_vis": 3072})
    else:
        f2c = np.arange(100) % 20
        for split, n in (("train", n_train), ("test", n_test)):
            x, y = make(n)
            dump(folder / split, {"data": x, "fine_labels": y.tolist(), "coarse_labels": f2c[y].tolist()})
        fine = ["fine_%02d" % i for i in range(100)]
        coarse = ["aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
                  "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
                  "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
                  "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
                  "vehicles_1", "vehicles_2"]
        dump(folder / "meta", {"fine_label_names": fine, "coarse_label_names": coarse})
    (folder / "PARTIAL-DATA.txt").write_text("fixture: %d train and %d test images, not the real dataset\n" % (n_train, n_test))
    return folder
