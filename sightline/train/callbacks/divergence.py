"""Stop a run whose weights have blown up, saying what to change.

A NaN or infinite loss, or an epoch whose mean loss is far above chance level (ln K for K
classes: healthy runs start there and go down), means more epochs will not bring the weights
back (issue 10's folder: loss 34 for 5 classes, ln 5 = 1.6).
"""

from __future__ import annotations

import math

from sightline.errors import SightlineError
from sightline.train.callbacks.base import Callback
from sightline.train.trainer_view import TrainerView

EXPLODING_LOSS_FACTOR = 8.0  # an epoch's mean loss this many times ln K: the weights blew up


class TrainingDiverged(SightlineError):
    """The training loss became NaN or infinite: the weights are garbage from here on."""


class DivergenceCheck(Callback):
    def on_sums(self, trainer: TrainerView, loss_sum: float, epoch_loss: float | None) -> None:
        chance = math.log(max(len(trainer.data.classes), 2))
        exploding = epoch_loss is not None and epoch_loss > EXPLODING_LOSS_FACTOR * chance
        if math.isfinite(loss_sum) and not exploding:
            return
        cfg = trainer.cfg
        lr = trainer.optimizer.param_groups[0]["lr"]
        what = (
            f"became {loss_sum}"
            if not math.isfinite(loss_sum)
            else f"exploded to {epoch_loss:.4g} (chance level is {chance:.2f})"
        )
        raise TrainingDiverged(
            f"the training loss {what} at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch} "
            f"(learning rate {lr:.3g}): training stopped; the last good weights are in "
            f"last.safetensors. Lower the learning rate (--lr {cfg.lr / 10:.2g}: a tenth of the "
            f"peak {cfg.lr:.3g}), warm up longer (--warmup 0.3), or use --optimizer adamw --lr 1e-3"
        )
