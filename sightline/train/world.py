"""Who trains: one process alone (``World``), or one rank of several under torchrun
(``distributed.world.DistributedWorld``), as one object the ``Trainer`` is given.

The loop is the same for both, so resume, early stopping, stops and the run folder work the
same; the world answers the questions where they differ: which device this process uses,
which rows of a batch it trains on, how its loss is scaled, how it seeds dropout, how its
processes agree on a stop, how the epoch's sums and the validation logits are gathered, and
what it adds to the resume checkpoint. Beside it, the feed (train/feed.py) says what a batch is.
"""

from __future__ import annotations

from typing import Any

import torch

from sightline.train.loss import batch_loss
from sightline.train.trainer_view import TrainerView


class World:
    """One process: it writes the run folder, reports progress and decides alone."""

    is_main = True  # writes the run folder and reports progress
    images_factor = 1  # images per step over this process's own
    sigint_repeat_window = 0.0  # a second Ctrl-C within this many seconds is the same one
    allows_cuda_graphs = True

    def device(self, device: torch.device) -> torch.device:
        """The device this process trains on, given the one the plan names."""
        return device

    def attach(self, trainer: TrainerView) -> None:
        """Called once the trainer has its model, optimizer and concerns."""

    def step_batch(
        self,
        trainer: TrainerView,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        idx: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) this process trains on for the batch ``idx`` of the epoch (mixed,
        where the run mixes: ``trainer.mixer.last`` says how)."""
        y = labels[idx]
        return trainer.mixer(trainer.feed.batch(trainer, inputs, idx, gen), y, gen), y

    def forward(self, trainer: TrainerView, x: torch.Tensor) -> torch.Tensor:
        return trainer.feed.forward(trainer, x)

    def loss(
        self, trainer: TrainerView, logits: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to back-propagate, the summed loss of these images for the metrics)."""
        return batch_loss(
            logits, y, trainer.cfg.label_smoothing, trainer.logit_adjustment, trainer.mixer.last
        )

    def seed(self, trainer: TrainerView) -> None:
        """Seeds the global RNG (dropout) at the start of a new run."""
        torch.manual_seed(trainer.cfg.seed)

    def stop_now(self, trainer: TrainerView) -> bool:
        """Whether to stop before this step (Ctrl-C or ``should_stop``)."""
        return trainer.stop_asked()

    def agree(self, flag: bool) -> bool:
        """A decision all processes take together."""
        return flag

    def epoch_sums(self, trainer: TrainerView) -> list[float]:
        """(loss sum, correct, images) of the epoch so far, over all processes."""
        return trainer.sums.tolist()

    def val_logits(self, trainer: TrainerView) -> torch.Tensor:
        return trainer.feed.val_logits(trainer)

    def save_state(self, trainer: TrainerView, state: dict[str, Any]) -> None:
        """Adds to (or amends) the resume checkpoint's ``state``."""

    def load_state(self, trainer: TrainerView, state: dict[str, Any]) -> None:
        """Called after the trainer loaded its own part of ``state``."""

    def detach(self, trainer: TrainerView) -> None:
        """Training ended: give the model back as one process uses it."""
