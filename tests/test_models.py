"""Every registered model: forward shapes, summaries, registry errors, determinism."""

from __future__ import annotations

import pytest
import torch

from sightline.errors import ModelError
from sightline.models import create_model, list_models
from sightline.models.summary import summary

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
    assert all(p.grad is not None for p in model.parameters())


def test_tutorial_cnn_refuses_tiny_inputs():
    with pytest.raises(ModelError, match="too small"):
        create_model("tutorial-cnn", (1, 12, 12), 10)


def test_summary_matches_keras_counts():
    s = summary(create_model("mlp", (1, 28, 28), 10))
    assert (s.total, s.trainable, s.non_trainable) == (101_770, 101_770, 0)
    s = summary(create_model("tutorial-cnn", (3, 32, 32), 3))
    assert (s.total, s.trainable, s.non_trainable) == (289_443, 288_995, 448)
    rows = {r.name: r for r in s.layers}
    assert rows["block1.conv1"].output_shape == (None, 32, 32, 32) and rows["block1.conv1"].params == 896
    assert rows["block3.pool"].output_shape == (None, 128, 2, 2)
    assert rows["classifier"].params == 1539
    text = str(s)
    assert "Total params: 289,443" in text and "Non-trainable params: 448" in text


@pytest.mark.parametrize("name", NAMES)
def test_summary_totals_equal_parameter_count(name):
    model = create_model(name, (1, 28, 28), 10)
    s = summary(model)
    bn_stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
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
    assert a.sightline_config == {"name": "fastcnn", "input_shape": [3, 32, 32], "num_classes": 4,
                                  "options": {"width": 16, "depth": 0, "stages": 3}}  # fmt: skip
    torch.manual_seed(1)
    b = create_model("fastcnn", (3, 32, 32), 4, width=16)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_mlp_hidden_list_and_dropout():
    m = create_model("mlp", (1, 8, 8), 3, hidden=[32, 16], dropout=0.2)
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert sum(p.numel() for p in m.parameters()) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3
