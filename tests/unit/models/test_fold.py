"""BatchNorm folding (models/fold.py): the same outputs, fewer passes, never a wrong fold."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sightline.infer.batched import inference_copy
from sightline.infer.calibration import Calibrator, calibrator_of, set_calibrator
from sightline.models.fold import fold_batchnorms
from sightline.models.registry import create_model


def _trained_stats(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Non-trivial running statistics and affine parameters, then eval mode."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *shape))
    return model.eval()


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize(
    "name, shape",
    [
        ("fastcnn", (1, 28, 28)),
        ("airnet", (1, 28, 28)),
        ("fastcnn", (3, 32, 32)),
        ("airnet", (3, 32, 32)),
    ],
)
def test_every_batchnorm_after_a_convolution_is_folded_with_the_same_outputs(name, shape):
    model = _trained_stats(create_model(name, input_shape=shape, num_classes=10), shape)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorms(model)
    assert folded is not model
    assert _batchnorms(model) > 0 and _batchnorms(folded) == 0
    x = torch.randn(8, *shape)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)
    after = model.state_dict()  # the model itself is untouched
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_negative_scale_after_a_max_pool_is_left_alone():
    # max(a*x) = a*max(x) only for a > 0: folding across the pool would turn a max into a min
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.Flatten()
    )
    model = _trained_stats(model, (1, 8, 8))
    with torch.no_grad():
        model[2].weight[1] = -1.0
    folded = fold_batchnorms(model)
    assert folded is model  # nothing could be folded
    with torch.no_grad():
        model[2].weight[1] = 1.0
    folded = fold_batchnorms(model)
    assert _batchnorms(folded) == 0
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)


def test_a_convolution_with_two_users_keeps_its_batchnorm():
    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # folding would change the second use of y

    model = _trained_stats(Branches(), (1, 8, 8))
    assert fold_batchnorms(model) is model


def test_a_forward_pass_that_cannot_be_traced_leaves_the_model_as_it_is():
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            if x.sum() > 0:  # control flow on values: torch.fx cannot trace it
                x = -x
            return self.bn(self.conv(x))

    model = _trained_stats(DataDependent(), (1, 8, 8))
    assert fold_batchnorms(model) is model


def test_the_inference_copy_is_folded_and_keeps_the_calibration_and_the_detector():
    shape = (1, 28, 28)
    model = _trained_stats(create_model("fastcnn", input_shape=shape, num_classes=10), shape)
    set_calibrator(model, Calibrator(scale=0.5))
    model.sightline_ood = "detector"
    copy = inference_copy(model)
    assert copy is not model and _batchnorms(copy) == 0
    assert calibrator_of(copy).scale == 0.5 and copy.sightline_ood == "detector"
    x = torch.randn(4, *shape)
    with torch.inference_mode():
        torch.testing.assert_close(copy(x), model(x), rtol=1e-4, atol=1e-5)  # both calibrated
