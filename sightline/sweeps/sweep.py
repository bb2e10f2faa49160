"""A sweep: Optuna's TPE proposes options, each trial is a normal sightline run, the median (or
Hyperband) pruner stops the poor ones from their epoch events, and the study keeps the score.

>>> result = sightline.sweeps("fashion-mnist", recipe="fashion-mnist-fast", trials=20, time="40m")
>>> result.best["params"], result.best["run"]

Every trial is ``run_training`` on the same request with the trial's options: its run folder is
``<study>-t007`` in the runs folder (every face lists it), tagged with its study in the run's
``tracking.json``, and the trial's ``run`` attribute names it back. The score is the run's best
``val_accuracy`` (the test split is never looked at: ``retrain`` evaluates the winner). A trial
that fails (diverged, out of memory) is marked FAIL and the sweep goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sightline.errors import ConfigError
from sightline.sweeps import study as studies
from sightline.sweeps import tracked
from sightline.sweeps.objective import METRIC, Objective
from sightline.sweeps.space import (
    Space,
    check_space,
    default_space,
    load_space,
    parse_dim,
    space_dict,
)

EventFn = Callable[[dict[str, Any]], None]
PRUNERS = ("median", "hyperband", "none")
TRIALS = 20  # a new study's trials, unless told
VAL_SPLIT = 0.1  # what trials are scored on where the plan has no validation split
DONE = ("COMPLETE", "PRUNED")  # trials that count towards --trials (a FAIL is run again)


@dataclass
class SweepRequest:
    """What every trial trains (the study keeps it: a resumed study or another worker reads it)."""

    dataset: Any
    model: str
    recipe: str | None
    data_options: dict[str, Any]
    model_options: dict[str, Any]
    train_options: dict[str, Any]  # held fixed: the options the user set
    space: dict[str, Any]  # space_dict
    trials: int
    seconds: float | None  # the whole sweep's time (None: until --trials)
    runs_dir: str
    pruner: str = "median"
    track: str | None = None
    started: float = field(default_factory=time.time)
    notes: list[str] = field(default_factory=list)  # what the sweep chose, and why

    def trial_budget(self, workers: int) -> float | None:
        """A trial's time budget: the sweep's time shared by its trials (each worker runs its
        share one after another)."""
        if self.seconds is None or "time_budget" in self.train_options:
            return self.train_options.get("time_budget")
        return max(10.0, self.seconds * workers / self.trials)


@dataclass
class TuneResult:
    study: str
    storage: str  # as shown (no password)
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    folder: str | None = None  # the study's figures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tune(
    dataset: Any = None,
    model: str | None = None,
    *,
    recipe: str | None = None,
    trials: int | None = None,
    time_limit: float | None = None,
    space: str | os.PathLike | dict[str, Any] | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    resume: bool = False,
    pruner: str = "median",
    data_options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    runs_dir: str | os.PathLike | None = None,
    seed: int | None = None,
    on_event: EventFn | None = None,
    **train_options: Any,
) -> TuneResult:
    """Sweep ``trials`` runs of ``dataset``/``model``/``recipe`` over ``space`` (default: around
    the plan's own options) in ``workers`` processes; ``time_limit`` seconds in all. ``resume``:
    continue the study ``study`` (its request is in it; ``trials``: its new total). Returns the study's trials and best."""
    from sightline.sweeps.results import summary, write_figures

    if workers < 1 or (trials is not None and trials < 1):
        raise ConfigError("--trials and --workers must be at least 1")
    if pruner not in PRUNERS:
        raise ConfigError(f"pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    if resume:
        if not study:
            raise ConfigError("--resume continues a study: name it with --study NAME")
        url = studies.storage_url(storage, runs_dir)
        found = studies.load_study(study, url)
        request = SweepRequest(**found.user_attrs[studies.REQUEST])
        request.trials = trials or request.trials  # --trials: the study's new total
        request.started, request.seconds = time.time(), time_limit or request.seconds
        found.set_user_attr(studies.REQUEST, asdict(request))
    else:
        request = _request(dataset, model, recipe, space, trials or TRIALS, time_limit, pruner, data_options,
                           model_options, runs_dir, train_options)  # fmt: skip
        study = studies.check_name(study or _study_name(request))
        url = studies.storage_url(storage, runs_dir)
        _create(study, url, request, seed)
        found = studies.load_study(study, url)
    parent = tracked.open_parent(found, request)
    _emit(on_event, "study", study=study, storage=studies.shown_url(url), trials=request.trials,
          workers=workers, space=request.space)  # fmt: skip
    for note in request.notes:
        _emit(on_event, "message", text=note)
    if workers == 1:
        work(study, url, workers=1, on_event=on_event)
    else:
        _spawn(study, url, workers, on_event)
    found = studies.load_study(study, url)
    folder = write_figures(found, studies.study_folder(request.runs_dir, study))
    tracked.close_parent(parent, found, request, folder)
    result = TuneResult(study, studies.shown_url(url), *summary(found), folder=str(folder))
    _emit(on_event, "done", **{k: v for k, v in result.to_dict().items() if k != "trials"})
    return result


def work(study: str, url: str, workers: int = 1, on_event: EventFn | None = None) -> None:
    """One worker: run the study's trials until it has its --trials (finished or pruned) or
    its time is up. Several may run at once, on this machine or others (one storage)."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna = studies.require_optuna()
    stored = studies.load_study(study, url)
    request = SweepRequest(**stored.user_attrs[studies.REQUEST])
    found = optuna.load_study(study_name=study, storage=studies.open_storage(url),
                              pruner=_pruner(request.pruner))  # fmt: skip
    timeout = None
    if request.seconds is not None:
        timeout = max(0.0, request.started + request.seconds - time.time())
    enough = MaxTrialsCallback(request.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
    if _counted(found) >= request.trials or timeout == 0.0:
        return
    parent = stored.user_attrs.get(tracked.PARENT)
    found.optimize(Objective(study, url, request, workers, on_event, parent), timeout=timeout,
                   callbacks=[enough], catch=(Exception,), gc_after_trial=True)  # fmt: skip


def _request(dataset, model, recipe, space, trials, seconds, pruner, data_options, model_options,
             runs_dir, train_options) -> SweepRequest:  # fmt: skip
    """The sweep's request, its space checked: the plan's preview gives the centre."""
    from sightline.plan import TrainRequest, preview
    from sightline.run import runs_root

    fixed = {k: v for k, v in train_options.items() if v is not None}
    request = TrainRequest(dataset, model, recipe, dict(data_options or {}),
                           dict(model_options or {}), fixed)  # fmt: skip
    plan = preview(request).plan
    if (data_options or {}).get("val_split") in (0, 0.0):
        raise ConfigError(
            "a sweep scores its trials on a validation split: --val-split 0 leaves none "
            "(`tune --retrain` trains the best on train + validation)"
        )
    data = dict(data_options or {})
    notes = []
    if plan.data_options.get("val_split") in (0, 0.0):  # a recipe that validates on nothing
        data["val_split"] = VAL_SPLIT
        notes.append(
            f"the trials keep {VAL_SPLIT:.0%} of train aside to be scored on (the plan, "
            f"{plan.recipe or 'as given'}, has no validation split; `tune --retrain` trains "
            "the best on all of it)"
        )
    if isinstance(space, (str, os.PathLike)):
        chosen: Space = load_space(space)
    elif isinstance(space, dict):
        chosen = {k: parse_dim(k, v) for k, v in space.items()}
    else:
        from sightline.models import get_model_entry

        options = {**get_model_entry(plan.model).options(), **plan.model_options}
        chosen = default_space(plan.config, options, frozen=bool(plan.config.freeze))
        chosen = {k: v for k, v in chosen.items() if k not in fixed}  # the user's stay fixed
    if not chosen:
        raise ConfigError("nothing to search: every option of the space is set")
    check_space(chosen, plan.model)
    dataset_ref = str(dataset) if isinstance(dataset, os.PathLike) else dataset
    if isinstance(dataset_ref, str) and os.path.exists(dataset_ref):
        dataset_ref = os.path.abspath(dataset_ref)  # workers may start elsewhere
    return SweepRequest(dataset_ref, plan.model, recipe, data, dict(model_options or {}), fixed,
                        space_dict(chosen), trials, seconds,
                        str(os.path.abspath(runs_root(runs_dir))), pruner, fixed.get("track"),
                        notes=notes)  # fmt: skip


def _study_name(request: SweepRequest) -> str:
    from pathlib import Path

    data = Path(str(request.dataset)).name if request.dataset else "fashion-mnist"
    return f"{data}-{request.model}-tune-{time.strftime('%Y%m%d-%H%M%S')}".replace(":", "-")


def _create(name: str, url: str, request: SweepRequest, seed: int | None) -> None:
    optuna = studies.require_optuna()
    storage = studies.open_storage(url)
    try:
        created = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                      sampler=optuna.samplers.TPESampler(seed=seed))  # fmt: skip
    except optuna.exceptions.DuplicatedStudyError:
        raise ConfigError(
            f"study {name!r} exists in {studies.shown_url(url)}: continue it with "
            f"`sightline tune --resume --study {name}`, or choose another --study"
        ) from None
    created.set_user_attr(studies.REQUEST, asdict(request))
    created.set_user_attr("metric", METRIC)


def _pruner(name: str) -> Any:
    optuna = studies.require_optuna()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "median":  # the first trials run whole: a median of one says nothing
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _counted(study: Any) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state.name in DONE)


def _spawn(study: str, url: str, workers: int, on_event: EventFn | None) -> None:
    """``workers`` processes of ``sightline tune --worker``, the cores shared out; a worker that
    dies is said, and the others go on (its trial is failed by the heartbeat)."""
    from sightline.train import threads_per_process

    env = dict(os.environ, OMP_NUM_THREADS=str(threads_per_process(workers)))
    command = [sys.executable, "-m", "sightline", "tune", "--worker", "--study", study,
               "--storage", url, "--workers", str(workers)]  # fmt: skip
    procs = [subprocess.Popen(command, env=env) for _ in range(workers)]
    for i, p in enumerate(procs):
        code = p.wait()
        if code != 0:
            _emit(on_event, "message", text=f"worker {i + 1} of {workers} ended with code {code}; "
                  "its trial, if any, is marked failed and the study goes on")  # fmt: skip


def _emit(on_event: EventFn | None, kind: str, **data: Any) -> None:
    if on_event is not None:
        on_event({"kind": kind, **data})
