"""When the run's model files and resume state are written: ``best.safetensors`` when an
epoch is the best so far, ``last.safetensors`` and ``resume.pt`` at every save (each epoch's
end, a stop), and ``resume.pt`` every ``checkpoint_every`` steps within an epoch (for long
epochs). What goes into them is the trainer's (``Trainer.save_model``, ``save_checkpoint``)."""

from __future__ import annotations

from typing import Any

from sightline.train.callbacks.base import Callback
from sightline.train.trainer_view import TrainerView


class Checkpointing(Callback):
    def __init__(self, every: int = 0) -> None:
        self.every = every  # also checkpoint every N steps mid-epoch (0: at epochs' ends only)

    def on_step_end(self, trainer: TrainerView) -> None:
        if (
            self.every
            and trainer.global_step % self.every == 0
            and trainer.step_in_epoch < trainer.steps
        ):
            trainer.save_checkpoint(trainer.gen)

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        if row.get("best"):
            monitor = trainer.monitor
            trainer.save_model("best", {"epoch": row["epoch"], monitor: row[monitor]})

    def on_save(self, trainer: TrainerView, gen: Any) -> None:
        trainer.save_model("last", {"epoch": trainer.epoch})
        trainer.save_checkpoint(gen)
