"""Knowledge distillation: the loss, teacher checks, cached targets, and a student that follows its teacher."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file
from train import checkpoint, data
from train.config import TrainConfig
from train.distill import Teachers, kd_loss
from train.trainer import fit

from .conftest import run_cli

BASE = dict(model="lenet5", model_kwargs={"activation": "relu", "pooling": "max"}, batch_size=32, device="cpu",
            optimizer="adam", lr=3e-3, schedule="none", eval_every=1)


def test_kd_loss_is_t2_times_kl_and_zero_for_equal_logits():
    torch.manual_seed(0)
    s, t = torch.randn(6, 10), torch.randn(6, 10)
    for temp in (1.0, 4.0):
        p_t = F.softmax(t / temp, 1)
        want = (p_t * (p_t.log() - F.log_softmax(s / temp, 1))).sum(1).mean() * temp * temp
        assert float(kd_loss(s, t, temp)) == pytest.approx(float(want), rel=1e-5)
        assert float(kd_loss(t, t, temp)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_loss(s, t, 4.0)) > 0


@pytest.fixture(scope="module")
def teacher(cifar10_dir, tmp_path_factory):
    """A lenet5 trained on the fixture (it learns the colour patterns to near 100 %)."""
    out = tmp_path_factory.mktemp("teacher")
    fit(TrainConfig(data_dir=str(cifar10_dir), epochs=3, out=str(out), **BASE), progress=False)
    assert mf.read(out / "manifest.json")["accuracy"]["top1"] > 80
    return out / "best.pt"


def _permuted(teacher_path, tmp_path, perm):
    """The teacher with its output classes relabelled: it says perm[c] where it used to say c."""
    ck = checkpoint.load(teacher_path)
    state = dict(ck["model"])
    w, b = state["classifier.5.weight"], state["classifier.5.bias"]
    inv = torch.as_tensor(np.argsort(perm))
    state["classifier.5.weight"], state["classifier.5.bias"] = w[inv].clone(), b[inv].clone()
    ck["model"] = state
    path = tmp_path / "permuted.pt"
    checkpoint.save(path, ck)
    return path


@pytest.mark.parametrize("targets", ["online", "cached"])
def test_student_follows_its_teacher_not_the_labels(cifar10_dir, teacher, tmp_path, targets):
    perm = np.roll(np.arange(10), 3)
    wrong = _permuted(teacher, tmp_path, perm)
    ds = data.load("cifar10", str(cifar10_dir))
    labels = torch.as_tensor(ds.test.labels)
    # alpha = 1: the labels carry no weight, the student learns the teacher's (relabelled) answers
    out = tmp_path / ("student_" + targets)
    fit(TrainConfig(data_dir=str(cifar10_dir), epochs=3, out=str(out), teachers=[str(wrong)], distill_alpha=1.0,
                    distill_temperature=2.0, distill_targets=targets, distill_cache=str(tmp_path / "cache"), **BASE),
        progress=False)
    man = mf.read(out / "manifest.json")
    assert man["distillation"]["targets"] == targets and man["distillation"]["alpha"] == 1.0
    assert man["distillation"]["teachers"][0]["sha256"] == sha256_file(wrong)
    assert man["distillation"]["teachers_test_top1"] < 20  # the relabelled teacher is wrong on purpose
    from train.models import create_model

    student = create_model("lenet5", **BASE["model_kwargs"])
    student.load_state_dict(checkpoint.load(out / "last.pt")["model"])
    student.eval()
    loader = data.TensorLoader(ds.test, 100, ds.mean, ds.std, torch.device("cpu"), train=False)
    with torch.no_grad():
        pred = torch.cat([student(x).argmax(1) for x, _ in loader])
    follows = float((pred == torch.as_tensor(perm)[labels]).float().mean())
    assert follows > 0.8, "the student agrees with its teacher on only %.0f %% of the test images" % (100 * follows)
    assert float((pred == labels).float().mean()) < 0.2


def test_cached_targets_are_the_teachers_logits_of_image_and_mirror(cifar10_dir, teacher):
    ds = data.load("cifar10", str(cifar10_dir))
    cpu = torch.device("cpu")
    t = Teachers([str(teacher), str(teacher)], ds.class_names, ds.mean, ds.std, cpu)
    plain = data.TensorLoader(ds.train, 100, ds.mean, ds.std, cpu, train=False, channels_last=True)
    cached = t.cache(plain, progress=False)
    assert cached.shape == (len(ds.train), 2, 10)
    x, _ = next(iter(plain))
    with torch.no_grad():
        assert torch.allclose(cached[:100, 0], t.models[0](x), atol=1e-5)
        assert torch.allclose(cached[:100, 1], t.models[0](x.flip(3)), atol=1e-5)


def test_training_loader_picks_the_target_of_the_flip_it_applied(cifar10_dir):
    ds = data.load("cifar10", str(cifar10_dir))
    cpu = torch.device("cpu")
    n = len(ds.train)
    loader = data.TensorLoader(ds.train, 64, ds.mean, ds.std, cpu, train=True, augment=data.Augment(crop_padding=0),
                               seed=3)
    targets = torch.stack([torch.arange(n, dtype=torch.float32), -1 - torch.arange(n, dtype=torch.float32)], 1)
    loader.set_targets(targets[:, :, None].repeat(1, 1, 10))
    plain = data.TensorLoader(ds.train, n, ds.mean, ds.std, cpu, train=False)
    images, _ = next(iter(plain))
    seen_flip = seen_plain = 0
    for x, y, t in loader:
        for xi, yi, ti in zip(x, y, t[:, 0]):
            i = int(ti) if ti >= 0 else int(-ti) - 1
            assert int(yi) == int(ds.train.labels[i])
            if ti >= 0:
                assert torch.equal(xi, images[i]); seen_plain += 1
            else:
                assert torch.equal(xi, images[i].flip(2)); seen_flip += 1
    assert seen_plain > 100 and seen_flip > 100
    with pytest.raises(ValueError):
        loader.set_targets(torch.zeros(n - 1, 2, 10))


def test_cached_targets_are_kept_on_disk_and_the_second_run_skips_the_teachers(cifar10_dir, teacher, tmp_path,
                                                                                 monkeypatch, capsys):
    calls = []
    real = Teachers.forward

    def counted(self, x):
        calls.append(int(x.shape[0]))
        return real(self, x)

    monkeypatch.setattr(Teachers, "forward", counted)
    cache = tmp_path / "cache"
    cfg = dict(data_dir=str(cifar10_dir), epochs=2, teachers=[str(teacher)], distill_targets="cached", subset=200,
               distill_cache=str(cache), **BASE)
    fit(TrainConfig(out=str(tmp_path / "a"), **cfg), progress=False)
    n_test = len(data.subset(data.load("cifar10", str(cifar10_dir)).test, 200, 1))
    assert sum(calls) == 200 * 2 + n_test  # the teacher pass: each train image and its mirror, and the test images
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 2 and any("-train-image-mirror-" in f for f in files) and any("-test-image-" in f for f in files)
    assert not [f for f in files if f.endswith(".tmp")]
    calls.clear()
    fit(TrainConfig(out=str(tmp_path / "b"), **cfg), progress=False)
    assert calls == []  # no teacher forward pass at all
    assert "read from" in capsys.readouterr().err
    ma, mb = mf.read(tmp_path / "a" / "manifest.json"), mf.read(tmp_path / "b" / "manifest.json")
    assert ma["distillation"]["cache"]["reused"] is False and mb["distillation"]["cache"]["reused"] is True
    assert ma["distillation"]["teachers_test_top1"] == mb["distillation"]["teachers_test_top1"]
    wa, wb = checkpoint.load(tmp_path / "a" / "last.pt")["model"], checkpoint.load(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # the same targets, bit for bit
    # another subset is another key: a new entry, the old ones untouched
    fit(TrainConfig(out=str(tmp_path / "c"), **dict(cfg, subset=160)), progress=False)
    assert len(list(cache.iterdir())) == 4 and calls


def test_a_cache_entry_whose_key_differs_is_refused_in_one_line(cifar10_dir, teacher, tmp_path, capsys):
    from train.distill import cache_path, cached_logits, target_key

    ds = data.load("cifar10", str(cifar10_dir))
    info = [{"sha256": sha256_file(teacher)}]
    key = target_key(info, "cifar10", "train", ds.train.images, ds.mean, ds.std, "image+mirror")
    cache = tmp_path / "cache"
    logits, path, hit = cached_logits(key, str(cache), lambda: torch.zeros(len(ds.train), 2, 10))
    assert path == cache_path(str(cache), key) and not hit and logits.shape == (len(ds.train), 2, 10)
    assert cached_logits(key, str(cache), lambda: pytest.fail("recomputed"))[2] is True
    # an entry copied under another key's name (other teachers; other images): refused, naming what differs
    for other, field in ((target_key([{"sha256": "0" * 64}], "cifar10", "train", ds.train.images, ds.mean, ds.std,
                                     "image+mirror"), "teachers"),
                         (target_key(info, "cifar10", "train", ds.train.images[:-1], ds.mean, ds.std, "image+mirror"),
                          "images")):
        wrong = cache_path(str(cache), other)
        wrong.write_bytes(path.read_bytes())
        with pytest.raises(EdgeRuntimeError, match="was made for %s=" % field) as exc:
            cached_logits(other, str(cache), lambda: pytest.fail("recomputed"))
        assert len(str(exc.value).splitlines()) == 1 and "nothing was overwritten" in str(exc.value)
        assert wrong.read_bytes() == path.read_bytes()
    path.write_bytes(b"garbage")
    with pytest.raises(EdgeRuntimeError, match="unreadable"):
        cached_logits(key, str(cache), lambda: pytest.fail("recomputed"))
    with pytest.raises(EdgeRuntimeError, match="expected a folder"):
        cached_logits(key, str(path), lambda: pytest.fail("recomputed"))
    # through the CLI: a tampered entry is one line, exit 2, and the run writes nothing
    path.unlink()
    args = ["train", "--model", "lenet5", "--device", "cpu", "--quiet", "--data-dir", cifar10_dir, "--epochs", "1",
            "--batch-size", "32", "--teacher", teacher, "--distill-targets", "cached", "--distill-cache", tmp_path / "c2"]
    rc, so, se = run_cli([*args, "--out", tmp_path / "r1"], capsys)
    assert rc == 0, se
    entries = sorted((tmp_path / "c2").iterdir())
    entries[0].write_bytes(entries[1].read_bytes())  # the test split's entry replaced by the train split's
    rc, so, se = run_cli([*args, "--out", tmp_path / "r2"], capsys)
    assert rc == 2 and len(se.strip().splitlines()) == 1 and "was made for" in se, se
    assert not (tmp_path / "r2" / "last.pt").exists()


def test_teacher_of_other_classes_is_refused(cifar10_dir, teacher, tmp_path):
    ds = data.select_classes(data.load("cifar10", str(cifar10_dir)), ["cat", "dog"])
    with pytest.raises(EdgeRuntimeError, match="trained on the classes"):
        Teachers([str(teacher)], ds.class_names, ds.mean, ds.std, torch.device("cpu"))


@pytest.mark.parametrize("flags, message", [
    (["--distill-alpha", "1.5"], "flags: distill_alpha: expected a number in [0, 1], got 1.5"),
    (["--distill-temperature", "0"], "flags: distill_temperature: expected a number > 0, got 0.0"),
    (["--teacher", "missing.pt"], "checkpoint not found: missing.pt"),
])
def test_bad_distillation_input_is_one_line_exit_2(cifar10_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    rc, so, se = run_cli(["train", "--model", "lenet5", "--device", "cpu", "--quiet", "--data-dir", cifar10_dir,
                          "--epochs", "1", "--out", out, *(flags if "--teacher" in flags else ["--teacher", "x.pt", *flags])],
                         capsys)
    assert rc == 2 and message in se and "Traceback" not in se and len(se.strip().splitlines()) == 1
    assert not (out / "last.pt").exists()
