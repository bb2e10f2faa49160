"""``fit`` and ``resume``: the Keras-style entry points to training.

>>> import sightline
>>> data = sightline.load_dataset("fashion-mnist")
>>> model = sightline.create_model("mlp", data.input_shape, data.num_classes)
>>> run = sightline.fit(model, data, epochs=5)
>>> run.evaluate().accuracy
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline import checkpoint as ckpt
from sightline.data.dataset import Dataset
from sightline.errors import ConfigError, RunError
from sightline.models import DEFAULT_MODEL, create_model, get_model_entry
from sightline.runs import Run, default_run_name, new_run_dir, write_run_config
from sightline.train.config import TrainConfig, resolve_config
from sightline.train.loop import Trainer
from sightline.train.progress import make_reporter


def fit(
    model: nn.Module | str = DEFAULT_MODEL,
    data: Dataset | str | os.PathLike = "fashion-mnist",
    *,
    name: str | None = None,
    runs_dir: str | os.PathLike | None = None,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
    model_options: dict[str, Any] | None = None,
    **train_options: Any,
) -> Run:
    """Train ``model`` on ``data`` into a new run folder and return the ``Run``.

    Args:
        model: a model from ``create_model`` or a registered model name (built here, seeded).
        data: a ``Dataset`` or a dataset name / image folder for ``load_dataset``.
        name: run folder name under ``runs_dir`` (default ``<dataset>-<model>-<time>``).
        progress: "auto" (bar on a terminal), "bar", "lines", "json" or "quiet".
        callbacks: extra objects with on_train_begin / on_step / on_epoch_end / on_train_end.
        model_options: options for ``create_model`` when ``model`` is a name.
        **train_options: any ``TrainConfig`` field (epochs, lr, batch_size, patience, ...);
            unset ones come from the model's tuned defaults, then sightline's.
    """
    if not isinstance(data, Dataset):
        from sightline.data import load_dataset

        data = load_dataset(data)
    seed = train_options.get("seed")
    if isinstance(model, str):
        torch.manual_seed(0 if seed is None else seed)  # reproducible initial weights
        model = create_model(model, data.input_shape, data.num_classes, **(model_options or {}))
    elif model_options:
        raise ConfigError("model_options only apply when the model is given by name")
    model_config = getattr(model, "sightline_config", None)
    if model_config is None:
        raise ConfigError("fit needs a model built by sightline.create_model (so the run can save its architecture)")
    if tuple(model_config["input_shape"]) != tuple(data.input_shape) or model_config["num_classes"] != data.num_classes:
        raise ConfigError(
            f"the model was built for input {tuple(model_config['input_shape'])} and {model_config['num_classes']} classes, "
            f"but the data has input {data.input_shape} and {data.num_classes} classes"
        )
    cfg = resolve_config(get_model_entry(model_config["name"]).train_defaults, **train_options)
    run_dir = new_run_dir(runs_dir, name or default_run_name(data.name, model_config["name"]))
    write_run_config(run_dir, model_config, data.load_options or {"name_or_path": data.name}, cfg)
    trainer = Trainer(model, data, cfg, run_dir, make_reporter(progress) + list(callbacks or []))
    trainer.fit()
    run = Run(run_dir)
    run.data = data
    return run


def resume(
    run: Run | str | os.PathLike,
    *,
    data: Dataset | None = None,
    progress: str = "auto",
    callbacks: list[Any] | None = None,
) -> Run:
    """Continue an interrupted or killed run from its last checkpoint, exactly where it stopped."""
    run = run if isinstance(run, Run) else Run(Path(run))
    state = ckpt.load_state(run.path / "resume.pt")
    if state.get("status") in ("finished", "early_stopped", "max_steps"):
        raise RunError(f"{run.path} already ended ({state['status']}); nothing to resume")
    data = data if data is not None else run.load_data()
    model_config = run.config["model"]
    model = create_model(model_config["name"], tuple(model_config["input_shape"]), model_config["num_classes"], **model_config["options"])
    cfg = TrainConfig.from_dict(run.config["train"])
    trainer = Trainer(model, data, cfg, run.path, make_reporter(progress) + list(callbacks or []))
    trainer.fit(resume_state=state)
    resumed = Run(run.path)
    resumed.data = data
    return resumed
