"""Batched augmentation on tensors, on whatever device the batch lives.

One gather per batch instead of a Python loop per image: the random shifts for all N images are
drawn at once and applied with advanced indexing. A ``torch.Generator`` drives every random
choice, so a resumed run replays exactly the same augmentations.

``reframe`` trains a model for the photos it will be shown. An outside photo is framed the way
the dataset framed its items (``data.framing``), but never exactly: its box is off by a pixel,
its scale by a few per cent, the object is turned a little, the photo went through other
resampling, contrast and noise than the dataset's pipeline, and grey paper hides the faintest
parts of a light object. A model trained only on the dataset's exact framing changes its mind
on 7 % of Fashion-MNIST photos of its own test items; trained with a share of its images
re-framed this way, on 2-3 %. Measured with fastcnn, 4 epochs, Fashion-MNIST, 500 photos of test
items from tests/photo_generator.py (two photo seeds; benchmarks/photos.py):

    reframe              photo agreement    test accuracy
    0 (before)           92.4 %             92.8 %
    0.3                  96.2 / 95.2 %      92.2 %
    0.5 (the default)    97.8 / 96.8 %      91.9 %

Without the darker-paper cut, 0.3 reached 95.0 / 94.6 %; 3 epochs instead of 4 cost both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sightline.devices import to_device

# ---------------------------------------------------------------- reframing (see the docstring)
REFRAME_SHARE = 0.5  # share of the images re-framed, for data whose photos are framed (fit)
REFRAME_DEGREES = 8.0  # rotation up to ± this, as a hand-held photo is turned
REFRAME_SCALE = 0.08  # scale up to ± this share: a framing box a pixel or two off at 28 px
REFRAME_SHIFT = 1.0  # shift up to ± this many pixels, in fractions of a pixel (resampling blur)
REFRAME_DEGRADE = (
    2 / 3
)  # this times ``reframe``: share of images (drawn apart) degraded as a photo is:
REFRAME_MIN_RES = (
    0.55  # ... a resolution round trip down to this share of the side (a small photo),
)
REFRAME_CONTRAST = 0.12  # ... contrast ± this share,
REFRAME_OFFSET = 0.1  # ... brightness ± this (normalised units: ~std of the data),
REFRAME_CUT = 0.2  # ... the faintest share of the range lost to a paper darker than white,
REFRAME_NOISE = 0.15  # ... and Gaussian noise of up to this std (JPEG and sensor noise)


@dataclass(frozen=True)
class Augment:
    """Random translation by up to ``translate`` pixels (reflect-padded crop), if ``flip``,
    horizontal flips with probability 1/2, and ``reframe``: that share of the images turned,
    scaled and shifted a little as an outside photo's framing would (see the module's
    docstring). ``Augment()`` with defaults changes nothing."""

    translate: int = 0
    flip: bool = False
    reframe: float = 0.0
    policy: str = "none"  # TrivialAugment or RandAugment, on pixels (``pixels``: data/policies.py)

    @classmethod
    def from_config(cls, cfg: Any, dataset_flip: bool) -> Augment:
        """The augmentation a training config asks for (``TrainConfig``: its fields of the same
        names; ``flip`` None is the dataset's default). A new augmentation is a field here and
        its option in plan/config.py: the trainer builds it through this."""
        return cls(cfg.translate, cfg.flips(dataset_flip), cfg.reframe or 0.0, cfg.augment)

    @property
    def active(self) -> bool:
        return self.translate > 0 or self.flip or self.reframe > 0 or self.policy != "none"

    def pixels(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The policy's part, on a batch of pixels (uint8, or float 0..255) before it is
        normalised: float 0..255 (``x`` itself where there is no policy)."""
        if self.policy == "none":
            return x
        from sightline.data.policies import apply_policy

        return apply_policy(x.float(), self.policy, generator)

    def __call__(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        flip_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Augment a float batch (N, C, H, W); returns a new tensor. ``flip_mask`` (N,) bool, if
        given, says which images to mirror instead of a coin per image (``alternating_flips``)."""
        if self.flip:
            x = random_flip(x, generator) if flip_mask is None else flip(x, flip_mask)
        if self.translate > 0:
            x = random_translate(x, self.translate, generator)
        if self.reframe > 0:
            x = random_reframe(x, self.reframe, generator)
        return x


def default_reframe(fit: str) -> float:
    """The share of images to re-frame for data whose outside photos are framed as ``fit``:
    objects and digits are cut out of a photo and re-framed; a whole "frame" is not."""
    return REFRAME_SHARE if fit in ("object", "digit") else 0.0


def _rand(
    shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None, high: int
) -> torch.Tensor:
    # Draw on the generator's device, then move (without a wait: devices.to_device): a CPU
    # generator can drive a GPU batch.
    dev = generator.device if generator is not None else x.device
    return to_device(torch.randint(0, high, shape, generator=generator, device=dev), x.device)


def _uniform(
    shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    dev = generator.device if generator is not None else x.device
    return to_device(torch.rand(shape, generator=generator, device=dev), x.device)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return flip(x, _rand((x.shape[0],), x, generator, 2).bool())


def flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The images of ``x`` where ``mask`` (N,) is true, mirrored left to right."""
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def alternating_flips(n: int, seed: int) -> torch.Tensor:
    """airbench's alternating flip: image i is mirrored in even epochs where this (n,) bool
    tensor is true, and in odd epochs where it is false (``mask ^ (epoch % 2 == 1)``). Over any two
    epochs every image is seen both ways, where a coin per epoch shows half of them only one
    way; airbench94 reaches its accuracy in fewer epochs with it. Drawn from ``seed`` alone, so a
    resumed run (and every rank under torchrun) gets the same."""
    return torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(seed + 0x5EED)).bool()


def random_translate(
    x: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by an independent random (dy, dx) in [-pad, pad], reflect-padded."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect" if pad < min(h, w) else "replicate")
    offsets = _rand((n, 2), x, generator, 2 * pad + 1)
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # padded[b, :, rows[b, i], cols[b, j]] for every (b, i, j) → (N, H, W, C)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, h, w), align_corners=False)`` as one batched matmul: the
    same sampling points, ~30x faster on a CPU for 28x28 images (3.5 ms → 0.1 ms a batch)."""
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1
    base = torch.stack(
        [
            xs.repeat(h),
            ys.repeat_interleave(w),
            torch.ones(h * w, dtype=theta.dtype, device=theta.device),
        ],
        1,
    )
    return torch.matmul(base, theta.transpose(1, 2)).view(-1, h, w, 2)


def random_reframe(
    x: torch.Tensor, share: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Re-frame ``share`` of the images as an outside photo would be (module docstring): one
    batched affine resampling (rotation, scale, sub-pixel shift); and, drawn apart, for
    ``REFRAME_DEGRADE * share`` of them a resolution round trip, contrast, brightness and
    noise. The background (the border's value) is extended, not padded with zeros."""
    n, c, h, w = x.shape
    # Which images, and the batch's resolution, are decided on the generator's device (the CPU
    # in training): no GPU→CPU wait in a step. The per-image amounts then go to the batch.
    dev = generator.device if generator is not None else x.device
    draws = torch.rand((n, 7), generator=generator, device=dev)
    chosen = to_device(torch.nonzero(draws[:, 4] < share).squeeze(1), x.device)
    degraded = to_device(torch.nonzero(draws[:, 6] < share * REFRAME_DEGRADE).squeeze(1), x.device)
    side = min(h, w) * (REFRAME_MIN_RES + (1 - REFRAME_MIN_RES) * float(draws[0, 5]))
    u = to_device(draws, x.device)
    angle = (u[:, 0] * 2 - 1) * math.radians(REFRAME_DEGREES)
    scale = 1 + (u[:, 1] * 2 - 1) * REFRAME_SCALE
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid works in [-1, 1] coordinates: one pixel is 2 / side.
    tx, ty = (u[:, 2] * 2 - 1) * REFRAME_SHIFT * 2 / w, (u[:, 3] * 2 - 1) * REFRAME_SHIFT * 2 / h
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    # Only the chosen images are resampled (index, compute, put back): half the work at 0.5.
    x = x.clone()
    if len(chosen):
        grid = _affine_grid(theta[chosen].to(x.dtype), h, w)
        x[chosen] = F.grid_sample(
            x[chosen], grid, mode="bilinear", padding_mode="border", align_corners=False
        )
    # The degradation: one resolution per batch (interpolate takes one size), per-image rest.
    v = _uniform((n, 4), x, generator).view(n, 4, 1, 1)
    if not len(degraded):
        return x
    y, v = x[degraded], v[degraded]
    small = F.interpolate(
        y,
        size=(max(2, round(h * side / min(h, w))), max(2, round(w * side / min(h, w)))),
        mode="area",
    )
    y = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    # Paper darker than the white the dataset's products were shot on: the photo's background
    # is subtracted, and with it the faintest parts of a light object (they were as light as
    # the paper); what is left is stretched back. Per image, between its darkest and brightest.
    low, high = y.amin((1, 2, 3), keepdim=True), y.amax((1, 2, 3), keepdim=True)
    cut = v[:, 3:4] * REFRAME_CUT * (high - low)
    y = low + (y - low - cut).clamp(min=0) * ((high - low) / (high - low - cut).clamp(min=1e-6))
    gain = 1 + (v[:, 0:1] * 2 - 1) * REFRAME_CONTRAST
    offset = (v[:, 1:2] * 2 - 1) * REFRAME_OFFSET
    noise = to_device(torch.randn(y.shape, generator=generator, device=dev), x.device) * (
        v[:, 2:3] * REFRAME_NOISE
    )
    x[degraded] = y * gain + offset + noise
    return x
