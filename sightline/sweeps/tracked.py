"""A tracked sweep in MLflow (``tune ... --track mlflow``): one parent run per study, named
after it, in the experiment its trials log to (the study's name, unless
``$MLFLOW_EXPERIMENT_NAME`` says another); every trial's run nested under it (MLflow's
``mlflow.parentRunId`` tag: the UI folds the trials under their study), and at the end of each
``tune`` the study's best value, best options, trial counts and figures on the parent.

The parent's id is a user attribute of the study (``PARENT``), so a resumed study, and a
worker on another machine, nest under the same parent. Nothing here stops a sweep: a tracker
that fails warns once and the study goes on (the study and the run folders keep everything).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

PARENT = "sightline.mlflow_parent"  # the study's user attribute: the parent run's id


def experiment_of(study: str) -> str:
    """The MLflow experiment a study's runs go to: the user's own name wins."""
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or study


def open_parent(found: Any, request: Any) -> str | None:
    """The study's parent run, made on its first ``tune`` and set running again on a resume;
    its id, kept in the study (None: not tracked in MLflow, or MLflow failed: warned)."""
    if request.track != "mlflow":
        return None
    try:
        c = _client(request)
        known = found.user_attrs.get(PARENT)
        if known and _exists(c, known):
            c.update_run(known, status="RUNNING")
            return known
        name = experiment_of(found.study_name)
        experiment = c.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else c.create_experiment(name)
        run = c.create_run(experiment_id, run_name=found.study_name, tags={
            "sightline.study": found.study_name, "mlflow.source.name": "sightline tune",
            "mlflow.note.content": "\n".join(f"- {n}" for n in request.notes)})  # fmt: skip
        from mlflow.entities import Param

        params = [Param(f"space.{k}", str(v)[:6000]) for k, v in request.space.items()]
        params += [Param(k, str(v)[:6000]) for k, v in request.train_options.items()
                   if k not in ("track", "track_uri")]  # fmt: skip
        params += [Param("model", str(request.model)), Param("recipe", str(request.recipe)),
                   Param("trials", str(request.trials)), Param("pruner", request.pruner)]  # fmt: skip
        for i in range(0, len(params), 100):  # MLflow's most parameters per batch
            c.log_batch(run.info.run_id, params=params[i : i + 100])
        found.set_user_attr(PARENT, run.info.run_id)
        return run.info.run_id
    except Exception as e:  # noqa: BLE001 - the tracker's failure never stops the sweep
        _warn("could not open the study's run", e)
        return None


def nest(parent: str | None, run_dir: str | os.PathLike | None, request: Any) -> bool:
    """Put a trial's MLflow run under the study's parent, once the trial's tracker has opened
    it (its id in the run's ``tracking.json``); True when done."""
    if not parent or not run_dir:
        return False
    from sightline.run.tracking import read_tracking

    run_id = (read_tracking(Path(run_dir)).get("mlflow") or {}).get("run_id")
    if not run_id:
        return False
    try:
        _client(request).set_tag(run_id, "mlflow.parentRunId", parent)
        return True
    except Exception as e:  # noqa: BLE001
        _warn("could not put a trial's run under the study's", e)
        return False


def close_parent(parent: str | None, found: Any, request: Any, folder: Path) -> None:
    """The study's best value (``best/val_accuracy``), its options (tags ``best.<option>``),
    the trials by state, its figures and table (``folder``) on the parent, which ends."""
    if not parent:
        return
    from mlflow.entities import Metric, RunTag

    from sightline.sweeps.results import summary

    try:
        c = _client(request)
        trials, best = summary(found)
        states = [t["state"] for t in trials]
        step = len(trials)
        metrics = [Metric(f"trials/{s.lower()}", states.count(s), 0, step)
                   for s in ("COMPLETE", "PRUNED", "FAIL")]  # fmt: skip
        tags = []
        if best is not None:
            metrics.append(Metric("best/val_accuracy", float(best["value"]), 0, step))
            tags = [RunTag(f"best.{k}", str(v)) for k, v in best["params"].items()]
            tags += [RunTag("best.trial", str(best["number"])),
                     RunTag("best.run", str(best["run"]))]  # fmt: skip
        c.log_batch(parent, metrics=metrics, tags=tags)
        c.log_artifacts(parent, str(folder), "study")
        c.set_terminated(parent, "FINISHED")
    except Exception as e:  # noqa: BLE001
        _warn("could not log the study's results", e)


def _client(request: Any) -> Any:
    from sightline.train.callbacks.mlflow import client, tracking_uri

    return client(tracking_uri(request.train_options.get("track_uri")))


def _exists(c: Any, run_id: str) -> bool:
    try:
        c.get_run(run_id)
        return True
    except Exception:  # noqa: BLE001 - gone from this store: a new parent
        return False


def _warn(what: str, e: Exception) -> None:
    first = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    warnings.warn(f"MLflow {what} ({first}); the sweep goes on", stacklevel=3)
