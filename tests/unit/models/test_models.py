"""Every registered model: forward shapes, summaries, registry errors, determinism."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sightline.errors import ModelError
from sightline.models import create_model, default_model, list_models, summary

NAMES = [e.name for e in list_models()]


def test_registry_has_the_issue_models():
    assert {"mlp", "tutorial-cnn", "fastcnn"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape, classes", [((1, 28, 28), 10), ((3, 32, 32), 3), ((3, 64, 64), 5)])
def test_forward_and_backward_shapes(name, shape, classes):
    torch.manual_seed(0)
    model = create_model(name, shape, classes)
    x = torch.randn(4, *shape)
    out = model(x)
    assert out.shape == (4, classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_default_model_follows_the_data():
    class Data:  # a Dataset's name is what counts
        name = "fashion-mnist"

    assert default_model("fashion-mnist") == default_model(Data()) == "airnet"
    assert (
        default_model("FMNIST") == default_model("fashion_mnist") == "airnet"
    )  # as load_dataset takes them

    class Folder(Data):  # a user's folder that happens to be named like a built-in
        load_options = {"name_or_path": "/photos/fashion-mnist"}

    assert default_model(Folder()) == "fastcnn"
    assert (
        default_model("mnist")
        == default_model("cifar10")
        == default_model("./my_photos")
        == "fastcnn"
    )
    assert default_model(None) == default_model() == "fastcnn"


def test_tutorial_cnn_refuses_tiny_inputs():
    with pytest.raises(ModelError, match="too small.*at least 22x22"):
        create_model("tutorial-cnn", (1, 21, 40), 10)
    assert create_model("tutorial-cnn", (1, 22, 22), 10)(torch.randn(2, 1, 22, 22)).shape == (2, 10)


def test_summary_matches_keras_counts():
    s = summary(create_model("mlp", (1, 28, 28), 10))
    assert (s.total, s.trainable, s.non_trainable) == (101_770, 101_770, 0)
    s = summary(create_model("tutorial-cnn", (3, 32, 32), 3))
    assert (s.total, s.trainable, s.non_trainable) == (289_443, 288_995, 448)
    rows = {r.name: r for r in s.layers}
    assert (
        rows["block1.conv1"].output_shape == (None, 32, 32, 32)
        and rows["block1.conv1"].params == 896
    )
    assert rows["block3.pool"].output_shape == (None, 128, 2, 2)
    assert rows["classifier"].params == 1539
    text = str(s)
    assert "Total params: 289,443" in text and "Non-trainable params: 448" in text


@pytest.mark.parametrize("name", NAMES)
def test_summary_totals_equal_parameter_count(name):
    model = create_model(name, (1, 28, 28), 10)
    s = summary(model)
    bn_stats = sum(
        b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    assert s.total == sum(p.numel() for p in model.parameters()) + bn_stats
    assert s.to_dict()["total"] == s.total


def test_unknown_model_lists_valid_names():
    with pytest.raises(ModelError) as e:
        create_model("resnet9000", (1, 28, 28), 10)
    assert "mlp" in str(e.value) and "fastcnn" in str(e.value)


def test_unknown_option_lists_valid_options():
    with pytest.raises(ModelError, match="hidden"):
        create_model("mlp", (1, 28, 28), 10, width=3)


def test_bad_option_value_is_model_error():
    with pytest.raises(ModelError):
        create_model("mlp", (1, 28, 28), 10, hidden=0)


def test_config_is_recorded_and_rebuilds_identically():
    torch.manual_seed(1)
    a = create_model("fastcnn", (3, 32, 32), 4, width=16)
    assert a.sightline_config == {
        "name": "fastcnn",
        "input_shape": [3, 32, 32],
        "num_classes": 4,
        "options": {"width": 16, "depth": 0, "stages": 4, "pool_first": False},
    }
    torch.manual_seed(1)
    b = create_model("fastcnn", (3, 32, 32), 4, width=16)
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_mlp_hidden_list_and_dropout():
    m = create_model("mlp", (1, 8, 8), 3, hidden=[32, 16], dropout=0.2)
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert sum(p.numel() for p in m.parameters()) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3


def test_tutorial_cnn_on_fashion_mnist_shape():
    s = summary(create_model("tutorial-cnn", (1, 28, 28), 10))
    rows = {r.name: r for r in s.layers}
    # 28 -> conv valid 26 -> pool 13 -> 11 -> 5 -> 3 -> 1
    assert rows["block3.pool"].output_shape == (None, 128, 1, 1)
    assert rows["classifier"].params == 128 * 10 + 10


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 16, 16), (3, 96, 80)])
def test_fastcnn_any_size_via_global_pooling(shape):
    model = create_model("fastcnn", shape, 7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_fastcnn_refuses_inputs_smaller_than_its_poolings():
    with pytest.raises(ModelError, match="too small for 4 stages"):
        create_model("fastcnn", (1, 7, 7), 10)
    assert create_model("fastcnn", (1, 7, 7), 10, stages=3)(torch.randn(2, 1, 7, 7)).shape == (
        2,
        10,
    )


def test_fastcnn_width_and_depth_scale_the_model():
    def count(**opts):
        return sum(p.numel() for p in create_model("fastcnn", (1, 28, 28), 10, **opts).parameters())

    assert count() == 390_890
    assert count(width=16) < count() < count(width=48)
    assert count(depth=1) > count()
    names = {n for n, _ in create_model("fastcnn", (1, 28, 28), 10, depth=2).named_modules()}
    assert {"stage1.res1.body.conv", "stage4.res2.body.bn"} <= names


def test_fastcnn_pool_first_normalises_the_pooled_map_with_the_same_parameters():
    torch.manual_seed(0)
    plain = create_model("fastcnn", (1, 28, 28), 10, width=8)
    pooled = create_model("fastcnn", (1, 28, 28), 10, width=8, pool_first=True)
    assert plain.state_dict().keys() == pooled.state_dict().keys()  # a pool has no parameters
    for bn in plain.modules():  # random statistics, positive scales
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 2)
            bn.bias.data.uniform_(-1, 1)
    pooled.load_state_dict(plain.state_dict())
    x = torch.randn(4, 1, 28, 28)
    # With a positive scale, BatchNorm and ReLU are increasing per channel, so they commute with a
    # max pool: in eval mode both orders compute the same function.
    torch.testing.assert_close(pooled.eval()(x), plain.eval()(x))
    s = summary(pooled, (1, 28, 28))
    rows = {r.name: r for r in s.layers}
    assert rows["stage1.conv.bn"].output_shape == (None, 8, 14, 14)  # normalised after the pool
    assert (
        "stage1.pool" not in rows and "stage4.conv.pool" not in rows
    )  # the last stage never pools
    deep = create_model("fastcnn", (1, 28, 28), 10, width=8, depth=1, pool_first=True)
    assert deep(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    deep_rows = {r.name: r for r in summary(deep, (1, 28, 28)).layers}
    assert deep_rows["stage1.res1.body.conv"].output_shape == (
        None,
        8,
        14,
        14,
    )  # runs on the pooled map


def test_fastcnn_pool_first_must_be_a_boolean():
    with pytest.raises(ModelError, match="pool_first must be true or false, not 'yes'"):
        create_model("fastcnn", (1, 28, 28), 10, pool_first="yes")
    # Every switch of every model, by the same check in create_model (pretrained would download).
    with pytest.raises(ModelError, match="pretrained must be true or false, not 'maybe'"):
        create_model("efficientnet-lite0", (3, 32, 32), 10, pretrained="maybe")


@pytest.mark.parametrize("name", NAMES)
def test_summary_names_are_the_leaf_module_names(name):
    model = create_model(name, (3, 32, 32), 5)
    s = summary(model)
    leaves = [n for n, m in model.named_modules() if n and not list(m.children())]
    assert [r.name for r in s.layers] == leaves
    modules = dict(model.named_modules())
    assert all(r.type == type(modules[r.name]).__name__ for r in s.layers)
    assert s.layers[-1].output_shape == (None, 5)
    # shapes are channel-first, and the header says so
    assert "(batch, channels, height, width)" in str(s)


def test_summary_leaves_the_model_as_it_was():
    model = create_model("tutorial-cnn", (3, 32, 32), 3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary(model)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched


def test_summary_to_dict_is_json():
    s = summary(create_model("mlp", (1, 28, 28), 10))
    d = json.loads(json.dumps(s.to_dict()))
    assert d["total"] == 101_770 and d["non_trainable"] == 0
    assert [row["name"] for row in d["layers"]] == ["flatten", "dense1", "relu1", "classifier"]
    assert d["layers"][1] == {
        "name": "dense1",
        "type": "Linear",
        "output_shape": [None, 128],
        "params": 100_480,
        "trainable": 100_480,
    }


def test_summary_counts_frozen_parameters_as_non_trainable():
    model = create_model("mlp", (1, 28, 28), 10)
    model.dense1.requires_grad_(False)
    s = summary(model)
    assert (s.total, s.trainable, s.non_trainable) == (101_770, 1_290, 100_480)


def test_summary_of_a_plain_module_needs_a_shape_that_fits():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(ModelError, match="input_shape"):
        summary(model)
    assert summary(model, (3, 2, 2)).total == 26
    with pytest.raises(ModelError, match="does not accept"):
        summary(model, (3, 4, 4))


@pytest.mark.parametrize("name", NAMES)
def test_eval_forward_is_deterministic(name):
    torch.manual_seed(3)
    model = create_model(name, (1, 28, 28), 10).eval()
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
