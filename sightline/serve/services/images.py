"""Pictures for the web pages: uint8 tensors and numbers → PNG bytes and data URIs, with PIL.

No matplotlib on the request path: a figure costs tens of milliseconds and a lock (pyplot is
not thread-safe); these are a few numpy operations. Small images are enlarged with
nearest-neighbour, so a 28x28 input shows its real pixels instead of a blur.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # tensors come in, but this module needs no PyTorch of its own
    import torch

# Colour ramps as anchor colours (0..255), interpolated linearly: close to matplotlib's
# "inferno" (saliency heat) and "viridis" (feature maps, as the report's figures draw them).
_INFERNO = np.array(
    [
        (0, 0, 4),
        (40, 11, 84),
        (101, 21, 110),
        (159, 42, 99),
        (212, 72, 66),
        (245, 125, 21),
        (250, 193, 39),
        (252, 255, 164),
    ],
    dtype=np.float32,
)
_VIRIDIS = np.array(
    [
        (68, 1, 84),
        (72, 40, 120),
        (62, 74, 137),
        (49, 104, 142),
        (38, 130, 142),
        (31, 158, 137),
        (53, 183, 121),
        (110, 206, 88),
        (181, 222, 43),
        (253, 231, 37),
    ],
    dtype=np.float32,
)
RAMPS = {"inferno": _INFERNO, "viridis": _VIRIDIS}


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def data_uri(img: Image.Image) -> str:
    """``data:image/png;base64,...``: an image inside the JSON, for an <img src>."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(img)).decode("ascii")


def tensor_image(x: torch.Tensor) -> Image.Image:
    """A uint8 (C, H, W) tensor (1 or 3 channels) → a PIL image (L or RGB)."""
    a = x.detach().cpu().numpy().astype(np.uint8).transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(a[:, :, 0] if a.shape[2] == 1 else a))


def enlarge(img: Image.Image, scale: int) -> Image.Image:
    """``scale`` times larger, every pixel a sharp square."""
    if scale <= 1:
        return img
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def scale_for(size: tuple[int, int] | Sequence[int], min_side: int, max_scale: int = 8) -> int:
    """The whole-number scale that makes the shorter side at least ``min_side`` (≤ max_scale)."""
    return max(1, min(max_scale, math.ceil(min_side / max(1, min(size)))))


def fit_within(img: Image.Image, max_side: int) -> Image.Image:
    """Shrunk (smoothly) so the longer side is at most ``max_side``; small images as they are."""
    if max(img.size) <= max_side:
        return img
    out = img.copy()
    out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def thumbnail(x: torch.Tensor, side: int = 64) -> Image.Image:
    """What the model saw, side ≤ ``side``: small inputs enlarged sharply, large ones shrunk."""
    img = tensor_image(x)
    scale = side // max(img.size)
    return enlarge(img, scale) if scale >= 1 else fit_within(img, side)


def displayable(img: Image.Image) -> Image.Image:
    """Any decoded image as L or RGB (transparency over white, as a viewer shows it)."""
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("I;16", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min(initial=0)), float(a.max(initial=0))
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        return Image.fromarray(a.astype(np.uint8))
    return img.convert("RGB")


def colorize(
    values: np.ndarray, ramp: str = "viridis", nan_color: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """Numbers in 0..1 (H, W) → uint8 RGB (H, W, 3) along a colour ramp; NaN → ``nan_color``."""
    anchors = RAMPS[ramp]
    v = np.asarray(values, dtype=np.float32)
    nan = np.isnan(v)
    pos = np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0) * (len(anchors) - 1)
    lo = np.floor(pos).astype(np.int64).clip(0, len(anchors) - 2)
    frac = (pos - lo)[..., None]
    rgb = anchors[lo] * (1 - frac) + anchors[lo + 1] * frac
    rgb[nan] = nan_color
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def saliency_overlay(
    seen: torch.Tensor, saliency: torch.Tensor, scale: int, alpha: float = 0.55
) -> Image.Image:
    """The heat map (H, W in 0..1) over the image the model saw (uint8 C, H, W), both enlarged
    ``scale`` times: the image's pixels stay sharp, the heat is interpolated smoothly."""
    base = enlarge(tensor_image(seen), scale).convert("RGB")
    heat = Image.fromarray(saliency.detach().float().cpu().numpy().astype(np.float32), mode="F")
    heat = heat.resize(base.size, Image.Resampling.BILINEAR)
    colored = colorize(np.asarray(heat), "inferno")
    a = np.asarray(base, dtype=np.float32) * (1 - alpha) + colored.astype(np.float32) * alpha
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def mosaic_image(mosaic: np.ndarray, map_side: int, target_cell: int = 48) -> Image.Image:
    """A feature-map mosaic (``sightline.inspect.map_mosaic``: 0..1, NaN gaps) in colour, each
    map about ``target_cell`` pixels: small maps enlarged sharply, large ones (a 224-px
    network's first layers) shrunk, so 32 maps stay a few tens of kilobytes."""
    img = Image.fromarray(colorize(mosaic, "viridis"))
    if map_side > target_cell:
        f = target_cell / map_side
        return img.resize(
            (max(1, round(img.width * f)), max(1, round(img.height * f))), Image.Resampling.BILINEAR
        )
    return enlarge(img, max(1, min(16, target_cell // max(1, map_side))))


def bar_strip(values: torch.Tensor, height: int = 48, max_width: int = 768) -> Image.Image:
    """A vector as bars (blue above zero, red below) on white: the shape of a flat layer's
    output at a glance. Long vectors get 1-px bars, binned by their largest magnitude past
    ``max_width``."""
    v = values.detach().float().flatten().cpu().numpy()
    v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    if len(v) > max_width:  # bin: keep each bin's value of largest magnitude
        edges = np.linspace(0, len(v), max_width + 1).astype(np.int64)
        v = np.array([b[np.argmax(np.abs(b))] for b in np.split(v, edges[1:-1])])
    bar = max(1, min(12, max_width // max(1, len(v))))
    top, bottom = max(float(v.max(initial=0)), 0.0), min(float(v.min(initial=0)), 0.0)
    span = (top - bottom) or 1.0
    zero = int(round(top / span * (height - 1)))  # row of the zero line
    img = np.full((height, len(v) * bar, 3), 255, dtype=np.uint8)
    for i, x in enumerate(v):
        h = int(round(abs(x) / span * (height - 1)))
        rows = slice(zero - h, zero + 1) if x >= 0 else slice(zero, zero + h + 1)
        img[rows, i * bar : i * bar + max(1, bar - (bar > 2))] = (
            (76, 114, 176) if x >= 0 else (196, 78, 82)
        )
    img[zero, :] = (68, 68, 68)
    return Image.fromarray(img)


def image_row(images: Sequence[Image.Image], cell: int, gap: int = 2) -> Image.Image:
    """Images side by side, each centred in a ``cell`` x ``cell`` square, on white."""
    n = max(1, len(images))
    row = Image.new("RGB", (n * cell + (n - 1) * gap, cell), (255, 255, 255))
    for i, img in enumerate(images):
        img = img.convert("RGB")
        row.paste(img, (i * (cell + gap) + (cell - img.width) // 2, (cell - img.height) // 2))
    return row
