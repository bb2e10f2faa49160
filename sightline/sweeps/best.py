"""A study after its trials: ``show`` (its table, best and figures) and ``retrain`` (the best
trial's options on train + validation, evaluated on the test split: the sweep's one look at it)."""

from __future__ import annotations

import os
from typing import Any

from sightline.errors import ConfigError
from sightline.sweeps import study as studies
from sightline.sweeps.sweep import SweepRequest, TuneResult

# Retrained on train + validation, the run keeps this much of train aside to calibrate its
# probabilities and its "none of these" threshold on (the recipes' own share).
CALIBRATION_SPLIT = 0.02


def show(
    study: str, storage: str | None = None, runs_dir: str | os.PathLike | None = None
) -> TuneResult:
    """The study's trials, its best, and its figures written afresh."""
    from sightline.sweeps.results import summary, write_figures

    url = studies.storage_url(storage, runs_dir)
    found = studies.load_study(study, url)
    request = SweepRequest(**found.user_attrs[studies.REQUEST])
    folder = write_figures(found, studies.study_folder(request.runs_dir, study))
    return TuneResult(study, studies.shown_url(url), *summary(found), folder=str(folder))


def retrain(
    study: str,
    storage: str | None = None,
    runs_dir: str | os.PathLike | None = None,
    *,
    progress: str = "auto",
    on_event: Any = None,
    **run_options: Any,
):
    """Train the best trial's options again on train + validation (a share kept to calibrate
    on), then evaluate on the test split and write the report: a ``TrainingResult``."""
    from sightline.pipeline import run_training
    from sightline.sweeps.objective import Objective
    from sightline.sweeps.space import split

    url = studies.storage_url(storage, runs_dir)
    found = studies.load_study(study, url)
    request = SweepRequest(**found.user_attrs[studies.REQUEST])
    done = [t for t in found.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not done:
        raise ConfigError(f"study {study!r} has no finished trial yet: nothing to retrain")
    best = max(done, key=lambda t: (t.value, -t.number))
    train, model = Objective.options_of(request, *split(best.params))
    data = {**request.data_options, "val_split": 0.0}
    data.setdefault("calibration_split", CALIBRATION_SPLIT)
    train.pop("patience", None)  # early stopping needs a validation split
    if train.get("monitor", "").startswith("val_"):
        train.pop("monitor")
    return run_training(
        request.dataset, request.model, recipe=request.recipe, data_options=data,
        model_options=model, runs_dir=request.runs_dir, name=f"{study}-best",
        progress=progress, on_event=on_event, **{**train, **run_options},
    )  # fmt: skip
