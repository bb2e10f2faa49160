"""The last step of preparing framed images, for a batch at once: MNIST-style polarity and
contrast (``match_dark_backgrounds``) and a digit's centre of mass (``centre_of_mass_shifts``,
``shift_each``).

One image at a time these were ~20 small torch and numpy calls each, 0.43 of the 0.59 ms that
preparing a 28 px MNIST upload took (2 cores, AMD EPYC); over a batch they are the same calls
once. The arithmetic is the one-image arithmetic, element for element (the same float32 and
float64 steps, the same rounding), so a batch gives exactly the images one at a time gives.
"""

from __future__ import annotations

import numpy as np
import torch

from sightline.data.framing import DIGIT_CENTRE


# ----------------------------------------------------------------- polarity and contrast
def border_levels(x: torch.Tensor) -> np.ndarray:
    """Median brightness of each image's outermost pixels (N,) float64: its background."""
    gray = x.float().mean(1)
    border = torch.cat([gray[:, 0], gray[:, -1], gray[:, :, 0], gray[:, :, -1]], 1)
    return border.median(1).values.double().numpy()


def match_dark_backgrounds(
    x: torch.Tensor, backgrounds: np.ndarray | None = None, stretch: bool = True
) -> torch.Tensor:
    """Make prepared uint8 images (N, C, H, W) look like MNIST-style data: object bright on
    black. Per image: a light background is inverted first; then the background level
    (``backgrounds`` (N,), else ``border_levels``) is subtracted and the object stretched, to
    full range by its 99th percentile (``stretch``), else just so that black stays black,
    because a photo's "black" after inversion is a grey table where the training data's
    background is exactly 0. Clean data (background under 8) and flat images stay as they are.
    The per-image numbers are numpy's float64 (a torch call costs ~5 µs even on one value)."""
    if len(x) == 0:
        return x
    bg = border_levels(x) if backgrounds is None else np.asarray(backgrounds, dtype=np.float64)
    gray = x.float().mean(1) if stretch else None  # brightness, for the 99th percentile
    light = bg > 127
    if light.all():
        x, bg = 255 - x, 255 - bg
        gray = None if gray is None else 255 - gray
    elif light.any():
        pick = torch.from_numpy(light)
        x = torch.where(pick[:, None, None, None], 255 - x, x)
        gray = None if gray is None else torch.where(pick[:, None, None], 255 - gray, gray)
        bg = np.where(light, 255 - bg, bg)
    if gray is not None:
        peak = torch.quantile(gray.flatten(1), 0.99, dim=1).double().numpy()
    else:
        peak = np.full_like(bg, 255.0)
    change = (bg >= 8) & (peak - bg >= 32)
    if not change.any():
        return x
    # float64 for the scale, then float32 as a Python number meets a float32 tensor
    scale = torch.from_numpy((255.0 / np.where(change, peak - bg, 1.0)).astype(np.float32))
    level = torch.from_numpy(bg.astype(np.float32))
    y = (x.float() - level[:, None, None, None]).clamp(min=0) * scale[:, None, None, None]
    y = y.round().clamp(0, 255).to(torch.uint8)
    if change.all():
        return y
    return torch.where(torch.from_numpy(change)[:, None, None, None], y, x)


# ----------------------------------------------------------------- a digit's centre of mass
def centre_of_mass_shifts(
    ink: np.ndarray, centre: float = DIGIT_CENTRE
) -> tuple[np.ndarray, np.ndarray]:
    """Whole-pixel (dy, dx) (N,) ints that move the centre of mass of each ``ink`` (N, H, W;
    bright = ink) to (centre, centre), scaled to the frame, without pushing ink off it."""
    n, h, w = ink.shape
    total = ink.reshape(n, -1).sum(1).astype(np.float64)
    some = total > 0
    safe = np.where(some, total, 1.0)
    cy = (ink.sum(2) * np.arange(h)).sum(1) / safe
    cx = (ink.sum(1) * np.arange(w)).sum(1) / safe
    dy = np.round(centre * h / 28 - cy).astype(np.int64)
    dx = np.round(centre * w / 28 - cx).astype(np.int64)
    rows, cols = (ink > 0).any(2), (ink > 0).any(1)
    top, bottom = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    left, right = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    dy = np.minimum(np.maximum(dy, -top), h - 1 - bottom)
    dx = np.minimum(np.maximum(dx, -left), w - 1 - right)
    return np.where(some, dy, 0), np.where(some, dx, 0)


def shift_each(x: torch.Tensor, dy: np.ndarray, dx: np.ndarray, fill: np.ndarray) -> torch.Tensor:
    """Translate each image of (N, C, H, W) by its own whole pixels (dy, dx), filling what
    comes in with its ``fill`` (N,). (Slices per moved image: a copy each, a few µs, where one
    gather over the batch cost ~90 µs for a single image.)"""
    moved = np.flatnonzero((dy != 0) | (dx != 0))
    if len(moved) == 0:
        return x
    a = x.numpy()
    out = a.copy()
    h, w = a.shape[2:]
    for i in moved.tolist():
        y, z = int(dy[i]), int(dx[i])
        out[i] = fill[i]
        out[i, :, max(0, y) : h + min(0, y), max(0, z) : w + min(0, z)] = a[
            i, :, max(0, -y) : h - max(0, y), max(0, -z) : w - max(0, z)
        ]
    return torch.from_numpy(out)
