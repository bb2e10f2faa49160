"""sightline.models.layers.Dropout: nn.Dropout's distribution and interface, its own CPU mask."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sightline.models import create_model
from sightline.models.layers import Dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_zeroes_a_share_p_and_scales_the_rest(p):
    torch.manual_seed(0)
    x = torch.full((200_000,), 3.0)
    out = Dropout(p).train()(x)
    zeroed = (out == 0).double().mean().item()
    assert abs(zeroed - p) < 0.005  # 200,000 draws: the standard error is ~0.001
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 3.0 / (1 - p)))
    # nn.Dropout's own expectation: the mean survives
    assert abs(out.mean().item() - 3.0) < 0.05


def test_independent_per_element_and_channels_last_shaped():
    torch.manual_seed(1)
    x = torch.ones(64, 16, 8, 8).contiguous(memory_format=torch.channels_last)
    out = Dropout(0.5).train()(x)
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    per_channel = (out == 0).double().mean(dim=(0, 2, 3))  # no channel or position always kept
    assert per_channel.min() > 0.4 and per_channel.max() < 0.6
    per_position = (out == 0).double().mean(dim=(0, 1))
    assert per_position.min() > 0.35 and per_position.max() < 0.65


def test_gradient_flows_through_the_kept_elements_only():
    torch.manual_seed(2)
    x = torch.randn(1000, requires_grad=True)
    out = Dropout(0.25).train()(x)
    out.sum().backward()
    expected = (out != 0).float() / 0.75
    torch.testing.assert_close(x.grad, expected)


def test_eval_p0_p1_and_inplace_behave_as_nn_dropout():
    x = torch.randn(50, 7)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
    y = x.clone()
    torch.manual_seed(3)
    out = Dropout(0.5, inplace=True).train()(y)
    assert out.data_ptr() == y.data_ptr() and (y == 0).any() and (y != 0).any()


def test_keeps_the_input_dtype_under_bf16():
    torch.manual_seed(4)
    x = torch.ones(10_000, dtype=torch.bfloat16)
    out = Dropout(0.5).train()(x)
    assert out.dtype == torch.bfloat16
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert abs((out == 0).float().mean().item() - 0.5) < 0.03


def test_the_global_seed_replays_the_same_mask():
    # a resumed run restores the global generator's state: the masks must come from it
    x = torch.ones(5000)
    torch.manual_seed(5)
    a = Dropout(0.5).train()(x)
    torch.manual_seed(5)
    b = Dropout(0.5).train()(x)
    torch.manual_seed(6)
    c = Dropout(0.5).train()(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name, kw", [("tutorial-cnn", {}), ("mlp", {"dropout": 0.3})])
def test_models_with_dropout_use_it_and_keep_nn_dropout_state(name, kw):
    model = create_model(name, input_shape=(3, 32, 32), num_classes=3, **kw)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(isinstance(m, Dropout) for m in drops)
    assert not any("dropout" in k for k in model.state_dict())  # no new state: old checkpoints load
