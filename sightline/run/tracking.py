"""A run's ``tracking.json``: where else it is logged, by tracker (``"mlflow"``: the store and
run id; ``"tensorboard"``: the events' folder; ``"optuna"``: the sweep it is a trial of).
``RunWriter.write_tracking`` writes it; this reads it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sightline.errors import PathRefusedError
from sightline.fileio import read_json_inside
from sightline.run.layout import RunLayout


def read_tracking(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The records by tracker; {} when the run is not tracked or its record cannot be read."""
    p = RunLayout(run_dir).tracking
    try:
        found = read_json_inside(run_dir, p) if os.path.lexists(p) else {}
    except (OSError, ValueError, PathRefusedError):
        return {}
    return found if isinstance(found, dict) else {}


def study_of(records: dict[str, Any]) -> dict[str, Any] | None:
    """The sweep of a trial's run: its study's name, the trial's number and, if the pruner
    stopped it, after which epoch; None for a run of its own."""
    record = records.get("optuna")
    if not isinstance(record, dict) or not isinstance(record.get("study"), str):
        return None
    return {"name": record["study"], "trial": record.get("trial"),
            "pruned_after_epoch": record.get("pruned_after_epoch")}  # fmt: skip
