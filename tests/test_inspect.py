"""Looking inside: layer outputs match the summary, stats, filters, saliency, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from sightline import inspect as insp
from sightline.data.preprocess import Preprocess
from sightline.errors import ModelError
from sightline.models import create_model
from sightline.models.summary import summary

SHAPES = {"mlp": (1, 28, 28), "tutorial-cnn": (3, 32, 32), "fastcnn": (1, 28, 28)}


@pytest.mark.parametrize("name", list(SHAPES))
def test_layer_outputs_match_summary_shapes(name):
    torch.manual_seed(0)
    model = create_model(name, SHAPES[name], 10)
    outputs = insp.layer_outputs(model, torch.randn(*SHAPES[name]))
    rows = {r.name: r.output_shape for r in summary(model).layers if r.output_shape}
    assert set(outputs) == set(rows)
    for layer, out in outputs.items():
        assert tuple(out.shape) == rows[layer][1:], layer


def test_selected_and_unknown_layers():
    model = create_model("fastcnn", (1, 28, 28), 10)
    outs = insp.layer_outputs(model, torch.randn(1, 1, 28, 28), ["stage2.conv.relu", "classifier"])
    assert list(outs) == ["stage2.conv.relu", "classifier"] and outs["classifier"].shape == (10,)
    with pytest.raises(ModelError, match="stage1.conv.conv"):
        insp.layer_outputs(model, torch.randn(1, 28, 28), ["nope"])


def test_stats_zero_fraction_after_relu():
    model = create_model("fastcnn", (1, 28, 28), 10)
    outs = insp.layer_outputs(model, torch.randn(1, 28, 28), ["stage1.conv.relu"])
    t = outs["stage1.conv.relu"]
    stats = insp.activation_stats(outs)["stage1.conv.relu"]
    assert stats["zero_fraction"] == pytest.approx((t == 0).float().mean().item(), abs=1e-6)
    assert 0 < stats["zero_fraction"] < 1 and stats["shape"] == [32, 28, 28]


def test_filter_and_dense_weight_figures():
    cnn = create_model("tutorial-cnn", (3, 32, 32), 3)
    fig = insp.plot_filters(cnn)
    assert len([ax for ax in fig.axes if ax.images]) == 32
    fig = insp.plot_filters(cnn, layer="block2.conv1", max_filters=8)
    assert len([ax for ax in fig.axes if ax.images]) == 8
    with pytest.raises(ModelError):
        insp.plot_filters(create_model("mlp", (1, 28, 28), 10))
    fig = insp.plot_dense_weights(create_model("mlp", (1, 28, 28), 10), (1, 28, 28), max_units=16)
    assert len([ax for ax in fig.axes if ax.images]) == 16


class LeftHalf(nn.Module):
    """Logits from the left half of the image only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x)[:, :, :, : x.shape[-1] // 2].mean(dim=(2, 3))


@pytest.mark.parametrize("method", ["gradient", "gradcam"])
def test_saliency_shape_range_and_locality(method):
    torch.manual_seed(0)
    model = LeftHalf()
    model.train()
    sal = insp.saliency(model, torch.randn(1, 16, 16), method=method)
    assert sal.shape == (16, 16) and sal.min() >= 0 and sal.max() <= 1
    if method == "gradient":
        assert sal[:, 9:].abs().sum() == 0 and sal[:, :8].sum() > 0
    assert model.training  # mode restored


def test_inspect_image_json_ready():
    model = create_model("fastcnn", (1, 28, 28), 3)
    pre = Preprocess(1, (28, 28), dark_background=True)
    img = np.zeros((40, 40), np.uint8)
    img[10:30, 15:25] = 255
    result = insp.inspect_image(model, pre, img, classes=["a", "b", "c"])
    d = json.loads(json.dumps(result.to_dict()))
    assert d["predicted"] in "abc" and abs(sum(d["probabilities"].values()) - 1) < 1e-4
    assert {row["name"] for row in d["layers"]} >= {"stage1.conv.conv", "classifier"}
    assert len(d["saliency"]) == 28
    assert insp.plot_activations(result.outputs, max_channels=4).axes
