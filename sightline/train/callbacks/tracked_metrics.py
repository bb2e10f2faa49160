"""What the trackers log, named and read once for MLflow and TensorBoard alike: the running
training loss and a run's evaluation as metrics."""

from __future__ import annotations

import re
from typing import Any

EVALUATION_METRICS = ("accuracy", "balanced_accuracy", "loss", "macro_f1", "weighted_f1",
                      "ece", "nll", "brier", "unknown_rate")  # fmt: skip
PER_CLASS = ("precision", "recall", "f1")


def running_loss(trainer: Any, loss_sum: float, epoch_loss: float | None) -> float | None:
    """The epoch's running mean loss at ``on_sums`` (None: not one to log). Mid-epoch, every
    step so far was a full batch of this process's own images (the partial one ends the epoch,
    which brings ``epoch_loss``); of several processes, rank 0's sums are its own rows only, so
    their running loss is left to the epoch's."""
    if epoch_loss is not None:
        return epoch_loss
    alone = getattr(trainer.world, "images_factor", 1) == 1
    if not alone or not trainer.step_in_epoch:
        return None
    return loss_sum / (trainer.step_in_epoch * trainer.cfg.batch_size)


def evaluation_metrics(evaluation: dict[str, Any], prefix: str = "test") -> dict[str, float]:
    """An evaluation's numbers as MLflow metrics (class names made valid metric names)."""
    out = {
        f"{prefix}/{k}": float(evaluation[k])
        for k in EVALUATION_METRICS
        if isinstance(evaluation.get(k), (int, float))
    }
    for row in evaluation.get("per_class") or []:
        name = re.sub(r"[^\w\-. /]", "_", str(row.get("class")))[:200]
        for k in PER_CLASS:
            if isinstance(row.get(k), (int, float)):
                out[f"{prefix}/{name}/{k}"] = float(row[k])
    return out
