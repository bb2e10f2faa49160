"""The run's progress on disk: ``metrics.csv`` (one row an epoch) and ``status.json`` (the
trainer's summary: status, epochs, best value, the training process while it runs), rewritten
atomically whenever the run's files are saved, so a reader never sees half a file."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from sightline.fileio import atomic_write_bytes, atomic_write_json
from sightline.run.folders import training_process
from sightline.run.layout import RunLayout
from sightline.train.callbacks.base import Callback

METRIC_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "time",
    "images_per_sec",
    "best",
]


class MetricsFile(Callback):
    def on_train_begin(self, trainer: Any) -> None:
        self.write(trainer)  # "running" from the first step

    def on_save(self, trainer: Any, gen: Any) -> None:
        self.write(trainer)

    def write(self, trainer: Any) -> None:
        if not trainer.writes:
            return
        lines = [",".join(METRIC_COLUMNS)]
        for row in trainer.history:
            lines.append(
                ",".join("" if row.get(c) is None else str(row[c]) for c in METRIC_COLUMNS)
            )
        files = RunLayout(trainer.run_dir)
        atomic_write_bytes(files.metrics, ("\n".join(lines) + "\n").encode())
        atomic_write_json(files.status, trainer.summary())

    @staticmethod
    def epoch_row(
        trainer: Any, sums: list[float], val_logits: torch.Tensor | None
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
    def summary(trainer: Any) -> dict[str, Any]:
        """status.json: where the run stands."""
        plan, early = trainer.plan, trainer.early
        return {
            "status": trainer.status,
            # Who trains it, while it trains: a listing shows a killed trainer's run as interrupted.
            **({"process": training_process()} if trainer.status == "running" else {}),
            "epochs_done": trainer.epoch,
            "epochs": trainer.cfg.epochs,
            "global_step": trainer.global_step,
            "monitor": early.monitor,
            "best_value": early.best_value,
            "best_epoch": early.best_epoch,
            "steps_per_epoch": plan.steps_per_epoch,
            "total_steps": plan.total_steps,
            "stop_step": plan.stop_step,
            "train_size": plan.train_size,
            # The untimed warm-up's seconds (train/warmup.py): not in any epoch's time.
            "warmup_seconds": trainer.warmup_seconds,
            "last": trainer.history[-1] if trainer.history else None,
            "error": trainer.error,
        }
