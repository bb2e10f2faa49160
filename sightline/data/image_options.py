"""The values an image option can take: channels, resize mode and input size.

Kept apart from ``preprocess`` and ``folders`` (which import PyTorch) so that the option
declarations (``plan/inputs.py``) and ``sightline train --help`` name the same values the
loaders check, without importing PyTorch.
"""

from __future__ import annotations

RESIZE_MODES = ("squash", "crop", "pad")
# Augmentation policies (data/policies.py): none, TrivialAugment, RandAugment.
AUGMENT_POLICIES = ("none", "trivial", "randaugment")
# How an image is resampled to the input size: timm's pretrained configs name one of these.
INTERPOLATIONS = ("bilinear", "bicubic")
IMAGE_CHANNELS = (1, 3)  # gray or RGB
MIN_SIDE, MAX_SIDE = 1, 4096  # pixels per side of a model's input (``folders.parse_size``)
