"""``fit`` and ``resume``: the Keras-style entry points to training.

>>> import sightline
>>> data = sightline.load_dataset("fashion-mnist")
>>> model = sightline.create_model("mlp", data.input_shape, data.num_classes)
>>> run = sightline.fit(model, data, epochs=5)
>>> run.evaluate().accuracy
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline.data.dataset import Dataset
from sightline.errors import ConfigError, RunError, failure_text
from sightline.models import create_model
from sightline.plan.config import TrainConfig
from sightline.plan.resolve import (
    Plan,
    TrainRequest,
    check_fits,
    complete,
    resolve,
    run_preprocess,
)
from sightline.run import (
    ENDED,
    Run,
    RunStatus,
    RunWriter,
    default_run_name,
    new_run_dir,
    write_run_config,
)
from sightline.run import checkpoint as ckpt
from sightline.run.layout import RunLayout
from sightline.train import distributed
from sightline.train.loop import Trainer
from sightline.train.machine import measure_for_machine
from sightline.train.progress import EventCallback, make_reporter

EventFn = Callable[[dict[str, Any]], None]
INIT_FROM_DATA_IMAGES = 5000  # what a data-initialised layer (airnet's whitening) is computed from
SKIPPED_SHOWN = 20  # skipped files named one by one in the events; the rest are counted


def build_model(name: str, data: Dataset, seed: int | None = None, **options: Any) -> nn.Module:
    """``create_model`` for ``data``, with initial weights drawn from ``seed`` (default 0)
    without touching the caller's global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else seed)  # reproducible initial weights
        return create_model(name, data.input_shape, data.num_classes, **options)


def _callbacks(progress: str, callbacks: list[Any] | None, on_event: EventFn | None) -> list[Any]:
    return (
        make_reporter(progress)
        + list(callbacks or [])
        + ([EventCallback(on_event)] if on_event else [])
    )


def _emit(on_event: EventFn | None, kind: str, **data: Any) -> None:
    if on_event is not None:
        on_event({"kind": kind, **data})


def fit(
    model: nn.Module | str | None = None,
    data: Dataset | str | os.PathLike | None = None,
    *,
    recipe: str | None = None,
    data_options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    name: str | None = None,
    runs_dir: str | os.PathLike | None = None,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    **train_options: Any,
) -> Run:
    """Train ``model`` on ``data`` into a new run folder and return the ``Run``.

    The same plan as ``sightline train`` and ``run_training`` for the same request
    (``sightline.plan``): a folder gets the folder recipe, pretrained weights a head on frozen
    features unless ``freeze=False``, a named recipe its model and options.

    Args:
        model: a model from ``create_model`` or a registered model name (built here, seeded);
            None: the data's default model (``default_model``: airnet for Fashion-MNIST, else fastcnn).
        data: a ``Dataset`` or a dataset name / image folder for ``load_dataset`` (default: the
            recipe's dataset, else fashion-mnist).
        recipe: a named recipe (``sightline recipes``); options given here override its own.
        data_options: ``load_dataset`` options when ``data`` is a name or folder.
        model_options: options for ``create_model`` when ``model`` is a name.
        name: run folder name under ``runs_dir`` (default ``<dataset>-<model>-<time>``).
        progress: "auto" (bar on a terminal), "bar", "lines", "json" or "quiet".
        callbacks: extra objects with on_train_begin / on_step / on_epoch_end / on_train_end
            (they hear JSON-ready events), or training concerns (``sightline.train.Callback``
            subclasses: their hooks get the trainer, their state is saved for resume).
        on_event: a function that gets every event as a dict with a ``kind`` (see
            ``progress.EventCallback``); ``{"kind": "run", "run_dir": ...}`` comes as soon as
            the run folder exists, before training blocks.
        should_stop: checked between steps; when it returns True the run stops with
            everything saved (status "interrupted", resumable), as after Ctrl-C.
        **train_options: any ``TrainConfig`` field (epochs, lr, batch_size, patience, ...);
            unset ones come from the plan's rules, then the model's tuned defaults, then sightline's.
    """
    built = None
    if isinstance(model, nn.Module):
        built = model
        if getattr(model, "sightline_config", None) is None:
            raise ConfigError(
                "fit needs a model built by sightline.create_model (so the run can save its architecture)"
            )
    elif model is not None and not isinstance(model, str):
        raise ConfigError(
            f"model is a name or a model from sightline.create_model, not {type(model).__name__}"
        )
    request = TrainRequest(
        data, model if isinstance(model, str) else None, recipe, dict(data_options or {}),
        dict(model_options or {}), train_options,
    )  # fmt: skip
    plan, data, net = prepare(request, model=built, progress=progress, on_event=on_event)
    return train_plan(plan, net, data, name=name, runs_dir=runs_dir, progress=progress,
                      callbacks=callbacks, on_event=on_event, should_stop=should_stop)  # fmt: skip


def prepare(
    request: TrainRequest,
    *,
    model: nn.Module | None = None,
    progress: str = "auto",
    on_event: EventFn | None = None,
    observe: Any = None,
    on_data: Callable[[Dataset], None] | None = None,
) -> tuple[Plan, Dataset, nn.Module]:
    """(the completed plan, the data, the model) for ``request``: resolve it, load the data
    (events ``data``; downloads show on the terminal unless ``progress`` is quiet or json),
    build the model from the plan (seeded) unless ``model`` is given, then complete the plan
    (events ``message`` with the plan's notes, ``model``). ``observe``: sees a folder's files
    as they are decoded (``load_dataset(observe=)``); ``on_data``: gets the data once loaded,
    before the model is built (the folder's check)."""
    config = model.sightline_config if model is not None else None
    plan = resolve(request, model_config=config)
    for n in plan.notes:
        _emit(on_event, "message", **n)
    with local_main_first(distributed.current()):
        data = _load(plan.dataset, plan.data_options, progress, on_event, observe)
    _emit(
        on_event, "data", name=data.name, description=data.describe(), classes=list(data.classes),
        sizes={k: len(v) for k, v in data.splits().items()}, input_shape=list(data.input_shape),
        skipped=[list(s) for s in data.skipped[:SKIPPED_SHOWN]], skipped_count=len(data.skipped),
    )  # fmt: skip
    for line in data.notes:
        _emit(on_event, "message", text=line, topic="data")
    if on_data is not None:
        on_data(data)
    if model is None:  # a clear error before a model too large for the machine is allocated
        check_fits(plan, data.input_shape, data.num_classes)
    net = (
        model
        if model is not None
        else build_model(plan.model, data, plan.seed, **plan.model_options)
    )
    _check_shapes(net.sightline_config, data)
    shown = len(plan.notes)
    plan = complete(plan, data, net)
    for n in plan.notes[shown:]:
        if n["topic"] != "device":  # the device's notes come with the run folder
            _emit(on_event, "message", **n)
    if on_event is not None:
        from sightline.models.summary import summary

        s = summary(net)
        trainable = s.trainable
        if plan.config.freeze and isinstance(getattr(net, "classifier", None), nn.Module):
            trainable = sum(p.numel() for p in net.classifier.parameters())  # the backbone stays
        _emit(on_event, "model", name=plan.model, parameters=s.total, trainable=trainable)
    return plan, data, net


def _load(
    dataset: Any, data_options: dict[str, Any], progress: str, on_event: EventFn | None,
    observe: Any = None,
) -> Dataset:  # fmt: skip
    if isinstance(dataset, Dataset):
        return dataset
    from sightline.data import load_dataset

    # Download progress: a bar on the terminal, or events when the caller reads events only.
    shown = progress not in ("quiet", "json")
    dl_progress: Any = shown if (shown or on_event is None) else on_event
    return load_dataset(dataset, **data_options, progress=dl_progress, observe=observe)


def _check_shapes(model_config: dict[str, Any], data: Dataset) -> None:
    if (
        tuple(model_config["input_shape"]) != tuple(data.input_shape)
        or model_config["num_classes"] != data.num_classes
    ):
        raise ConfigError(
            f"the model was built for input {tuple(model_config['input_shape'])} and {model_config['num_classes']} classes, "
            f"but the data has input {data.input_shape} and {data.num_classes} classes"
        )


class local_main_first:
    """Under torchrun, the first process on each machine loads (and downloads) the data while
    the others wait, then they read it from the cache: one download per machine, not per rank."""

    def __init__(self, ctx: distributed.Distributed) -> None:
        self.ctx = ctx

    def __enter__(self) -> None:
        if self.ctx.active and not self.ctx.is_local_main:
            distributed.barrier()

    def __exit__(self, *exc: object) -> None:
        if self.ctx.active and self.ctx.is_local_main and exc[0] is None:
            distributed.barrier()


def train_plan(
    plan: Plan,
    model: nn.Module,
    data: Dataset,
    *,
    name: str | None = None,
    runs_dir: str | os.PathLike | None = None,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Run:
    """Train ``model`` on ``data`` as the completed ``plan`` says, into a new run folder."""
    model_config = model.sightline_config
    data = _as_pretrained_expects(data, model_config)
    _init_from_data(model, data)
    ctx = distributed.current()  # under torchrun: this process's rank; rank 0 alone writes
    cfg, world_notes = distributed.resolve_for_world(plan.config, ctx, model, len(data.train))
    cfg, machine_notes = measure_for_machine(model, data, cfg, plan.given, several=ctx.active)
    # Every rank trains into the folder rank 0 made (its name has rank 0's clock in it).
    run_dir = (
        new_run_dir(runs_dir, name or default_run_name(data.name, model_config["name"]))
        if ctx.is_main
        else None
    )
    run_dir = Path(distributed.broadcast_text(str(run_dir)))
    # A Dataset not made by load_dataset can't be loaded again by name: say so in the run.
    data_options = data.load_options or {"name_or_path": data.name, "in_memory": True}
    if ctx.is_main:
        write_run_config(run_dir, model_config, data_options, cfg.to_dict())
    if on_event is not None and ctx.is_main:
        on_event({"kind": "run", "run_dir": str(run_dir), "name": run_dir.name})
        device_notes = [n["text"] for n in plan.notes if n["topic"] == "device"]
        for line in [*device_notes, *machine_notes, *world_notes]:
            on_event({"kind": "message", "text": line, "topic": "device"})
    try:
        trainer = _trainer(
            model, data, cfg, run_dir, _callbacks(progress, callbacks, on_event), should_stop,
            run_preprocess(cfg, data),  # final before the trainer starts: it changes nothing
        )  # fmt: skip
    except Exception as e:
        if ctx.is_main:  # the folder exists: it says why training never started, not "not started"
            _mark_never_started(run_dir, cfg, e)
        raise
    trainer.fit()
    run = Run(run_dir, strict=ctx.is_main)  # other machines' ranks may not see the folder
    run.data = data
    _calibrate(run, data, cfg.device, on_event)
    return run


UNFINISHED = ("running", "interrupted", "failed")  # no model to calibrate yet, or no good one


def _calibrate(run: Run, data: Dataset, device: str, on_event: EventFn | None) -> None:
    """A finished run's calibrator, fitted on its validation split and kept in its model file
    (``sightline.run.calibrate``): whatever it is used by reports calibrated probabilities."""
    if not distributed.current().is_main or run.status.get("status") in UNFINISHED:
        return
    if data.held_out is None:
        _emit(on_event, "message", text="No validation split: the run's probabilities are not "
              "calibrated and it cannot say 'none of these' (train with a validation or "
              "calibration split, or `sightline calibrate RUN --data DATA` with data that "
              "has one).")  # fmt: skip
        return
    cal = run.calibrate(data, device=device)
    _emit(on_event, "calibration", method=cal["method"], images=cal["images"],
          ece_before=cal["before"]["ece"], ece_after=cal["after"]["ece"],
          fitted_on=cal["fitted_on"], skipped=cal.get("skipped"))  # fmt: skip


def _mark_never_started(run_dir: Path, cfg: TrainConfig, error: Exception) -> None:
    with contextlib.suppress(OSError):
        RunWriter(run_dir).write_status(
            RunStatus(status="failed", error=failure_text(error), epochs=cfg.epochs)
        )


def _init_from_data(model: nn.Module, data: Dataset) -> None:
    """A model whose first layer is computed from the data (airnet's patch whitening) gets the
    first ``INIT_FROM_DATA_IMAGES`` training images, normalised as training will see them. The
    model makes it a no-op once done, so weights loaded from a checkpoint are kept."""
    init = getattr(model, "init_from_data", None)
    if callable(init):
        init(data.preprocess.normalize(data.train.images[:INIT_FROM_DATA_IMAGES]))


def _as_pretrained_expects(data: Dataset, model_config: dict[str, Any]) -> Dataset:
    """A model that starts from pretrained weights sees its inputs normalised as those weights
    expect (and the run saves that Preprocess); any other model, the data's own statistics."""
    if not model_config["options"].get("pretrained"):
        return data
    from sightline.plan.transfer import with_pretrained_normalization

    return with_pretrained_normalization(data, model_config["name"])


def _trainer(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    run_dir: Path,
    callbacks: list[Any],
    should_stop: Callable[[], bool] | None,
    preprocess: Any = None,
) -> Trainer:
    if distributed.current().active:  # freeze is refused there (distributed.resolve_for_world)
        from sightline.train.distributed.world import DistributedWorld

        world = DistributedWorld()
        return Trainer(model, data, cfg, run_dir, callbacks, should_stop, None, world, preprocess)
    if not cfg.freeze:
        return Trainer(model, data, cfg, run_dir, callbacks, should_stop, preprocess=preprocess)
    from sightline.train.frozen import FrozenFeatures, supports_frozen_features

    if not supports_frozen_features(model):
        raise ConfigError(
            f"freeze=True trains a head on a pretrained backbone's features; {model.sightline_config['name']} "
            f"has no backbone/head split (use --model efficientnet-lite0 --pretrained)"
        )
    feed = FrozenFeatures()
    return Trainer(model, data, cfg, run_dir, callbacks, should_stop, feed, preprocess=preprocess)


def resumable_state(run: Run) -> dict[str, Any]:
    """The saved training state of ``run``; RunError when there is none or the run has ended."""
    state = ckpt.load_state(RunLayout(run.path).resume)
    if state.get("status") in ENDED:
        raise RunError(f"{run.path.resolve()} already ended ({state['status']}); nothing to resume")
    return state


def resume(
    run: Run | str | os.PathLike,
    *,
    data: Dataset | None = None,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Run:
    """Continue an interrupted, failed or killed run from its last checkpoint, exactly where it
    stopped. ``run`` is a ``Run`` or a run folder (``Path`` or path string)."""
    run = run if isinstance(run, Run) else Run(Path(run))
    state = resumable_state(run)
    data = data if data is not None else run.load_data()
    model_config = run.config["model"]
    with torch.random.fork_rng(devices=[]):  # its initial weights are replaced by the saved ones
        model = ckpt.build_model({"model": model_config})
    data = _as_pretrained_expects(data, model_config)
    cfg = TrainConfig.from_dict(run.config["train"])
    cfg, _ = distributed.resolve_for_world(cfg, distributed.current(), model, len(data.train))
    if on_event is not None and distributed.current().is_main:
        on_event({"kind": "run", "run_dir": str(run.path), "name": run.name, "resumed": True})
    trainer = _trainer(
        model, data, cfg, run.path, _callbacks(progress, callbacks, on_event), should_stop
    )
    trainer.fit(resume_state=state)
    resumed = Run(run.path)
    resumed.data = data
    _calibrate(resumed, data, cfg.device, on_event)
    return resumed
