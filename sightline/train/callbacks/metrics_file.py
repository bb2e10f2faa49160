"""The run's progress on disk: ``metrics.csv`` (one row an epoch) and ``status.json`` (the
trainer's summary: status, epochs, best value, the training process while it runs), handed to
the run's writer (``run/writer.py``: atomic) whenever the run's files are saved."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sightline.run.folders import training_process
from sightline.run.writer import METRIC_COLUMNS as METRIC_COLUMNS
from sightline.run.writer import RunStatus
from sightline.train.callbacks.base import Callback
from sightline.train.trainer_view import TrainerView


class MetricsFile(Callback):
    def on_train_begin(self, trainer: TrainerView) -> None:
        self.write(trainer)  # "running" from the first step

    def on_save(self, trainer: TrainerView, gen: Any) -> None:
        self.write(trainer)

    def write(self, trainer: TrainerView) -> None:
        if not trainer.writes:
            return
        trainer.writer.write_metrics(trainer.history)
        trainer.writer.write_status(self.status(trainer))

    @staticmethod
    def epoch_row(
        trainer: TrainerView, sums: list[float], val_logits: torch.Tensor | None
    ) -> dict[str, Any]:
        """The epoch's line of metrics.csv from its (loss sum, correct, images) and, with a
        validation split, its logits."""
        loss_sum, correct, seen = sums
        row: dict[str, Any] = {
            "epoch": trainer.epoch + 1,
            "loss": round(loss_sum / max(seen, 1), 6),
            "accuracy": round(correct / max(seen, 1), 6),
            "val_loss": None,
            "val_accuracy": None,
            "lr": trainer.optimizer.param_groups[0]["lr"],
            "time": round(trainer.epoch_time, 3),
            "images_per_sec": round(seen / max(trainer.epoch_time, 1e-9), 1),
        }
        if val_logits is not None:
            labels = trainer.data.val.labels.cpu()
            row["val_loss"] = round(F.cross_entropy(val_logits, labels).item(), 6)
            row["val_accuracy"] = round((val_logits.argmax(1) == labels).double().mean().item(), 6)
        return row

    @staticmethod
    def status(trainer: TrainerView) -> RunStatus:
        """status.json: where the run stands."""
        plan, early = trainer.plan, trainer.early
        return RunStatus(
            status=trainer.status,
            epochs_done=trainer.epoch,
            epochs=trainer.cfg.epochs,
            global_step=trainer.global_step,
            monitor=early.monitor,
            best_value=early.best_value,
            best_epoch=early.best_epoch,
            steps_per_epoch=plan.steps_per_epoch,
            total_steps=plan.total_steps,
            stop_step=plan.stop_step,
            train_size=plan.train_size,
            # The untimed warm-up's seconds (train/warmup.py): not in any epoch's time.
            warmup_seconds=trainer.warmup_seconds,
            last=trainer.history[-1] if trainer.history else None,
            error=trainer.error,
            # Who trains it, while it trains: a listing shows a killed trainer's run as interrupted.
            process=training_process() if trainer.status == "running" else None,
        )

    @classmethod
    def summary(cls, trainer: TrainerView) -> dict[str, Any]:
        """status.json's record, as the trainer returns it."""
        return cls.status(trainer).to_dict()
