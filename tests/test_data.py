import pickle

import numpy as np
import pytest
import torch

from edge_runtime.errors import EdgeRuntimeError
from train import data


def test_fixture_loads_in_official_layout(cifar10_dir):
    d = data.load("cifar10", cifar10_dir)
    assert d.train.images.shape == (640, 32, 32, 3) and d.train.images.dtype == np.uint8
    assert len(d.test) == 200 and d.num_classes == 10 and d.class_names[0] == "airplane"
    assert all(0 < m < 1 for m in d.mean) and all(0 < s < 1 for s in d.std)


def test_channel_stats_match_numpy():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(50, 32, 32, 3), dtype=np.uint8)
    mean, std = data.channel_stats(imgs, chunk=7)
    ref = imgs.reshape(-1, 3).astype(np.float64) / 255
    assert np.allclose(mean, ref.mean(0)) and np.allclose(std, ref.std(0))


def test_cifar100_has_fine_and_coarse_labels(cifar100_dir):
    d = data.load("cifar100", cifar100_dir)
    assert d.num_classes == 100 and len(d.superclass_names) == 20 and "people" in d.superclass_names
    assert len(d.fine_to_coarse) == 100
    f2c = np.array(d.fine_to_coarse)
    assert (f2c[d.train.labels] == d.train.coarse_labels).all()


def test_missing_data_names_the_directory_and_both_remedies(tmp_path):
    with pytest.raises(EdgeRuntimeError) as e:
        data.load("cifar10", tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "--download" in msg and "EDGE_RUNTIME_DATA" in msg and "\n" not in msg


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(EdgeRuntimeError, match="cifar10, cifar100"):
        data.load("mnist", "/nonexistent")


def _copy_fixture(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst / "cifar-10-batches-py"


def test_corrupt_and_wrongly_shaped_batches_are_rejected(cifar10_dir, tmp_path):
    folder = _copy_fixture(cifar10_dir, tmp_path / "c")
    (folder / "data_batch_2").write_bytes(b"\x80\x02garbage")
    with pytest.raises(EdgeRuntimeError, match="data_batch_2 is corrupt or truncated"):
        data.load("cifar10", tmp_path / "c")
    with open(folder / "data_batch_2", "wb") as fh:
        pickle.dump({"data": np.zeros((4, 100), np.uint8), "labels": [0, 1, 2, 3]}, fh)
    with pytest.raises(EdgeRuntimeError, match=r"expected uint8 \(N, 3072\)"):
        data.load("cifar10", tmp_path / "c")
    with open(folder / "data_batch_2", "wb") as fh:
        pickle.dump({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]}, fh)
    with pytest.raises(EdgeRuntimeError, match=r"labels span 0..12, expected 0..9"):
        data.load("cifar10", tmp_path / "c")


def test_pickles_cannot_run_code(cifar10_dir, tmp_path):
    folder = _copy_fixture(cifar10_dir, tmp_path / "c")

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    with open(folder / "data_batch_1", "wb") as fh:
        pickle.dump({"data": Evil(), "labels": []}, fh)
    with pytest.raises(EdgeRuntimeError, match="not allowed"):
        data.load("cifar10", tmp_path / "c")


def test_incomplete_copy_is_rejected_unless_marked_partial(cifar10_dir, tmp_path):
    folder = _copy_fixture(cifar10_dir, tmp_path / "c")
    (folder / "PARTIAL-DATA.txt").unlink()
    with pytest.raises(EdgeRuntimeError, match="incomplete"):
        data.load("cifar10", tmp_path / "c")


def test_select_classes_relabels_in_the_given_order(cifar10_dir):
    d = data.select_classes(data.load("cifar10", cifar10_dir), ["truck", "airplane"])
    assert d.class_names == ["truck", "airplane"] and set(np.unique(d.train.labels)) == {0, 1}
    with pytest.raises(EdgeRuntimeError, match="valid: truck, airplane"):
        data.select_classes(d, ["unicorn"])


def test_subset_is_seeded_and_random():
    split = data.Split(np.zeros((100, 32, 32, 3), np.uint8), np.arange(100) % 10)
    a, b = data.subset(split, 30, 1), data.subset(split, 30, 1)
    assert np.array_equal(a.labels, b.labels) and len(a) == 30


def test_loader_is_deterministic_per_epoch_and_shards_like_distributed_sampler(cifar10_dir):
    d = data.load("cifar10", cifar10_dir)
    mk = lambda **k: data.TensorLoader(d.train, 64, d.mean, d.std, torch.device("cpu"), train=True,  # noqa: E731
                                       augment=data.Augment(cutout=8), seed=3, **k)
    a, b = mk(), mk()
    a.set_epoch(2), b.set_epoch(2)
    xa, ya = next(iter(a))
    xb, yb = next(iter(b))
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.shape == (64, 3, 32, 32)
    b.set_epoch(3)
    assert not torch.equal(xa, next(iter(b))[0])
    r0, r1 = mk(rank=0, world=2, drop_last=True), mk(rank=1, world=2, drop_last=True)
    i0, i1 = r0._indices(), r1._indices()
    assert len(set(i0.tolist()) & set(i1.tolist())) == 0 and len(i0) == len(i1) == 320


def test_eval_loader_equals_torchvision_eval_transform(cifar10_dir):
    d = data.load("cifar10", cifar10_dir)
    loader = data.TensorLoader(d.test, 8, d.mean, d.std, torch.device("cpu"), train=False)
    x, _ = next(iter(loader))
    tf = data.eval_transform(d.mean, d.std)
    ref = torch.stack([tf(img) for img in d.test.images[:8]])
    assert (x - ref).abs().max() < 1e-5


@pytest.mark.data
def test_real_cifar10_is_complete(real_data):
    d = data.load("cifar10", real_data)
    assert len(d.train) == 50000 and len(d.test) == 10000
    assert np.bincount(d.test.labels).tolist() == [1000] * 10
    assert d.train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    # per-channel train mean as measured on this copy (shared/data README: 125.272, 122.934, 113.862)
    assert np.allclose(np.array(d.mean) * 255, [125.272, 122.934, 113.862], atol=0.01)


def test_one_cifar_layout_table():
    """train.data reads the layout (folders, files, counts, archive) from edge_runtime.cifar: one table, not two."""
    from edge_runtime import cifar
    from train import data

    assert data._LAYOUT is cifar.LAYOUT and data.DATASETS == cifar.DATASETS
    assert all({"url", "md5", "counts", "folder", "train", "test"} <= set(v) for v in cifar.LAYOUT.values())
