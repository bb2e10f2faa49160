"""The experiment trackers the plan asks for (``--track``, ``plan/config.py``'s ``TRACKERS``):
one training concern each, added to the trainer's list (``train/loop.py``), and what each logs
once the run is evaluated (``log_results``: the pipeline calls it)."""

from __future__ import annotations

import os
import warnings
from typing import Any

from sightline.train.callbacks.base import Callback


def trackers(track: str | None, folder: str | os.PathLike | None = None) -> list[Callback]:
    """The concerns of ``track`` (None: none); ``folder``: where it logs, if not its default
    (TensorBoard: the events' folder; MLflow: the tracking URI)."""
    if track == "tensorboard":
        from sightline.train.callbacks.tensorboard import TensorBoardTracker

        return [TensorBoardTracker(folder)]
    if track == "mlflow":
        from sightline.train.callbacks.mlflow import MLflowTracker

        return [MLflowTracker(str(folder) if folder else None)]
    return []


def log_results(run: Any, model: bool = True) -> list[str]:
    """Give each tracker the run was logged to (``run.tracking``) its evaluation, figures and
    (MLflow, ``model``) model; returns a line per tracker saying where. A tracker that fails
    warns and the rest goes on: the run folder has everything."""
    said = []
    for name, record in run.tracking.items():
        try:
            if name == "mlflow":
                from sightline.train.callbacks.mlflow_results import log_mlflow_results

                said.append(log_mlflow_results(run, record, model))
            elif name == "tensorboard":
                from sightline.train.callbacks.tensorboard import log_tensorboard_results

                said.append(log_tensorboard_results(run, record))
        except Exception as e:  # noqa: BLE001 - any tracker's failure: said, and nothing lost
            first = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            warnings.warn(
                f"{name} could not take the run's evaluation ({first}); the run folder has it",
                stacklevel=2,
            )
    return said
