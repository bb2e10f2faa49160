"""Catalog-style photos of dataset items, as a user would take them: the test-set image enlarged
onto a light (or dark) background that is not pure white, with a mild gradient, a colour tint,
the object 20–95 % of the frame anywhere in it, a small rotation, sometimes a thin border or a
soft shadow, JPEG or PNG, 28 px to 4000 px. Seeded: photo ``i`` is always the same photo.

Used by the framing tests (tests/unit/data/test_framing.py, tests/integration/test_integration.py). Everything here is
test data: sightline never imports it.
"""

from __future__ import annotations

import concurrent.futures
import io
import multiprocessing
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass
class PhotoStyle:
    side: int  # photo height in px (width varies with the aspect)
    aspect: float  # width / height
    fill: float  # object's longest edge as a fraction of the photo's shorter side
    cx: float  # object centre, as a fraction of the free room (0 = against the left edge)
    cy: float
    angle: float  # degrees
    background: tuple[int, int, int]
    gradient: float  # brightness change across the photo, in levels
    tint: tuple[float, float, float]  # multiplies the object's colour (1, 1, 1 = gray)
    border: int  # px of a thin frame line (0: none)
    shadow: bool
    jpeg: int  # JPEG quality; 0 = PNG
    noise: float  # sensor noise, levels


def random_style(rng: np.random.Generator, light: bool = True) -> PhotoStyle:
    side = int(rng.choice([28, 40, 64, 100, 160, 240, 320, 480, 640, 1024, 1600]))
    if rng.random() < 0.02:
        side = 4000
    level = rng.uniform(200, 250) if light else rng.uniform(5, 60)
    tint_bg = rng.uniform(-12, 12, 3)
    return PhotoStyle(
        side=side,
        aspect=float(rng.choice([1.0, 1.0, 0.75, 4 / 3, 1.5, 2 / 3])),
        fill=float(rng.uniform(0.2, 0.95)),  # raised below where the photo is small
        cx=float(rng.uniform(0, 1)),
        cy=float(rng.uniform(0, 1)),
        angle=float(rng.uniform(-8, 8)),
        background=tuple(int(np.clip(level + t, 0, 255)) for t in tint_bg),
        gradient=float(rng.uniform(-25, 25)),
        tint=tuple(float(v) for v in rng.uniform(0.75, 1.0, 3)),
        border=int(rng.choice([0, 0, 0, 0, 1, 2, 3])) if side >= 64 else 0,
        shadow=bool(rng.random() < 0.25),
        jpeg=int(rng.choice([0, 60, 75, 90, 95])),
        noise=float(rng.uniform(0, 4)),
    )


@dataclass
class Photo:
    data: bytes  # the encoded file
    style: PhotoStyle
    box: tuple[int, int, int, int]  # left, top, right, bottom of the clearly visible object


def make_photo(
    item: np.ndarray, style: PhotoStyle, dark_object_on_light: bool = True, seed: int = 0
) -> Photo:
    """One 28x28 uint8 dataset image (bright object on black) → a photo of it."""
    rng = np.random.default_rng(seed)
    h = style.side
    w = max(28, int(round(h * style.aspect)))
    short = min(h, w)
    # An object never holds less detail than the dataset image (28 px on its longest edge): a
    # 28 px photo is all object, a 40 px photo at least 70 % object.
    fill = min(0.95, max(style.fill, 28 / short))
    # The object: the item at its own aspect (its nonzero box), scaled so its longest edge is
    # `fill` of the photo's short side. Upscaled smoothly, as a camera sees a real object.
    ys, xs = np.nonzero(item > 0)
    if len(ys) == 0:
        ys, xs = np.array([0, 27]), np.array([0, 27])
    crop = item[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = fill * short / max(crop.shape)
    ow, oh = max(2, int(round(crop.shape[1] * scale))), max(2, int(round(crop.shape[0] * scale)))
    alpha = Image.fromarray(crop).resize((ow, oh), Image.Resampling.BICUBIC)
    alpha = alpha.rotate(style.angle, resample=Image.Resampling.BICUBIC, expand=True)
    ow, oh = alpha.size
    if ow > w or oh > h:  # a rotation may not fit: shrink it back in
        alpha.thumbnail((w, h), Image.Resampling.BICUBIC)
        ow, oh = alpha.size
    g = np.asarray(alpha, dtype=np.float32)  # the item's brightness, 0 outside it
    m = np.clip(g / 40.0, 0, 1)[..., None]  # its silhouette, with a soft edge
    # The photo: background with a horizontal+vertical gradient, and the object's "paint".
    # float32 and broadcasting throughout: a 4000 px photo is 72 M values.
    xs_ = np.linspace(0, 0.6, w, dtype=np.float32)[None, :]
    ys_ = np.linspace(0, 0.4, h, dtype=np.float32)[:, None] - np.float32(0.5)
    ramp = xs_ + ys_
    ramp *= np.float32(style.gradient)
    photo = ramp[..., None] + np.asarray(style.background, np.float32)
    x0 = int(round(style.cx * (w - ow)))
    y0 = int(round(style.cy * (h - oh)))
    if style.shadow:
        off = max(1, short // 40)
        sh = Image.fromarray((m[..., 0] * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(max(1, short // 60))
        )
        s = np.asarray(sh, np.float32)[..., None] / 255.0 * 0.18  # a soft, light shadow
        ys0, xs0 = min(h - oh, y0 + off), min(w - ow, x0 + off)
        photo[ys0 : ys0 + oh, xs0 : xs0 + ow] *= 1 - s
    tint = np.array(style.tint, np.float32)
    # Fabric or ink darker than the paper: the dataset image negated (the datasets negate
    # photos to make them), tinted; or a bright object on a dark background as it is.
    paint = (255.0 - g)[..., None] * tint + 8 if dark_object_on_light else g[..., None] * tint
    region = photo[y0 : y0 + oh, x0 : x0 + ow]
    region[:] = region * (1 - m) + paint * m
    vy, vx = np.nonzero(m[..., 0] >= 0.5)  # clearly visible: at least half opaque
    box = (
        (x0 + int(vx.min()), y0 + int(vy.min()), x0 + int(vx.max()) + 1, y0 + int(vy.max()) + 1)
        if len(vy)
        else (x0, y0, x0 + ow, y0 + oh)
    )
    if style.border:
        b, color = style.border, np.array([90, 90, 90], np.float32)
        photo[:b], photo[-b:], photo[:, :b], photo[:, -b:] = color, color, color, color
    # In place: on large photos a fresh 72 M-value temporary per step costs more than the maths.
    noise = rng.standard_normal(photo.shape, dtype=np.float32)
    noise *= np.float32(style.noise)
    photo += noise
    del noise
    np.clip(photo, 0, 255, out=photo)
    np.rint(photo, out=photo)
    img = Image.fromarray(photo.astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if style.jpeg:
        img.save(buf, format="JPEG", quality=style.jpeg)
    else:
        img.save(buf, format="PNG", compress_level=1)  # fast: the size of the file is not the point
    return Photo(buf.getvalue(), style, box)


def _make(args: tuple) -> Photo:
    return make_photo(*args)


def photos(items: np.ndarray, seed: int = 0, light: bool = True) -> list[Photo]:
    """One photo per item (N, 28, 28), each with its own random style. Styles are drawn in
    order from ``seed``; many photos are made by one process per CPU core (the same photos:
    each has its own seed), as a 500-photo set takes a minute in one."""
    rng = np.random.default_rng(seed)
    jobs = [
        (item, random_style(rng, light), light, seed * 100_003 + i) for i, item in enumerate(items)
    ]
    workers = min(os.cpu_count() or 1, len(jobs) // 50)
    if workers < 2:
        return [_make(job) for job in jobs]
    with concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return list(pool.map(_make, jobs, chunksize=16))
