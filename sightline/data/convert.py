"""Image tensors converted in batches: another channel count, size or resampling (a built-in
dataset prepared for a model's input, a run's images evaluated at its own)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def convert_images(
    images: torch.Tensor,
    channels: int | None,
    size: tuple[int, int] | None,
    resize: str = "squash",
    chunk: int = 2048,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """uint8 (N, C, H, W) → another channel count and/or size, in chunks to bound memory.

    3 → 1 uses PIL's luma weights (0.299, 0.587, 0.114); 1 → 3 repeats the plane. Resizing is
    bilinear with antialiasing (as PIL does it); "crop" centre-crops, "pad" pads with black.
    """
    n, c, h, w = images.shape
    out_c = channels or c
    out_h, out_w = size or (h, w)
    if (out_c, out_h, out_w) == (c, h, w):
        return images
    if images.is_meta:  # an outline (outline.py): the shape alone, there are no pixels
        return torch.empty((n, out_c, out_h, out_w), dtype=torch.uint8, device="meta")
    out = torch.empty((n, out_c, out_h, out_w), dtype=torch.uint8)
    for i in range(0, n, chunk):
        x = images[i : i + chunk].float()
        if out_c == 1 and c == 3:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if (out_h, out_w) != (h, w):
            x = _resize_batch(x, out_h, out_w, resize, interpolation)
        if out_c == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        out[i : i + chunk] = x.round().clamp(0, 255).to(torch.uint8)
    return out


def _resize_batch(
    x: torch.Tensor, out_h: int, out_w: int, mode: str, interpolation: str = "bilinear"
) -> torch.Tensor:
    h, w = x.shape[-2:]
    if mode == "squash":
        return F.interpolate(
            x, size=(out_h, out_w), mode=interpolation, antialias=True, align_corners=False
        )
    scale = max(out_h / h, out_w / w) if mode == "crop" else min(out_h / h, out_w / w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    x = F.interpolate(x, size=(sh, sw), mode=interpolation, antialias=True, align_corners=False)
    if mode == "crop":
        top, left = (sh - out_h) // 2, (sw - out_w) // 2
        return x[:, :, top : top + out_h, left : left + out_w]
    top, left = (out_h - sh) // 2, (out_w - sw) // 2
    return F.pad(x, (left, out_w - sw - left, top, out_h - sh - top))
