"""Cropped near copies (health/crops.py): found whichever edges were cut, never a distinct image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sightline.health.crops import cropped_pairs
from sightline.health.duplicates import crop_threshold, near_pairs
from sightline.health.scan import Item, _describe


def _photos(n: int, seed: int = 0) -> list[Image.Image]:
    """Smooth random colour pictures, 96 px: no two alike."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.uniform(0, 255, (6, 6, 3)).astype(np.uint8)
        out.append(Image.fromarray(small).resize((96, 96), Image.BICUBIC))
    return out


def _item(img: Image.Image, k: int) -> Item:
    digest, thumb, gray, detail = _describe(img, img.mode)
    return Item(f"train/a/{k}.png", "train", 0, img.size, img.mode, digest, thumb, gray, detail)


def _jpeg(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize(
    "box",
    [
        (0.05, 0.0, 0.0, 0.0),
        (0.02, 0.02, 0.03, 0.03),
        (0.0, 0.07, 0.0, 0.06),
        (0.04, 0.0, 0.0, 0.08),
    ],
)
def test_a_crop_of_a_few_percent_is_found_and_nothing_else(box):
    photos = _photos(40)
    left, top, right, bottom = box
    w, h = photos[3].size
    crop = photos[3].crop(
        (round(left * w), round(top * h), round((1 - right) * w), round((1 - bottom) * h))
    )
    items = [_item(p, k) for k, p in enumerate(photos)] + [
        _item(_jpeg(crop.resize((150, 140))), 40)
    ]
    found = cropped_pairs(items, crop_threshold(0.99))
    assert [(i, j) for i, j, _ in found] == [(3, 40)]
    assert found[0][2] >= crop_threshold(0.99)
    assert [(i, j) for i, j, _ in near_pairs(items)] == [(3, 40)]  # what the check reports


def test_the_crop_search_asks_more_than_the_plain_one_and_skips_items_without_a_detail():
    assert crop_threshold(0.99) == pytest.approx(0.992)
    assert crop_threshold(0.9) == pytest.approx(0.92)
    photos = _photos(10, seed=1)
    items = [_item(p, k) for k, p in enumerate(photos)]
    items.append(_item(photos[2].crop((0, 0, 90, 96)), 10))
    assert [(i, j) for i, j, _ in cropped_pairs(items, 0.992)] == [(2, 10)]
    items[2].detail = None  # an item made without one (an older inventory): not searched
    assert cropped_pairs(items, 0.992) == []
