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
                    distill_temperature=2.0, distill_targets=targets, **BASE), progress=False)
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


def test_teacher_of_other_classes_is_refused(cifar10_dir, teacher, tmp_path):
    ds = data.select_classes(data.load("cifar10", str(cifar10_dir)), ["cat", "dog"])
    with pytest.raises(EdgeRuntimeError, match="trained on the classes"):
        Teachers([str(teacher)], ds.class_names, ds.mean, ds.std, torch.device("cpu"))


@pytest.mark.parametrize("flags, message", [
    (["--distill-alpha", "1.5"], "distill_alpha=1.5 is invalid"),
    (["--distill-temperature", "0"], "distill_temperature=0.0 is invalid"),
    (["--teacher", "missing.pt"], "checkpoint not found: missing.pt"),
])
def test_bad_distillation_input_is_one_line_exit_2(cifar10_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    rc, so, se = run_cli(["train", "--model", "lenet5", "--device", "cpu", "--quiet", "--data-dir", cifar10_dir,
                          "--epochs", "1", "--out", out, *(flags if "--teacher" in flags else ["--teacher", "x.pt", *flags])],
                         capsys)
    assert rc == 2 and message in se and "Traceback" not in se and len(se.strip().splitlines()) == 1
    assert not (out / "last.pt").exists()
