import pytest
import torch

from edge_runtime.errors import EdgeRuntimeError
from train.models import ModelEntry, create_model, get_entry, list_models, register
from train.models.mobilenet import PAPER_BLOCKS
from train.models.profile import count_macs, count_params, separable_ratio

from .conftest import run_cli


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("classes", [10, 100])
def test_every_model_runs_forward_at_32x32(name, classes):
    model = create_model(name, num_classes=classes).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


def test_counts_match_the_architecture_table():
    # the paper's LeNet: 0.06 M params, 0.65 M MACs; the paper's MobileNetV2 1.55 M / 10.2 M
    lenet = create_model("lenet5")
    assert count_params(lenet) == 62006
    assert count_macs(lenet) == 651720
    paper = create_model("mobilenetv2_paper")
    assert round(count_params(paper) / 1e6, 2) == 1.55
    assert round(count_macs(paper) / 1e6, 1) == 10.2
    assert round(count_macs(create_model("resnet34")) / 1e6) == 1159
    assert round(count_macs(create_model("mobilenetv2_cifar")) / 1e6) == 88


def test_paper_model_follows_the_papers_block_table():
    # the paper's Fig. 9 (t, c, n, s), written out here rather than derived from PAPER_BLOCKS
    paper = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 1, 2), (6, 96, 2, 1), (6, 160, 2, 2), (6, 320, 1, 1)]
    assert [tuple(b) for b in PAPER_BLOCKS] == paper
    model = create_model("mobilenetv2_paper")
    blocks = list(model.features)[1:-1]  # stem, 9 inverted-residual blocks, last 1x1 conv
    assert len(model.features) == 11
    assert [b.out_channels for b in blocks] == [16, 24, 24, 32, 96, 96, 160, 160, 320]
    assert [b.stride for b in blocks] == [1, 2, 1, 2, 1, 1, 2, 1, 1]
    # stem stride 2 and three stride-2 blocks: 32x32 -> 2x2
    assert tuple(model.features(torch.zeros(1, 3, 32, 32)).shape[2:]) == (2, 2)


@pytest.mark.parametrize("name", list_models())
def test_registry_stages_match_the_model(name):
    """The registry's stages (for --freeze until:<stage>) name real modules, in forward order, and with the head
    cover every parameter: a stage list longer or shorter than the model fails here."""
    entry = get_entry(name)
    if not entry.stages:
        pytest.skip("%s has no fixed stages (its block table is a parameter)" % name)
    params = [k for k, _ in create_model(name).named_parameters()]
    first = []
    for stage in entry.stages:
        idx = [i for i, k in enumerate(params) if k.startswith(stage + ".")]
        assert idx, "stage %r of %s has no parameters in the model" % (stage, name)
        first.append(idx[0])
    assert first == sorted(first), "stages of %s are not in forward order" % name
    uncovered = [k for k in params if not any(k.startswith(p + ".") for p in entry.stages + (entry.head,))]
    assert not uncovered, "parameters of %s in no stage: %s" % (name, uncovered[:5])


def test_custom_block_table_and_width():
    m = create_model("mobilenetv2_custom", blocks=[[1, 16, 1, 1], [6, 24, 1, 2]], stem_stride=1, width_mult=0.5)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(EdgeRuntimeError, match=r"blocks\[0\]"):
        create_model("mobilenetv2_custom", blocks=[[1, 16, 1]])


def test_separable_ratio_follows_the_formula():
    r = separable_ratio(create_model("mobilenetv2_cifar"))
    assert r is not None and 0.1 < r["measured"] < 0.15 and abs(r["measured"] - r["formula"]) < 0.02
    assert separable_ratio(create_model("lenet5")) is None


def test_lenet_activation_and_pooling_are_selectable():
    m = create_model("lenet5", activation="relu", pooling="max")
    assert isinstance(m.features[1], torch.nn.ReLU) and isinstance(m.features[2], torch.nn.MaxPool2d)
    with pytest.raises(EdgeRuntimeError, match="activation"):
        create_model("lenet5", activation="swish")


def test_registry_fails_clearly():
    with pytest.raises(EdgeRuntimeError, match="known models: .*lenet5"):
        get_entry("vgg16")
    with pytest.raises(ValueError, match="already registered"):
        register(ModelEntry(name="lenet5", builder=lambda **k: None, description="", head="fc"))
    with pytest.raises(EdgeRuntimeError, match="does not take"):
        create_model("resnet34", width=2)


def test_models_cli_prints_a_table(capsys):
    rc, out, err = run_cli(["models", "lenet5", "mobilenetv2_paper"], capsys)
    assert rc == 0, err
    assert "| lenet5 | 0.06 M | 0.7 M |" in out and "mobilenetv2_paper" in out
    rc, out, err = run_cli(["models", "nope"], capsys)
    assert rc == 2 and "unknown model 'nope'" in err and len(err.strip().splitlines()) == 1
