"""One trial of a sweep: the trial's options, one sightline run, its score, pruning from its
epoch events."""

from __future__ import annotations

import os
import time
from typing import Any

from sightline.sweeps import study as studies
from sightline.sweeps import tracked
from sightline.sweeps.space import parse_dim, suggest

METRIC = "val_accuracy"  # what a trial is scored by (maximised), read from its epochs


class Objective:
    """Optuna's objective for the study ``study`` (in ``url``): trains the trial's run and
    returns its best validation accuracy; raises TrialPruned when the pruner stops it."""

    def __init__(
        self,
        study: str,
        url: str,
        request: Any,
        workers: int,
        on_event: Any,
        parent: str | None = None,
    ) -> None:
        self.study, self.url, self.request = study, url, request
        self.workers, self.on_event = workers, on_event
        self.parent = parent  # the study's MLflow run, the trials' parent (sweeps/tracked.py)
        self.space = {name: parse_dim(name, d, study) for name, d in request.space.items()}

    def __call__(self, trial: Any) -> float:
        import optuna

        from sightline.pipeline import run_training
        from sightline.run import RunWriter

        r = self.request
        options, model = self.options_of(r, *suggest(self.space, trial))
        # a study's trials side by side in MLflow, in an experiment named after it (for the
        # trial only: a user's own name wins, and the process's later runs keep theirs)
        named = options.get("track") == "mlflow" and "MLFLOW_EXPERIMENT_NAME" not in os.environ
        budget = r.trial_budget(self.workers)
        if budget is not None:
            options["time_budget"] = budget
        pruned, started = [], time.monotonic()
        mlflow = {"run_dir": None, "nested": not self.parent}
        record = {"study": self.study, "storage": studies.shown_url(self.url),
                  "trial": trial.number}  # fmt: skip

        def watch(event: dict[str, Any]) -> None:
            if event["kind"] == "run":  # the folder exists: tagged before the first step
                RunWriter(event["run_dir"]).write_tracking("optuna", record)
                trial.set_user_attr("run", event["run_dir"])
                mlflow["run_dir"] = event["run_dir"]
                return
            if event["kind"] == "epoch" and not mlflow["nested"]:  # its MLflow run is open now
                mlflow["nested"] = tracked.nest(self.parent, mlflow["run_dir"], r)
            if event["kind"] == "epoch" and isinstance(event.get(METRIC), (int, float)):
                trial.report(float(event[METRIC]), int(event["epoch"]))
                if trial.should_prune():
                    pruned.append(int(event["epoch"]))

        if named:
            os.environ["MLFLOW_EXPERIMENT_NAME"] = self.study
        try:
            result = run_training(
                r.dataset, r.model, recipe=r.recipe, data_options=dict(r.data_options),
                model_options=model, runs_dir=r.runs_dir,
                name=f"{self.study}-t{trial.number:03d}", evaluate=False, report=False,
                check=False, progress="quiet", on_event=watch, should_stop=lambda: bool(pruned),
                **options,
            )  # fmt: skip
        finally:
            if named:
                os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
        run = result.run
        if not mlflow["nested"]:
            tracked.nest(self.parent, run.path, r)
        trial.set_user_attr("seconds", round(time.monotonic() - started, 1))
        scores = [row.get(METRIC) for row in run.history]
        scores = [s for s in scores if isinstance(s, (int, float))]
        if pruned:
            # its run reads "interrupted" (it can be resumed); the study's record says why
            RunWriter(run.path).write_tracking(
                "optuna", {**record, "pruned_after_epoch": pruned[0]}
            )
            self._say(trial, "PRUNED", max(scores, default=None), run)
            raise optuna.TrialPruned()
        if not scores:
            raise RuntimeError(f"{run.path} has no {METRIC}: nothing to score the trial by")
        self._say(trial, "COMPLETE", max(scores), run)
        return max(scores)

    @staticmethod
    def options_of(
        request: Any, train: dict[str, Any], model: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(training options, model options) of a trial: the request's with the trial's."""
        return {**request.train_options, **train}, {**request.model_options, **model}

    def _say(self, trial: Any, state: str, value: float | None, run: Any) -> None:
        if self.on_event is not None:
            self.on_event({"kind": "trial", "study": self.study, "number": trial.number,
                           "state": state, "value": value, "params": dict(trial.params),
                           "run": str(run.path)})  # fmt: skip
