"""The run's progress on disk: ``metrics.csv`` (one row an epoch) and ``status.json`` (the
trainer's summary: status, epochs, best value, the training process while it runs), rewritten
atomically whenever the run's files are saved, so a reader never sees half a file."""

from __future__ import annotations

from typing import Any

from sightline.fileio import atomic_write_bytes, atomic_write_json
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
