"""Photos of a dataset's own items in styles a user's photos come in, beyond the catalog style of
``photo_generator``: each changes what the dataset's images never show — the item mirrored
(Fashion-MNIST's shoes all point left), its detail (no sharpening), its exposure, a print on the
fabric, a dark background, a phone's blur, noise and JPEG. "None of these" must still answer
such photos of its own classes (issue 51: catalog photos of clothing 8-9.5 % unknown).

Test data: sightline never imports it. Seeded: photo ``i`` of a style is always the same photo.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import photo_generator
from PIL import Image, ImageFilter

Item = np.ndarray  # (28, 28) uint8, bright object on black


def _mirrored(item: Item, rng: np.random.Generator) -> Item:
    return item[:, ::-1].copy()


def _soft(item: Item, rng: np.random.Generator) -> Item:
    """Less detail: another camera and downscaler than the dataset's (which sharpened)."""
    img = Image.fromarray(item).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.0))))
    return np.asarray(img)


def _exposure(item: Item, rng: np.random.Generator) -> Item:
    """A lighter or darker fabric than the dataset's: a gamma of 0.6-0.8 or 1.3-1.6."""
    gamma = float(rng.choice([rng.uniform(0.6, 0.8), rng.uniform(1.3, 1.6)]))
    x = (item.astype(np.float32) / 255.0) ** gamma * 255.0
    return np.where(item > 0, np.clip(x, 1, 255), 0).astype(np.uint8)


def _printed(item: Item, rng: np.random.Generator) -> Item:
    """Stripes or checks printed on the fabric (about a fifth of the item's brightness)."""
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    period = float(rng.uniform(2.5, 5.0))
    angle = float(rng.uniform(0, np.pi))
    wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    if rng.random() < 0.5:
        wave = wave * np.sin((-xx * np.sin(angle) + yy * np.cos(angle)) * 2 * np.pi / period)
    x = item.astype(np.float32) * (1 - 0.2 * (wave > 0))
    return np.where(item > 0, np.clip(x, 1, 255), 0).astype(np.uint8)


ITEM_CHANGES: dict[str, Callable[[Item, np.random.Generator], Item]] = {
    "mirrored": _mirrored,
    "soft": _soft,
    "exposure": _exposure,
    "printed": _printed,
}
STYLES = ("catalog", *ITEM_CHANGES, "dark background", "phone")


def _phone(data: bytes, rng: np.random.Generator) -> bytes:
    """A phone's shot of the photo: a slight blur, sensor noise, a strong JPEG."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    img = img.filter(ImageFilter.GaussianBlur(max(0.5, min(img.size) / 400)))
    x = np.asarray(img, np.float32) + rng.standard_normal((img.size[1], img.size[0], 3)) * 6
    out = io.BytesIO()
    Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(out, format="JPEG", quality=45)
    return out.getvalue()


def styled_photos(items: np.ndarray, style: str, seed: int = 0) -> list[bytes]:
    """One photo of each item (N, 28, 28) in ``style`` (one of STYLES)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}: one of {', '.join(STYLES)}")
    rng = np.random.default_rng(seed)
    change = ITEM_CHANGES.get(style)
    if change is not None:
        items = np.stack([change(item, rng) for item in items])
    light = style != "dark background"
    photos = [p.data for p in photo_generator.photos(items, seed=seed, light=light)]
    if style == "phone":
        photos = [_phone(p, rng) for p in photos]
    return photos
