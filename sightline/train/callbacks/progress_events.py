"""Progress as events: what the displays (train/progress.py) and a user's callbacks are told.

``train_begin`` once, ``step`` after every step (the running loss and accuracy read back from
the device at most ``READS_PER_SECOND`` times a second: each read waits for the GPU's queue),
and each epoch's row of the metrics once the other concerns have seen it.
"""

from __future__ import annotations

import time
from typing import Any

from sightline.train.callbacks.base import Callback
from sightline.train.trainer_view import TrainerView

READS_PER_SECOND = 10


class ProgressEvents(Callback):
    def __init__(self) -> None:
        self.last_read = 0.0
        self.shown: dict[str, float] = {}

    def on_train_begin(self, trainer: TrainerView) -> None:
        data = trainer.data
        trainer.emit(
            "on_train_begin",
            {
                "epochs": trainer.cfg.epochs,
                "steps_per_epoch": trainer.steps,
                "start_epoch": trainer.epoch + 1,
                "total_steps": trainer.plan.total_steps,
                "stop_step": trainer.plan.stop_step,
                "global_step": trainer.global_step,
                "train_size": len(data.train),
                "val_size": len(data.val) if data.val is not None else 0,
                "device": str(trainer.device),
                "run_dir": str(trainer.run_dir),
                "monitor": trainer.monitor,
            },
        )

    def on_step_end(self, trainer: TrainerView) -> None:
        now = time.monotonic()
        seconds = max(trainer.epoch_time, 1e-9)
        if now - self.last_read >= 1 / READS_PER_SECOND or trainer.step_in_epoch == trainer.steps:
            self.last_read = now
            loss_sum, correct, seen = trainer.read_sums()
            self.shown = {
                "loss": loss_sum / max(seen, 1),
                "accuracy": correct / max(seen, 1),
                "images_per_sec": seen * trainer.world.images_factor / seconds,
            }
        trainer.emit(
            "on_step",
            {
                "epoch": trainer.epoch + 1,
                "step": trainer.step_in_epoch,
                "steps": trainer.steps,
                **self.shown,
                "steps_per_sec": trainer.step_in_epoch / seconds,
            },
        )

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        self.last_read, self.shown = 0.0, {}
        trainer.emit("on_epoch_end", row)
