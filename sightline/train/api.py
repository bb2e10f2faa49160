"""``fit`` and ``resume``: the Keras-style entry points to training.

>>> import sightline
>>> data = sightline.load_dataset("fashion-mnist")
>>> model = sightline.create_model("mlp", data.input_shape, data.num_classes)
>>> run = sightline.fit(model, data, epochs=5)
>>> run.evaluate().accuracy
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline import checkpoint as ckpt
from sightline.data.augment import default_reframe
from sightline.data.dataset import Dataset
from sightline.devices import cpu_bf16_is_fast, resolve_device
from sightline.errors import ConfigError, RunError, failure_text
from sightline.fileio import atomic_write_json
from sightline.models import create_model, default_model, get_model_entry
from sightline.runs import ENDED, Run, default_run_name, new_run_dir, write_run_config
from sightline.train import cpu_precision, distributed
from sightline.train.config import TrainConfig, resolve_config
from sightline.train.device_defaults import adapt_to_device
from sightline.train.loop import Trainer
from sightline.train.progress import EventCallback, make_reporter
from sightline.train.time_budget import epochs_for_budget, wants_budget

EventFn = Callable[[dict[str, Any]], None]
INIT_FROM_DATA_IMAGES = 5000  # what a data-initialised layer (airnet's whitening) is computed from


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


def fit(
    model: nn.Module | str | None = None,
    data: Dataset | str | os.PathLike = "fashion-mnist",
    *,
    name: str | None = None,
    runs_dir: str | os.PathLike | None = None,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
    model_options: dict[str, Any] | None = None,
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    **train_options: Any,
) -> Run:
    """Train ``model`` on ``data`` into a new run folder and return the ``Run``.

    Args:
        model: a model from ``create_model`` or a registered model name (built here, seeded);
            None: the data's default model (``default_model``: airnet for Fashion-MNIST, else fastcnn).
        data: a ``Dataset`` or a dataset name / image folder for ``load_dataset``.
        name: run folder name under ``runs_dir`` (default ``<dataset>-<model>-<time>``).
        progress: "auto" (bar on a terminal), "bar", "lines", "json" or "quiet".
        callbacks: extra objects with on_train_begin / on_step / on_epoch_end / on_train_end.
        model_options: options for ``create_model`` when ``model`` is a name.
        on_event: a function that gets every event as a dict with a ``kind`` (see
            ``progress.EventCallback``); the first, ``{"kind": "run", "run_dir": ...}``, comes
            as soon as the run folder exists, before training blocks.
        should_stop: checked between steps; when it returns True the run stops with
            everything saved (status "interrupted", resumable), as after Ctrl-C.
        **train_options: any ``TrainConfig`` field (epochs, lr, batch_size, patience, ...);
            unset ones come from the model's tuned defaults, then sightline's.
    """
    if not isinstance(data, Dataset):
        from sightline.data import load_dataset

        data = load_dataset(data)
    model = default_model(data) if model is None else model
    if isinstance(model, str):
        model = build_model(model, data, train_options.get("seed"), **(model_options or {}))
    elif model_options:
        raise ConfigError("model_options only apply when the model is given by name")
    model_config = getattr(model, "sightline_config", None)
    if model_config is None:
        raise ConfigError(
            "fit needs a model built by sightline.create_model (so the run can save its architecture)"
        )
    if (
        tuple(model_config["input_shape"]) != tuple(data.input_shape)
        or model_config["num_classes"] != data.num_classes
    ):
        raise ConfigError(
            f"the model was built for input {tuple(model_config['input_shape'])} and {model_config['num_classes']} classes, "
            f"but the data has input {data.input_shape} and {data.num_classes} classes"
        )
    data = _as_pretrained_expects(data, model_config)
    _init_from_data(model, data)
    cfg = resolve_config(
        get_model_entry(model_config["name"]).train_defaults,
        pretrained=bool(model_config["options"].get("pretrained")),
        **train_options,
    )
    if cfg.reframe is None:  # resolved here so the run's config.json says what it trained with
        cfg = dataclasses.replace(cfg, reframe=default_reframe(data.preprocess.fit))
    # A recipe's values are defaults too: only what the caller set stays as it is on a GPU.
    given = set(
        cfg.extra.get(
            "given", [k for k, v in train_options.items() if v is not None and k != "extra"]
        )
    )
    _, h, w = data.input_shape
    device_type = resolve_device(cfg.device).type
    cfg, device_notes = adapt_to_device(
        cfg,
        device_type,
        given,
        len(data.train),
        h * w,
        fast_bf16=device_type == "cpu" and cpu_bf16_is_fast(model),
    )
    ctx = distributed.current()  # under torchrun: this process's rank; rank 0 alone writes
    cfg, world_notes = distributed.resolve_for_world(cfg, ctx, model, len(data.train))
    step_s = None  # a training step timed here: bf16 against float32, then for the time budget
    if not ctx.active and cpu_precision.wants_timing(
        model, cfg, device_type, given, len(data.train)
    ):
        cfg, precision_notes, step_s = cpu_precision.choose_precision(model, data, cfg)
        device_notes = [*device_notes, *precision_notes]
    if wants_budget(cfg, given):
        if ctx.active:  # the ranks would each time their own steps and could disagree
            world_notes.append(
                f"time budget: not applied with several processes; trains all {cfg.epochs} epochs"
            )
        else:
            cfg, budget_notes = epochs_for_budget(
                model, data, cfg, step_s, budget_given="time_budget" in given
            )
            device_notes = [*device_notes, *budget_notes]
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
        for line in [*device_notes, *world_notes]:
            on_event({"kind": "message", "text": line, "topic": "device"})
    try:
        trainer = _trainer(
            model, data, cfg, run_dir, _callbacks(progress, callbacks, on_event), should_stop
        )
    except Exception as e:
        if ctx.is_main:  # the folder exists: it says why training never started, not "not started"
            _mark_never_started(run_dir, cfg, e)
        raise
    trainer.fit()
    run = Run(run_dir, strict=ctx.is_main)  # other machines' ranks may not see the folder
    run.data = data
    return run


def _mark_never_started(run_dir: Path, cfg: TrainConfig, error: Exception) -> None:
    with contextlib.suppress(OSError):
        atomic_write_json(
            run_dir / "status.json",
            {
                "status": "failed",
                "error": failure_text(error),
                "epochs_done": 0,
                "epochs": cfg.epochs,
                "global_step": 0,
            },
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
    from sightline.train.transfer import with_pretrained_normalization

    return with_pretrained_normalization(data, model_config["name"])


def _trainer(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    run_dir: Path,
    callbacks: list[Any],
    should_stop: Callable[[], bool] | None,
) -> Trainer:
    if distributed.current().active:
        from sightline.train.distributed_trainer import DistributedTrainer

        return DistributedTrainer(model, data, cfg, run_dir, callbacks, should_stop)
    if not cfg.freeze:
        return Trainer(model, data, cfg, run_dir, callbacks, should_stop)
    from sightline.train.frozen import FrozenFeatureTrainer, supports_frozen_features

    if not supports_frozen_features(model):
        raise ConfigError(
            f"freeze=True trains a head on a pretrained backbone's features; {model.sightline_config['name']} "
            f"has no backbone/head split (use --model efficientnet-lite0 --pretrained)"
        )
    return FrozenFeatureTrainer(model, data, cfg, run_dir, callbacks, should_stop)


def resumable_state(run: Run) -> dict[str, Any]:
    """The saved training state of ``run``; RunError when there is none or the run has ended."""
    state = ckpt.load_state(run.path / "resume.pt")
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
    return resumed
