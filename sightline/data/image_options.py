"""The values an image option can take: channels, resize mode and input size.

Kept apart from ``preprocess`` and ``folders`` (which import PyTorch) so that the option
declarations (``plan/inputs.py``) and ``sightline train --help`` name the same values the
loaders check, without importing PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

from sightline.errors import DataError

RESIZE_MODES = ("squash", "crop", "pad")
# Augmentation policies (data/policies.py): none, TrivialAugment, RandAugment.
AUGMENT_POLICIES = ("none", "trivial", "randaugment")
# How an image is resampled to the input size: timm's pretrained configs name one of these.
INTERPOLATIONS = ("bilinear", "bicubic")
IMAGE_CHANNELS = (1, 3)  # gray or RGB
MIN_SIDE, MAX_SIDE = 1, 4096  # pixels per side of a model's input (``parse_size``)


def parse_size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """(height, width) of a model input size given as one number or two; DataError out of range."""
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"size must be one number or (height, width), not {size!r}") from None
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise DataError(f"size {h}x{w} is out of range ({MIN_SIDE}..{MAX_SIDE} pixels per side)")
    return (h, w)
