"""What a user's image folder is loaded as, when the user did not say: channels, input size,
and the note lines that tell the user what was chosen and why (``Dataset.notes``).

Kept apart from ``folders`` (which finds and decodes the files) so the rules can be read and
tested on their own:

* **Channels.** 1 when every image is gray — by its colour mode, or because its R, G and B agree
  within ``GRAY_TOLERANCE`` levels (a scan or a digit saved as RGB/RGBA is still gray). A gray
  image given three identical channels only triples the first layer's work and memory.
* **Size.** Every image the same size, no larger than ``MAX_SIDE`` → that size, as is.
  Otherwise the median image: its longer side (at most ``MAX_SIDE``) and, when the images share
  one aspect ratio, that aspect (else square, so portrait and landscape both fit), rounded to a
  multiple of 4 but never above the median itself, so small images are not enlarged.
* **Classes.** Images per class, and warnings for classes too small to learn or to validate on
  (< ``FEW_IMAGES``) and for strongly unbalanced classes (largest / smallest ≥ ``UNBALANCED``).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

import numpy as np
from PIL import Image

from sightline.data import images as _images  # noqa: F401 - its filters of PIL's warnings

# JPEG keeps a gray image's R = G = B exactly with PIL, and within a level or two with other
# encoders; a colour photo differs by tens of levels somewhere (CIFAR-10: 95 % of the images
# differ by more than 38 levels; the ~1 % that differ by 0 are gray photos).
GRAY_TOLERANCE = 8
# Largest input side chosen automatically. fastcnn's cost grows with H x W: on 2 CPU cores it
# trains about 1,500 gray 28 px images a second, and ~5x fewer at 64 px RGB; 64 px keeps a
# from-scratch model on 10,000 images within minutes per epoch and is ample for the small,
# low-detail classes such a model learns well. --size asks for more.
MAX_SIDE = 64
SIZE_MULTIPLE = 4  # two exact 2x poolings: both halvings keep every pixel column
SIZE_SAMPLE = 2000  # headers read to choose the size: the median of 2,000 is close enough
SAME_ASPECT = 0.05  # aspect ratios within 5 % of the median count as the same
FEW_IMAGES = 10
UNBALANCED = 5.0
_EXIF_ORIENTATION = 0x0112
_SWAPPED_ORIENTATIONS = (5, 6, 7, 8)  # rotated by 90 or 270 degrees: width and height swap


# ----------------------------------------------------------------------- channels
def is_gray_content(img: Image.Image, tolerance: int = GRAY_TOLERANCE) -> bool:
    """True when an RGB image's channels agree everywhere within ``tolerance`` levels."""
    if img.mode != "RGB":
        raise ValueError(f"expected an RGB image, got mode {img.mode}")
    if max(img.size) > 512:  # a box-filtered copy: fast on large photos, and averaging can
        img = img.reduce(max(img.size) // 256)  # only shrink a channel difference, never add one
    a = np.asarray(img, dtype=np.int16)
    return int((a.max(axis=2) - a.min(axis=2)).max()) <= tolerance


def channels_note(channels: int, given: bool, stored_modes: Sequence[tuple[str, bool]]) -> str:
    """The note for the channel count; ``stored_modes`` is (file's own mode, gray) per image."""
    if given:
        return f"channels {channels}: as given"
    if channels == 1:
        disguised: dict[str, int] = {}
        for mode, _ in stored_modes:
            if mode in ("RGB", "RGBA", "P", "CMYK", "YCbCr"):
                disguised[mode] = disguised.get(mode, 0) + 1
        stored = ", ".join(f"{n:,} stored as {mode}" for mode, n in sorted(disguised.items()))
        return f"channels 1: every image is gray{f' ({stored})' if stored else ''}"
    colour = sum(1 for _, gray in stored_modes if not gray)
    return f"channels 3: {colour:,} of {len(stored_modes):,} images are in colour"


# ----------------------------------------------------------------------- size
def probe_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(height, width) of an image file, upright, from its header alone (no decoding); None
    when it cannot be read (decoding reports why later)."""
    try:
        # a huge image is refused when decoded, not here (its warning: data/images.py's filter)
        with Image.open(path) as img:
            w, h = img.size
            if (
                img.format in ("JPEG", "WEBP", "PNG", "TIFF")
                and img.getexif().get(_EXIF_ORIENTATION) in _SWAPPED_ORIENTATIONS
            ):
                w, h = h, w
            return (h, w) if w > 0 and h > 0 else None
    except Exception:  # noqa: BLE001 - any unreadable header: that file is judged when decoded
        return None


def _round_side(side: float, limit: float) -> int:
    """``side`` to a multiple of SIZE_MULTIPLE, never above ``limit`` (no enlarging); small
    sides are kept as they are (a multiple of 4 matters to poolings of larger maps only)."""
    if side < 4 * SIZE_MULTIPLE:
        return max(1, int(round(side)))
    r = int(round(side / SIZE_MULTIPLE)) * SIZE_MULTIPLE
    if r > limit:
        r = int(limit // SIZE_MULTIPLE) * SIZE_MULTIPLE
    return r


def choose_size(
    sizes: Sequence[tuple[int, int]], sampled_from: int | None = None, max_side: int = MAX_SIDE
) -> tuple[tuple[int, int], str]:
    """The input (height, width) for images of ``sizes`` (height, width), and its note.

    ``sampled_from``: how many images ``sizes`` were sampled from, when they are a sample.
    """
    if not sizes:
        return (max_side, max_side), f"size {max_side}x{max_side}: no image size could be read"
    of = f" ({len(sizes):,} sampled of {sampled_from:,})" if sampled_from else ""
    distinct = set(sizes)
    if len(distinct) == 1:
        h, w = sizes[0]
        if max(h, w) <= max_side:
            return (h, w), f"size {h}x{w}: every image is {h}x{w} px{of}, kept as it is"
    long_sides = [max(h, w) for h, w in sizes]
    aspects = [w / h for h, w in sizes]
    aspect = statistics.median(aspects)
    same = sum(abs(a / aspect - 1) <= SAME_ASPECT for a in aspects) >= 0.9 * len(aspects)
    if not same:
        aspect = 1.0  # portrait and landscape mixed: a square fits both ("pad" keeps each shape)
    median_long = statistics.median(long_sides)
    scale = min(1.0, max_side / median_long)
    long_side = median_long * scale
    if aspect >= 1:
        w_f, h_f = long_side, long_side / aspect
    else:
        h_f, w_f = long_side, long_side * aspect
    h, w = _round_side(h_f, h_f / scale), _round_side(w_f, w_f / scale)
    lo, hi = min(long_sides), max(long_sides)
    if len(distinct) == 1:
        mh, mw = sizes[0]
        why = f"every image is {mh}x{mw} px{of}"
    else:
        mh, mw = _median_size(sizes)
        why = f"the median image is {mh}x{mw} px{of}; the longer sides range from {lo} to {hi} px"
    shape = "" if same or len(distinct) == 1 else ", square because the images' shapes differ"
    if scale < 1.0:
        cost = (
            f", scaled down to at most {max_side} px a side to keep training from scratch fast on a CPU "
            f"(--size for more detail)"
        )
    else:
        cost = ""
    return (h, w), f"size {h}x{w}: {why}{shape}{cost}"


def _median_size(sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The size of the image with the median area (a real image size, for the note)."""
    ordered = sorted(sizes, key=lambda s: s[0] * s[1])
    return ordered[len(ordered) // 2]


def sample_evenly(items: Sequence, limit: int = SIZE_SAMPLE) -> list:
    """At most ``limit`` items spread evenly over ``items`` (deterministic)."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


# ----------------------------------------------------------------------- classes
def class_notes(classes: Sequence[str], counts: Sequence[int], skipped: int = 0) -> list[str]:
    """One line of images per class, then a warning line per problem found."""
    per_class = ", ".join(f"{c}: {n:,}" for c, n in zip(classes, counts, strict=True))
    if len(classes) > 30:  # a long line nobody reads: the extremes say what matters
        per_class = f"{min(counts):,} to {max(counts):,} per class, {sum(counts):,} in all"
    unread = (
        f" ({skipped:,} unreadable file{'s' if skipped > 1 else ''} skipped)" if skipped else ""
    )
    lines = [f"images per class: {per_class}{unread}"]
    few = [f"{c} ({n})" for c, n in zip(classes, counts, strict=True) if n < FEW_IMAGES]
    if few:
        lines.append(
            f"warning: {len(few)} class{'es' if len(few) > 1 else ''} with fewer than {FEW_IMAGES} images: "
            f"{', '.join(few[:10])}{' ...' if len(few) > 10 else ''}; a model cannot learn a class from so "
            f"few examples, nor can they be validated: add images (dozens per class or more)"
        )
    small, large = min(counts), max(counts)
    if small > 0 and large / small >= UNBALANCED:
        c_small, c_large = classes[counts.index(small)], classes[counts.index(large)]
        lines.append(
            f"warning: unbalanced classes: {c_large} has {large:,} images, {c_small} only {small:,} "
            f"({large / small:.0f}x); the model will favour the large classes and accuracy hides it: "
            f"add images to the small ones, or check the per-class recall after training"
        )
    return lines
