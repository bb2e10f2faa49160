"""TrivialAugment and RandAugment batched on tensors (data/policies.py): the colour operations
as PIL computes them, every choice from the generator, images kept in range."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from sightline.data.policies import (
    OPS,
    apply_policy,
    autocontrast,
    equalize,
    posterize,
    solarize,
)


def _images(n=6, c=3, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.randint(0, 60, (n, 1, 1, 1), generator=g)
    return (low + torch.randint(0, 150, (n, c, size, size), generator=g)).float()


def _pil(x):
    a = x.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def _back(img):
    a = np.asarray(img, dtype=np.float32)
    return torch.from_numpy(a if a.ndim == 3 else a[..., None]).permute(2, 0, 1)


@pytest.mark.parametrize("c", [1, 3])
def test_the_colour_operations_are_pils(c):
    x = _images(c=c)
    for i in range(len(x)):
        img = _pil(x[i])
        assert torch.equal(equalize(x[i : i + 1])[0], _back(ImageOps.equalize(img)))
        assert torch.equal(
            posterize(x[i : i + 1], torch.tensor(3.0))[0], _back(ImageOps.posterize(img, 3))
        )
        assert torch.equal(
            solarize(x[i : i + 1], torch.tensor(128.0))[0], _back(ImageOps.solarize(img, 128))
        )
        ours = autocontrast(x[i : i + 1])[0]
        assert (ours - _back(ImageOps.autocontrast(img))).abs().max() <= 1.0  # PIL truncates


@pytest.mark.parametrize("policy", ["trivial", "randaugment"])
def test_a_policy_is_the_generators_and_keeps_the_images_in_range(policy):
    x = _images(n=64)
    a = apply_policy(x, policy, torch.Generator().manual_seed(1))
    b = apply_policy(x, policy, torch.Generator().manual_seed(1))
    c = apply_policy(x, policy, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)  # a resumed run replays the same
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 255
    changed = (a - x).flatten(1).abs().amax(1) > 0
    assert 0.5 < changed.float().mean() <= 1.0  # most images changed, some (identity) may not
    assert torch.equal(apply_policy(x, "none"), x)
    with pytest.raises(ValueError, match="unknown augmentation policy"):
        apply_policy(x, "autoaugment")


def test_every_operation_runs_on_gray_and_colour_batches():
    for c in (1, 3):
        x = _images(n=3, c=c)
        m, s = torch.full((3, 1, 1, 1), 0.7), torch.tensor([-1.0, 1.0, 1.0]).view(3, 1, 1, 1)
        for name, op in OPS.items():
            out = op(x, m, s)
            assert out.shape == x.shape and torch.isfinite(out).all(), name
