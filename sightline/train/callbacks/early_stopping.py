"""The best epoch by the monitored metric, and early stopping when it stops improving.

``monitor`` is ``cfg.monitor`` (val_accuracy by default), or its training twin when the run has
no validation split. Each epoch's row says whether it is the best so far (``row["best"]``: the
checkpointing concern then saves ``best.safetensors``); after ``patience`` epochs without an
improvement larger than ``min_delta`` the trainer stops.
"""

from __future__ import annotations

from typing import Any

from sightline.train.callbacks.base import Callback
from sightline.train.trainer_view import TrainerView


class EarlyStopping(Callback):
    def __init__(
        self, monitor: str, patience: int | None, min_delta: float = 0.0, has_val: bool = True
    ) -> None:
        # Without a validation split, val_accuracy's training twin (accuracy) is watched.
        self.monitor = monitor if has_val or not monitor.startswith("val_") else monitor[4:]
        self.mode = "max" if monitor.endswith("accuracy") else "min"
        self.patience, self.min_delta = patience, min_delta
        self.best_value: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        value = row[self.monitor]
        best = self.best_value
        improved = best is None or (value > best if self.mode == "max" else value < best)
        significant = best is None or abs(value - best) > self.min_delta
        row["best"] = improved
        if improved:
            self.best_value, self.best_epoch = value, row["epoch"]
        self.bad_epochs = 0 if (improved and significant) else self.bad_epochs + 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            trainer.stop_training = True

    def stop_message(self) -> str:
        return (
            f"Early stopping: no {self.monitor} improvement for {self.patience} epochs "
            f"(best {self.best_value:.4f} at epoch {self.best_epoch})."
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
