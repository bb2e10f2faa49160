"""What a training step feeds the model, as one object the ``Trainer`` is given.

``ImageFeed`` (the default) keeps the training images on the device as uint8 and makes each
batch there: normalised, augmented, channels-last where the model runs faster so. Another feed
changes what a batch is without touching the loop, so the run folder, metrics, early stopping,
events and exact resume stay the same: ``frozen.FrozenFeatures`` feeds a head the features of a
frozen backbone, computed once.
"""

from __future__ import annotations

import torch
from torch import nn

from sightline.infer.batched import batched_logits
from sightline.train.trainer_view import TrainerView


class ImageFeed:
    def setup(self, model: nn.Module) -> None:
        """Called first, before the optimizer is made (a feed may fix which parameters train)."""

    def train_inputs(self, trainer: TrainerView) -> torch.Tensor:
        """The epoch's inputs, indexed by image: here the uint8 images on the device."""
        return trainer.data.train.images.to(trainer.device)

    def batch(
        self, trainer: TrainerView, inputs: torch.Tensor, idx: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        x = trainer.preprocess.normalize(trainer.augment.pixels(inputs[idx], gen))
        if trainer.augment.active:
            x = trainer.augment(x, gen, trainer.flip_mask(idx))
        if trainer.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, trainer: TrainerView, x: torch.Tensor) -> torch.Tensor:
        return trainer.model(x)

    def val_logits(self, trainer: TrainerView) -> torch.Tensor:
        """The validation images' logits (CPU, float), with the run's test-time augmentation."""
        val = trainer.data.val
        return batched_logits(trainer.model, val.images, trainer.preprocess, trainer.device)
