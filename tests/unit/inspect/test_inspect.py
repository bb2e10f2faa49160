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
from sightline.infer.batched import batched_logits
from sightline.models import create_model
from sightline.models.summary import summary

SHAPES = {"mlp": (1, 28, 28), "tutorial-cnn": (3, 32, 32), "fastcnn": (1, 28, 28)}


def _model(name, classes=10, seed=0):
    torch.manual_seed(seed)
    return create_model(name, SHAPES[name], classes)


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


# ----------------------------------------------------------------------------- layer outputs
@pytest.mark.parametrize("name", list(SHAPES))
def test_layer_outputs_match_summary_shapes_in_forward_order(name):
    model = _model(name)
    outputs = insp.layer_outputs(model, torch.randn(*SHAPES[name]))
    rows = [(r.name, r.output_shape) for r in summary(model).layers if r.output_shape]
    assert list(outputs) == [n for n, _ in rows]
    for layer, shape in rows:
        assert tuple(outputs[layer].shape) == shape[1:], layer
        assert outputs[layer].device.type == "cpu" and not outputs[layer].requires_grad


@pytest.mark.parametrize("name", list(SHAPES))
def test_unknown_layer_lists_valid_names(name):
    model = _model(name)
    first = insp.leaf_names(model)[0]
    with pytest.raises(ModelError, match="the layers are: .*" + first.replace(".", r"\.")):
        insp.layer_outputs(model, torch.randn(*SHAPES[name]), ["nope"])


def test_selected_layers_keep_given_order_and_blocks_work():
    model = _model("fastcnn")
    outs = insp.layer_outputs(
        model, torch.randn(1, 1, 28, 28), ["classifier", "stage2.conv.relu", "stage2"]
    )
    assert list(outs) == ["classifier", "stage2.conv.relu", "stage2"]
    assert outs["classifier"].shape == (10,) and outs["stage2"].shape == (64, 7, 7)
    with pytest.raises(ModelError, match="did you mean 'stage1.conv.relu'"):
        insp.layer_outputs(model, torch.randn(1, 28, 28), ["stage1.conv.rleu"])


def test_wrong_input_shape_is_a_model_error():
    with pytest.raises(ModelError, match=r"\(1, 1, 28, 28\)"):
        insp.layer_outputs(_model("fastcnn"), torch.randn(3, 32, 32))


def test_conv_output_is_copied_before_inplace_relu():
    # tutorial-cnn's conv1 is followed by ReLU(inplace=True): without a copy the conv output
    # would show no negative values.
    model = _model("tutorial-cnn")
    outs = insp.layer_outputs(model, torch.randn(3, 32, 32), ["block1.conv1", "block1.relu1"])
    assert outs["block1.conv1"].min() < 0
    assert torch.equal(outs["block1.relu1"], outs["block1.conv1"].clamp(min=0))


def test_layer_outputs_restores_train_mode():
    model = _model("tutorial-cnn")
    model.train()
    x = torch.randn(3, 32, 32)
    a = insp.layer_outputs(model, x, ["classifier"])["classifier"]
    b = insp.layer_outputs(model, x, ["classifier"])["classifier"]
    assert model.training and torch.equal(a, b)  # eval mode inside: dropout off, deterministic


# ----------------------------------------------------------------------------- stats
@pytest.mark.parametrize(("name", "layer"), [("fastcnn", "stage1.conv.relu"), ("mlp", "relu1")])
def test_stats_zero_fraction_after_relu(name, layer):
    model = _model(name)
    t = insp.layer_outputs(model, torch.randn(*SHAPES[name]), [layer])[layer]
    stats = insp.activation_stats({layer: t})[layer]
    assert stats["zero_fraction"] == pytest.approx((t == 0).float().mean().item(), abs=1e-6)
    assert 0 < stats["zero_fraction"] < 1 and stats["shape"] == list(t.shape)
    assert stats["min"] == 0 and stats["max"] == pytest.approx(t.max().item(), abs=1e-5)
    assert stats["mean"] == pytest.approx(t.mean().item(), abs=1e-5)
    json.dumps(stats)


def test_stats_json_safe_for_non_finite():
    s = insp.activation_stats({"x": torch.tensor([1.0, float("nan")]), "e": torch.zeros(0)})
    assert s["x"]["mean"] is None and s["e"]["mean"] is None
    json.loads(json.dumps(s), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


# ----------------------------------------------------------------------------- figures
def test_activation_figure_one_block_per_layer_and_class_ticks():
    model = _model("fastcnn", classes=3)
    outs = insp.layer_outputs(
        model, torch.randn(1, 28, 28), ["stage1.conv.relu", "stage3.conv.relu", "classifier"]
    )
    fig = insp.plot_activations(outs, max_channels=8, classes=["cat", "dog", "owl"])
    assert len(fig.axes) == 3 and len(_image_axes(fig)) == 2
    assert "stage1.conv.relu" in fig.axes[0].get_title(loc="left")
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == ["cat", "dog", "owl"]
    assert len(insp.plot_layer("classifier", outs["classifier"]).axes) == 1
    with pytest.raises(ModelError, match="stage2"):
        insp.plot_activations(outs, layers=["stage2"])


def test_map_mosaic_scales_each_map_and_caps_channels():
    from sightline.inspect.plots import map_mosaic

    maps = torch.stack([torch.arange(16.0).view(4, 4) * k for k in (1, 100, 0)] * 4)  # 12 maps
    grid = map_mosaic(maps, max_channels=5, cols=4)  # 2 rows x 4 cols of 4x4, 1-px gaps
    assert grid.shape == (2 * 5 - 1, 4 * 5 - 1)
    assert np.allclose(grid[:4, :4], grid[:4, 5:9])  # x1 and x100: the same picture
    assert grid[:4, :4].min() == 0 and grid[:4, :4].max() == 1
    assert (grid[:4, 10:14] == 0).all()  # a constant (dead) map is drawn dark
    assert np.isnan(grid[4]).all() and np.isnan(grid[5:, 5:]).all()  # gap row; cells 6..8 empty


def test_filter_figures():
    cnn = _model("tutorial-cnn", classes=3)
    fig = insp.plot_filters(cnn)
    axes = _image_axes(fig)
    assert len(axes) == 32 and axes[0].images[0].get_array().shape == (3, 3, 3)  # RGB
    assert len(_image_axes(insp.plot_filters(cnn, layer="block2.conv1", max_filters=8))) == 8
    gray = _image_axes(insp.plot_filters(_model("fastcnn"), max_filters=20))
    assert len(gray) == 20 and gray[0].images[0].get_array().shape == (3, 3)
    with pytest.raises(ModelError, match="conv layers are: block1.conv1"):
        insp.plot_filters(cnn, layer="block1.bn")
    with pytest.raises(ModelError):
        insp.plot_filters(_model("mlp"))


def test_dense_weight_figure():
    mlp = _model("mlp")
    axes = _image_axes(insp.plot_dense_weights(mlp, (1, 28, 28), max_units=16))
    assert len(axes) == 16
    im = axes[3].images[0]
    assert im.get_array().shape == (28, 28)
    lo, hi = im.get_clim()
    assert lo == -hi and hi == pytest.approx(mlp.dense1.weight[3].abs().max().item())
    with pytest.raises(ModelError, match="first dense layer"):
        insp.plot_dense_weights(mlp, (1, 28, 28), layer="classifier")


# ----------------------------------------------------------------------------- saliency
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
    assert sal.shape == (16, 16) and sal.min() >= 0 and sal.max() <= 1 and sal.max() == 1
    if method == "gradient":
        assert sal[:, 9:].abs().sum() == 0 and sal[:, :8].sum() > 0
    assert model.training  # mode restored


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("method", ["gradient", "gradcam"])
def test_saliency_on_models_leaves_model_untouched(name, method):
    model = _model(name)
    model.eval()
    params = list(model.parameters())
    params[0].requires_grad_(False)
    params[-1].grad = torch.ones_like(params[-1])
    sal, used = insp.saliency_with_method(model, torch.randn(*SHAPES[name]), method=method)
    assert sal.shape == SHAPES[name][1:] and sal.min() >= 0 and sal.max() <= 1
    assert used == ("gradient" if name == "mlp" else method)  # the MLP has no conv to CAM
    assert not model.training and not params[0].requires_grad and params[1].requires_grad
    assert params[0].grad is None and torch.equal(params[-1].grad, torch.ones_like(params[-1]))


def test_saliency_follows_target():
    # class 0 looks only at the top-left corner, class 1 only at the bottom-right.
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2, bias=False))
    with torch.no_grad():
        w = torch.zeros(2, 8, 8)
        w[0, :2, :2], w[1, 6:, 6:] = 1.0, -2.0
        model[1].weight.copy_(w.view(2, 64))
    x = torch.randn(1, 8, 8)
    s0, s1 = insp.saliency(model, x, target=0), insp.saliency(model, x, target=1)
    assert s0[:2, :2].min() == 1 and s0[2:].sum() == 0
    assert s1[6:, 6:].min() == 1 and s1[:6].sum() == 0
    with pytest.raises(ModelError, match="0..1"):
        insp.saliency(model, x, target=2)
    with pytest.raises(ModelError, match="gradcam or gradient"):
        insp.saliency(model, x, method="magic")


def test_plot_saliency():
    img = torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8)
    fig = insp.plot_saliency(img, torch.rand(20, 24), title="owl")
    axes = _image_axes(fig)
    assert len(axes) == 2 and axes[0].get_title() == "owl" and len(axes[1].images) == 2


# ----------------------------------------------------------------------------- one image
def test_inspect_image_json_ready():
    model = _model("fastcnn", classes=3)
    model.train()
    pre = Preprocess(1, (28, 28), dark_background=True, flip_tta=True)
    img = np.zeros((40, 40), np.uint8)
    img[10:30, 15:25] = 255
    result = insp.inspect_image(model, pre, img, classes=["a", "b", "c"])
    assert (
        model.training and result.input.dtype == torch.uint8 and result.input.shape == (1, 28, 28)
    )
    # the same probabilities as predict (flip TTA included)
    probs = batched_logits(model, result.input[None], pre).softmax(1)[0]
    assert np.allclose(result.probabilities, probs.tolist(), atol=1e-5)
    d = json.loads(json.dumps(result.to_dict()))
    assert d["predicted"] == "abc"[int(probs.argmax())] == d["classes"][d["predicted_index"]]
    assert abs(sum(d["probabilities"].values()) - 1) < 1e-4
    layers = {row["name"]: row for row in d["layers"]}
    assert set(layers) == set(insp.leaf_names(model))
    assert "values" not in layers["stage1.conv.conv"]  # 32x28x28 numbers: too many to send
    assert np.allclose(
        layers["classifier"]["values"], result.outputs["classifier"].tolist(), atol=1e-5
    )
    assert np.array(layers["stage2.pool"]["values"]).shape == (64, 7, 7)  # 3136 numbers
    assert np.array(d["saliency"]).shape == (28, 28) and d["saliency_method"] == "gradcam"


def test_inspect_image_selected_layers_and_class_count():
    model = _model("mlp", classes=3)
    pre = Preprocess(1, (28, 28))
    img = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    result = insp.inspect_image(model, pre, img, layers=["relu1"])
    assert list(result.outputs) == ["relu1"] and result.classes == ["0", "1", "2"]
    assert result.saliency_method == "gradient"
    with pytest.raises(ModelError, match="2 class names"):
        insp.inspect_image(model, pre, img, classes=["a", "b"])


def test_plot_functions_importable_from_inspect():
    from sightline.inspect import plot_filters
    from sightline.inspect.plots import plot_filters as direct

    assert plot_filters is direct
    with pytest.raises(AttributeError):
        insp.plot_nothing  # noqa: B018
