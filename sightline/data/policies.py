"""Augmentation policies, batched on the device: TrivialAugment and RandAugment.

TrivialAugment (Müller & Hutter, 2021, "TrivialAugment: Tuning-free Yet State-of-the-Art Data
Augmentation") gives each image one operation, chosen uniformly, at a magnitude drawn uniformly:
no hyperparameter to tune, and as good as the searched policies. RandAugment (Cubuk et al.,
2020) applies ``RANDAUGMENT_OPS`` operations to each image at one fixed magnitude. Both use the
same operations: the colour ones of PIL's ImageOps/ImageEnhance (brightness, contrast, colour,
sharpness, posterize, solarize, autocontrast, equalize) and the geometric ones (rotate, shear,
translate), the latter as one affine resampling for the whole batch.

Why batched: torchvision's versions take one image at a time in Python; here every choice for a
batch is drawn at once from the trainer's ``torch.Generator`` (a resumed run replays the same
augmentations) and each operation runs once over the images that drew it, on the batch's device.
The images are float 0..255 (before normalisation: the colour operations need pixel values).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sightline.data.image_options import AUGMENT_POLICIES as POLICIES
from sightline.devices import to_device

RANDAUGMENT_OPS = 2  # operations an image gets under RandAugment (the paper's N)
RANDAUGMENT_MAGNITUDE = 9 / 30  # its M = 9 of 30: the value timm and torchvision default to
# The largest change each operation makes (at magnitude 1), TrivialAugment-Wide's ranges where
# they suit small images too (its ±135° turn does not: a 28 px digit upside down is another one).
MAX_ENHANCE = 0.9  # brightness, contrast, colour, sharpness: factor 1 ± this
MAX_DEGREES = 30.0
MAX_SHEAR = 0.3
MAX_TRANSLATE = 0.3  # share of the side
MIN_BITS = 4  # posterize keeps 8 down to this many bits
LUMA = (0.299, 0.587, 0.114)  # PIL's grayscale weights


def _luma(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: ``b + (a - b) * factor`` (factor 0 gives b, 1 gives a)."""
    return b + (a - b) * factor


def brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return x * f


def contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _luma(x).mean((1, 2, 3), keepdim=True), f)


def color(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, _luma(x), f)


def sharpness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with PIL's SMOOTH filter (the border pixels stay as they are, as in PIL)."""
    c = x.shape[1]
    kernel = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]], device=x.device, dtype=x.dtype)
    smooth = F.conv2d(x, (kernel / 13).expand(c, 1, 3, 3), padding=1, groups=c)
    inner = torch.zeros_like(x[:1, :1])
    inner[..., 1:-1, 1:-1] = 1
    smooth = smooth * inner + x * (1 - inner)
    return _blend(x, smooth, f)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    step = torch.pow(2.0, 8 - bits)
    return torch.floor(x / step) * step


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= threshold, 255 - x, x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    low, high = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    scale = torch.where(high > low, 255 / (high - low).clamp(min=1e-6), torch.ones_like(high))
    return torch.where(high > low, (x - low) * scale, x)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize per image and channel: each level mapped through the cumulative
    histogram, all channels of all images in one scatter and one gather."""
    n, c, h, w = x.shape
    q = x.round().clamp(0, 255).long().view(n * c, h * w)
    hist = torch.zeros((n * c, 256), device=x.device, dtype=x.dtype)
    hist.scatter_add_(1, q, torch.ones_like(q, dtype=x.dtype))
    # PIL: step = (pixels - count of the last used level) // 255; a flat channel is unchanged.
    last = hist.gather(1, (q.amax(1, keepdim=True)))
    step = torch.floor((h * w - last) / 255)
    lut = torch.floor((torch.cumsum(hist, 1) - hist + torch.floor(step / 2)) / step.clamp(min=1))
    out = lut.clamp(0, 255).gather(1, q).view(n, c, h, w)
    return torch.where((step > 0).view(n, c, 1, 1), out, x)


def _geometric(x: torch.Tensor, kind: str, amount: torch.Tensor) -> torch.Tensor:
    """Rotate, shear or translate each image by its ``amount`` (signed, at full scale), one
    affine resampling; the border's pixels extend into the uncovered part."""
    n = x.shape[0]
    zero, one = torch.zeros_like(amount), torch.ones_like(amount)
    if kind == "rotate":
        a = amount * math.radians(MAX_DEGREES)
        rows = [[torch.cos(a), -torch.sin(a), zero], [torch.sin(a), torch.cos(a), zero]]
    elif kind == "shear_x":
        rows = [[one, amount * MAX_SHEAR, zero], [zero, one, zero]]
    elif kind == "shear_y":
        rows = [[one, zero, zero], [amount * MAX_SHEAR, one, zero]]
    elif kind == "translate_x":  # affine_grid's coordinates span 2 per side
        rows = [[one, zero, amount * MAX_TRANSLATE * 2], [zero, one, zero]]
    else:
        rows = [[one, zero, zero], [zero, one, amount * MAX_TRANSLATE * 2]]
    theta = torch.stack([torch.stack(r, 1) for r in rows], 1).to(x.dtype)
    grid = F.affine_grid(theta, [n, *x.shape[1:]], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


Op = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# Each: (images, magnitude in [0, 1], a sign ±1) → images.
OPS: dict[str, Op] = {
    "identity": lambda x, m, s: x,
    "brightness": lambda x, m, s: brightness(x, 1 + s * m * MAX_ENHANCE),
    "contrast": lambda x, m, s: contrast(x, 1 + s * m * MAX_ENHANCE),
    "color": lambda x, m, s: color(x, 1 + s * m * MAX_ENHANCE),
    "sharpness": lambda x, m, s: sharpness(x, 1 + s * m * MAX_ENHANCE),
    "posterize": lambda x, m, s: posterize(x, 8 - torch.round(m * (8 - MIN_BITS))),
    "solarize": lambda x, m, s: solarize(x, 255 * (1 - m)),
    "autocontrast": lambda x, m, s: autocontrast(x),
    "equalize": lambda x, m, s: equalize(x),
    **{
        k: (lambda kind: lambda x, m, s: _geometric(x, kind, (s * m).view(-1)))(k)
        for k in ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
    },
}


def apply_policy(
    x: torch.Tensor, policy: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Images ``x`` (N, C, H, W) float 0..255 augmented by ``policy`` ("trivial",
    "randaugment"; "none" returns ``x``), clamped to 0..255."""
    if policy == "none" or not len(x):
        return x
    if policy not in POLICIES:
        raise ValueError(f"unknown augmentation policy {policy!r}: use {', '.join(POLICIES)}")
    rounds = 1 if policy == "trivial" else RANDAUGMENT_OPS
    n, names = x.shape[0], list(OPS)
    dev = generator.device if generator is not None else x.device
    for _ in range(rounds):
        # All of a round's choices at once, on the generator's device, then to the batch's.
        choice = torch.randint(0, len(names), (n,), generator=generator, device=dev)
        draws = torch.rand((n, 2), generator=generator, device=dev)
        choice, draws = to_device(choice, x.device), to_device(draws, x.device)
        magnitude = (
            draws[:, 0]
            if policy == "trivial"
            else torch.full_like(draws[:, 0], RANDAUGMENT_MAGNITUDE)
        )
        sign = torch.where(draws[:, 1] < 0.5, -1.0, 1.0).to(x.dtype)
        out = x.clone()
        for k, name in enumerate(names[1:], 1):  # identity: nothing to do
            rows = torch.nonzero(choice == k).squeeze(1)
            if len(rows):
                m = magnitude[rows].to(x.dtype).view(-1, 1, 1, 1)
                out[rows] = OPS[name](x[rows], m, sign[rows].view(-1, 1, 1, 1))
        x = out.clamp(0, 255)
    return x
