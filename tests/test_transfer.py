import pytest
import torch

from edge_runtime import manifest as mf
from edge_runtime.errors import EdgeRuntimeError
from train import checkpoint
from train.config import TrainConfig
from train.models import create_model, get_entry
from train.trainer import fit
from train.transfer import apply_freeze


@pytest.fixture(scope="module")
def parent(cifar100_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("parent")
    fit(TrainConfig(model="lenet5", dataset="cifar100", data_dir=str(cifar100_dir), epochs=1, batch_size=64,
                    device="cpu", out=str(out)), progress=False)
    return out / "best.pt"


def test_cifar100_parent_into_cifar10_child_with_frozen_backbone(parent, cifar10_dir, tmp_path):
    before = checkpoint.load(parent)["model"]
    seen = []
    out = tmp_path / "child"

    def snap(row):
        seen.append(checkpoint.load(out / "last.pt")["model"])

    fit(TrainConfig(model="lenet5", data_dir=str(cifar10_dir), epochs=2, batch_size=64, subset=256, device="cpu",
                    init_from=str(parent), freeze="backbone", unfreeze_at=2, out=str(out)), progress=False, on_epoch=snap)
    e1, e2 = seen
    # epoch 1: backbone frozen (equal to the parent), new 10-class head trained
    assert torch.equal(e1["features.0.weight"], before["features.0.weight"])
    assert torch.equal(e1["classifier.1.weight"], before["classifier.1.weight"])
    assert e1["classifier.5.weight"].shape == (10, 84) and before["classifier.5.weight"].shape == (100, 84)
    # epoch 2: unfrozen, everything moves
    assert not torch.equal(e2["features.0.weight"], before["features.0.weight"])
    man = mf.read(out / "manifest.json")
    assert man["parent"]["dataset"] == "cifar100" and man["parent"]["num_classes"] == 100
    assert man["parent"]["sha256"] and man["dataset"]["num_classes"] == 10


def test_freeze_until_stage(parent):
    m = create_model("mobilenetv2_paper")
    n = apply_freeze(m, "until:features.3", get_entry("mobilenetv2_paper"))
    frozen = [k for k, p in m.named_parameters() if not p.requires_grad]
    assert n == len(frozen) and frozen[-1].startswith("features.3.") and not any(k.startswith("features.4") for k in frozen)
    with pytest.raises(EdgeRuntimeError, match="valid stages: features.0"):
        apply_freeze(m, "until:layer9", get_entry("mobilenetv2_paper"))


def test_frozen_batchnorm_stays_in_eval_mode():
    m = create_model("resnet34")
    apply_freeze(m, "until:layer1", get_entry("resnet34"))
    m.train()
    apply_freeze(m, "until:layer1", get_entry("resnet34"), set_mode_only=True)
    assert not m.bn1.training and not m.layer1[0].bn1.training and m.layer2[0].bn1.training


@pytest.fixture(scope="module")
def cifar10_parent(cifar10_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("parent10")
    fit(TrainConfig(model="lenet5", data_dir=str(cifar10_dir), epochs=1, batch_size=64, subset=256, device="cpu",
                    out=str(out)), progress=False)
    return out / "best.pt"


def test_parent_of_the_same_classes_keeps_its_head(cifar10_parent):
    from train.transfer import load_parent

    before = checkpoint.load(cifar10_parent)
    names = before["manifest"]["dataset"]["class_names"]
    entry = get_entry("lenet5")
    torch.manual_seed(123)
    same = create_model("lenet5", num_classes=10)
    info = load_parent(same, cifar10_parent, "lenet5", entry.head, names)
    assert info["head"] == "kept"
    for k, v in before["model"].items():
        assert torch.equal(same.state_dict()[k], v), k
    # the same ten classes in another order are other classes: the head is not copied
    torch.manual_seed(123)
    other = create_model("lenet5", num_classes=10)
    fresh = other.state_dict()["classifier.5.weight"].clone()
    info = load_parent(other, cifar10_parent, "lenet5", entry.head, names[::-1])
    assert info["head"] == "new"
    assert torch.equal(other.state_dict()["classifier.5.weight"], fresh)
    assert not torch.equal(fresh, before["model"]["classifier.5.weight"])
    assert torch.equal(other.state_dict()["features.0.weight"], before["model"]["features.0.weight"])


def test_fine_tune_on_the_same_classes_records_the_kept_head(cifar10_parent, cifar10_dir, tmp_path):
    out = tmp_path / "ft"
    fit(TrainConfig(model="lenet5", data_dir=str(cifar10_dir), epochs=1, batch_size=64, subset=256, device="cpu",
                    init_from=str(cifar10_parent), out=str(out)), progress=False)
    assert mf.read(out / "manifest.json")["parent"]["head"] == "kept"
    out = tmp_path / "vehicles"
    fit(TrainConfig(model="lenet5", data_dir=str(cifar10_dir), epochs=1, batch_size=64, device="cpu",
                    classes=["airplane", "automobile", "ship", "truck"], init_from=str(cifar10_parent), out=str(out)),
        progress=False)
    assert mf.read(out / "manifest.json")["parent"]["head"] == "new"
