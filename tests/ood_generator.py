"""Images of things a run was not trained on, to test and measure its "none of these" answer:
letters, everyday objects (ball, star, house, car, cup, key, clock, tree, umbrella, bulb, fish,
heart) and textures (stripes, checks, dots, grain), drawn bright on black and made into photos
on paper by the photo generator (tests/photo_generator.py: background, gradient, tint,
placement, rotation, JPEG); and noise, uniform and structured, as photos of their own.

Used by tests/integration/test_integration_ood.py and benchmarks/ood.py. Test data only:
sightline never imports it. Seeded: item ``i`` of a kind is always the same image.
"""

from __future__ import annotations

import glob
import io
import math
import string

import numpy as np
from photo_generator import photos
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIDE = 64  # items are drawn 4x larger and reduced: smooth edges, as a camera sees them
BIG = SIDE * 4
LETTERS = string.ascii_uppercase + string.ascii_lowercase
# Letters a reader takes for a digit, as a digit model does: O o D (0), I i l (1), Z z (2),
# S s (5), q (9). "Letters unlike digits" leaves them out.
DIGIT_SHAPED = "OoDIilZzSsq"
UNLIKE_DIGITS = "".join(c for c in LETTERS if c not in DIGIT_SHAPED)
FONT_FILES = sorted(
    f
    for f in glob.glob("/usr/share/fonts/truetype/**/*.ttf", recursive=True)
    if "Math" not in f and "Symbol" not in f
)


def _font(rng: np.random.Generator, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    if FONT_FILES:
        return ImageFont.truetype(FONT_FILES[int(rng.integers(len(FONT_FILES)))], size)
    return ImageFont.load_default(size)  # Pillow's own font: no system fonts installed


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("L", (BIG, BIG), 0)
    return img, ImageDraw.Draw(img)


def _reduce(img: Image.Image) -> np.ndarray:
    return np.asarray(img.resize((SIDE, SIDE), Image.Resampling.LANCZOS), dtype=np.uint8)


# ---------------------------------------------------------------- letters
def letter(rng: np.random.Generator, alphabet: str = LETTERS) -> np.ndarray:
    """One letter of ``alphabet`` in a random font, size and weight, bright on black."""
    img, draw = _canvas()
    char = alphabet[int(rng.integers(len(alphabet)))]
    font = _font(rng, int(rng.uniform(0.55, 0.8) * BIG))
    stroke = int(rng.integers(0, 6))
    draw.text((BIG / 2, BIG / 2), char, fill=255, font=font, anchor="mm", stroke_width=stroke,
              stroke_fill=255)  # fmt: skip
    return _reduce(img)


# ---------------------------------------------------------------- objects
def _shade(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A light from one side: the object's brightness varies across it, as on a photo."""
    a = np.asarray(img, np.float32) / 255
    ys, xs = np.mgrid[0:BIG, 0:BIG].astype(np.float32) / BIG
    angle = rng.uniform(0, 2 * math.pi)
    light = 0.55 + 0.45 * (np.cos(angle) * xs + np.sin(angle) * ys)
    return Image.fromarray((a * np.clip(light, 0.3, 1) * rng.uniform(180, 255)).astype(np.uint8))


def _star(d: ImageDraw.ImageDraw, rng: np.random.Generator, c: float, r: float) -> None:
    points = int(rng.integers(5, 8))
    inner = rng.uniform(0.35, 0.55)
    d.polygon([(c + r * (1 if k % 2 == 0 else inner) * math.cos(math.pi * k / points - math.pi / 2),
                c + r * (1 if k % 2 == 0 else inner) * math.sin(math.pi * k / points - math.pi / 2))
               for k in range(2 * points)], fill=255)  # fmt: skip


def _object(kind: str, d: ImageDraw.ImageDraw, rng: np.random.Generator) -> None:
    c, r = BIG / 2, BIG * rng.uniform(0.3, 0.45)
    u = r / 10  # one unit of the object's own scale
    if kind == "ball":
        d.ellipse((c - r, c - r, c + r, c + r), fill=255)
    elif kind == "star":
        _star(d, rng, c, r)
    elif kind == "heart":
        d.ellipse((c - r, c - r * 0.7, c, c + r * 0.1), fill=255)
        d.ellipse((c, c - r * 0.7, c + r, c + r * 0.1), fill=255)
        d.polygon(
            [(c - r * 0.97, c - r * 0.15), (c + r * 0.97, c - r * 0.15), (c, c + r)], fill=255
        )
    elif kind == "house":
        d.rectangle((c - 7 * u, c - 2 * u, c + 7 * u, c + 9 * u), fill=255)
        d.polygon([(c - 9 * u, c - 2 * u), (c + 9 * u, c - 2 * u), (c, c - 10 * u)], fill=255)
        d.rectangle((c - 2 * u, c + 3 * u, c + 2 * u, c + 9 * u), fill=60)
    elif kind == "car":
        d.rounded_rectangle((c - 10 * u, c - 2 * u, c + 10 * u, c + 4 * u), radius=2 * u, fill=255)
        d.polygon([(c - 6 * u, c - 2 * u), (c - 3 * u, c - 6 * u), (c + 4 * u, c - 6 * u),
                   (c + 7 * u, c - 2 * u)], fill=255)  # fmt: skip
        for x in (c - 6 * u, c + 6 * u):
            d.ellipse((x - 2.6 * u, c + 1.5 * u, x + 2.6 * u, c + 6.7 * u), fill=120)
    elif kind == "cup":
        d.rectangle((c - 6 * u, c - 7 * u, c + 4 * u, c + 7 * u), fill=255)
        d.ellipse((c + 1 * u, c - 4 * u, c + 9 * u, c + 4 * u), outline=255, width=int(2 * u))
    elif kind == "key":
        d.ellipse((c - 10 * u, c - 4 * u, c - 2 * u, c + 4 * u), fill=255)
        d.ellipse((c - 7.5 * u, c - 1.5 * u, c - 4.5 * u, c + 1.5 * u), fill=0)
        d.rectangle((c - 2 * u, c - 1 * u, c + 10 * u, c + 1 * u), fill=255)
        for x in (c + 5 * u, c + 8 * u):
            d.rectangle((x, c + 1 * u, x + 1.5 * u, c + 3.5 * u), fill=255)
    elif kind == "clock":
        d.ellipse((c - r, c - r, c + r, c + r), outline=255, width=int(1.5 * u))
        d.line((c, c, c, c - 0.75 * r), fill=255, width=int(u))
        d.line((c, c, c + 0.5 * r, c + 0.2 * r), fill=255, width=int(u))
    elif kind == "tree":
        d.rectangle((c - 1.5 * u, c + 2 * u, c + 1.5 * u, c + 10 * u), fill=160)
        d.polygon([(c - 8 * u, c + 3 * u), (c + 8 * u, c + 3 * u), (c, c - 10 * u)], fill=255)
    elif kind == "umbrella":
        d.pieslice((c - 10 * u, c - 8 * u, c + 10 * u, c + 8 * u), 180, 360, fill=255)
        d.line((c, c, c, c + 8 * u), fill=255, width=int(u))
        d.arc((c - 3 * u, c + 6 * u, c, c + 10 * u), 0, 180, fill=255, width=int(u))
    elif kind == "bulb":
        d.ellipse((c - 7 * u, c - 10 * u, c + 7 * u, c + 4 * u), fill=255)
        d.rectangle((c - 3 * u, c + 2 * u, c + 3 * u, c + 9 * u), fill=170)
    elif kind == "fish":
        d.ellipse((c - 9 * u, c - 4 * u, c + 4 * u, c + 4 * u), fill=255)
        d.polygon([(c + 3 * u, c), (c + 10 * u, c - 5 * u), (c + 10 * u, c + 5 * u)], fill=255)
        d.ellipse((c - 6 * u, c - 1.5 * u, c - 4 * u, c + 0.5 * u), fill=0)


OBJECTS = ("ball", "star", "heart", "house", "car", "cup", "key", "clock", "tree", "umbrella",
           "bulb", "fish")  # fmt: skip


def everyday_object(rng: np.random.Generator) -> np.ndarray:
    """One of OBJECTS, its proportions varied, lit from one side, bright on black."""
    img, draw = _canvas()
    _object(OBJECTS[int(rng.integers(len(OBJECTS)))], draw, rng)
    img = img.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BICUBIC)
    return _reduce(_shade(img, rng))


# ---------------------------------------------------------------- textures
def texture(rng: np.random.Generator) -> np.ndarray:
    """A patch of stripes, checks, dots or grain in a round or square shape."""
    ys, xs = np.mgrid[0:BIG, 0:BIG].astype(np.float32)
    period = rng.uniform(12, 48)
    kind = int(rng.integers(4))
    if kind == 0:  # stripes at any angle
        a = rng.uniform(0, math.pi)
        v = np.sin((np.cos(a) * xs + np.sin(a) * ys) * 2 * math.pi / period) > 0
    elif kind == 1:  # checks
        v = ((xs // period).astype(int) + (ys // period).astype(int)) % 2 == 0
    elif kind == 2:  # dots
        v = (np.hypot((xs % period) - period / 2, (ys % period) - period / 2)) < period / 3
    else:  # grain: smooth noise, thresholded
        g = rng.random((8, 8)).astype(np.float32)
        v = np.asarray(Image.fromarray(g * 255).resize((BIG, BIG), Image.Resampling.BICUBIC)) > 128
    values = np.where(v, rng.uniform(170, 255), rng.uniform(40, 110)).astype(np.float32)
    mask, draw = _canvas()
    box = (BIG * rng.uniform(0.05, 0.2), BIG * rng.uniform(0.05, 0.2),
           BIG * rng.uniform(0.8, 0.95), BIG * rng.uniform(0.8, 0.95))  # fmt: skip
    (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=255)
    return _reduce(Image.fromarray((values * (np.asarray(mask) / 255)).astype(np.uint8)))


def letter_unlike_digits(rng: np.random.Generator) -> np.ndarray:
    return letter(rng, UNLIKE_DIGITS)


KINDS = {
    "letters": letter,
    "letters unlike digits": letter_unlike_digits,
    "objects": everyday_object,
    "textures": texture,
}


def items(kind: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` (N, 64, 64) uint8 items of ``kind`` (one of KINDS)."""
    make = KINDS[kind]
    return np.stack([make(np.random.default_rng([seed, i])) for i in range(count)])


def item_photos(kind: str, count: int, seed: int = 0) -> list[bytes]:
    """Photos on paper (PNG or JPEG bytes, 28 px to 4000 px) of ``count`` items of ``kind``."""
    return [p.data for p in photos(items(kind, count, seed), seed=seed + 7)]


# ---------------------------------------------------------------- noise
def noise_photos(count: int, seed: int = 0, structured: bool = False) -> list[bytes]:
    """Photos of noise, 28-320 px, gray or colour, PNG: uniform (every pixel drawn alone) or
    structured (blurred blobs, or blocks of random colours)."""
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, i, structured])
        side = int(rng.choice([28, 32, 48, 64, 100, 160, 320]))
        channels = 3 if rng.random() < 0.5 else 1
        if not structured:
            a = rng.integers(0, 256, (side, side, channels), dtype=np.uint8)
        elif rng.random() < 0.5:  # blobs
            a = rng.integers(0, 256, (side, side, channels), dtype=np.uint8)
            img = Image.fromarray(a.squeeze(-1) if channels == 1 else a)
            a = np.asarray(img.filter(ImageFilter.GaussianBlur(side / rng.uniform(8, 24))))
            lo, hi = a.min(), max(int(a.max()), int(a.min()) + 1)
            a = ((a.astype(np.float32) - lo) * (255 / (hi - lo))).astype(np.uint8)
        else:  # blocks
            n = int(rng.integers(2, 8))
            a = rng.integers(0, 256, (n, n, channels), dtype=np.uint8)
            a = np.kron(a, np.ones((side // n + 1, side // n + 1, 1), np.uint8))[:side, :side]
        img = Image.fromarray(a.squeeze(-1) if a.ndim == 3 and a.shape[-1] == 1 else a)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return out
