"""The whole job in one call: load the data, build the model, train, evaluate on the test
split, write the plots and the report. ``sightline train`` and the web UI's worker are thin
faces over ``run_training``.

>>> result = sightline.run_training("fashion-mnist", "fastcnn", epochs=3,
...                                 on_event=print, should_stop=stop_event.is_set)
>>> result.run.path, result.metrics.accuracy, result.report
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightline.runs import Run

EventFn = Callable[[dict[str, Any]], None]
SKIPPED_SHOWN = 20  # skipped files named one by one in the events; the rest are counted


@dataclass
class TrainingResult:
    run: Run
    status: str
    metrics: Any = None  # evaluate.Metrics on the test split, when there is one
    report: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run": str(self.run.path), "status": self.status}
        if self.metrics is not None:
            out.update(test_accuracy=self.metrics.accuracy, test_loss=self.metrics.loss)
        if self.report is not None:
            out["report"] = str(self.report)
        return out


def _emit(on_event: EventFn | None, kind: str, **data: Any) -> None:
    if on_event is not None:
        on_event({"kind": kind, **data})


def run_training(
    dataset: str | os.PathLike | Any = None,
    model: str | None = None,
    *,
    recipe: str | None = None,
    data_options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    resume: Run | str | os.PathLike | None = None,
    evaluate: bool = True,
    report: bool = True,
    name: str | None = None,
    runs_dir: str | os.PathLike | None = None,
    progress: str = "auto",
    on_event: EventFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    **train_options: Any,
) -> TrainingResult:
    """Train → evaluate → report. Returns a ``TrainingResult`` (run, status, metrics, report).

    Args:
        dataset: a dataset name, an image folder, or a ``Dataset`` (default: the recipe's
            dataset, else fashion-mnist).
        model: a registered model name (default: the recipe's model, else the default model).
        recipe: a named recipe (``sightline recipes``): model, data split and training options
            measured to work together; options given here override its own. None on a CUDA GPU
            with no model given: the dataset's GPU recipe if it has one (all of ``cifar10``:
            cifar10-airbench, ``recipe_book.GPU_DEFAULT_RECIPES``).
        data_options: ``load_dataset`` options (classes, val_split, size, channels, ...).
        resume: continue this interrupted run instead of starting a new one.
        evaluate / report: after training, evaluate the best checkpoint on the test split
            (saved in ``evaluations/test.json``) and write the plots and ``report.html``.
        progress: the terminal display ("auto", "bar", "lines", "json", "quiet").
        on_event: gets every step of the job as a dict with a ``kind``: download, data,
            model, run (the folder exists), train_begin, step, epoch, message, train_end,
            evaluation, report, done — or failed, with the error, before it is raised.
        should_stop: checked between training steps; True stops with everything saved.
        **train_options: ``TrainConfig`` fields; unset ones take the model's tuned defaults.
    """
    try:
        return _run(
            dataset,
            model,
            recipe,
            data_options or {},
            model_options or {},
            resume,
            evaluate,
            report,
            name,
            runs_dir,
            progress,
            on_event,
            should_stop,
            train_options,
        )
    except BaseException as e:
        _emit(on_event, "failed", error=str(e) or type(e).__name__, type=type(e).__name__)
        raise


def _load(dataset, data_options: dict[str, Any], progress: str, on_event: EventFn | None):
    from sightline.data import Dataset, load_dataset

    if isinstance(dataset, Dataset):
        return dataset
    # Download progress: a bar on the terminal, or events when the caller reads events only.
    shown = progress not in ("quiet", "json")
    dl_progress: Any = shown if (shown or on_event is None) else on_event
    return load_dataset(dataset, **data_options, progress=dl_progress)


def _with_folder_recipe(
    data, model: str, train_options: dict[str, Any], on_event: EventFn | None
) -> dict[str, Any]:
    """``train_options`` completed by the folder recipe when ``data`` is a user's folder (only
    for options the user left unset: user > folder recipe > model defaults > DEFAULTS), after
    telling the caller, as ``message`` events, what was chosen for the data and the training."""
    from sightline.train.recipes import folder_recipe, is_user_folder

    if not is_user_folder(data):
        return train_options
    given = {k: v for k, v in train_options.items() if v is not None}
    chosen, notes = folder_recipe(data, model, given)
    for line in notes:
        _emit(on_event, "message", text=line, topic="recipe")
    if data.preprocess.channels == 3:
        from sightline.models.pretrained import weights_available

        if weights_available():
            # A suggestion, not the default: it changes the model, the input size (224 px) and the
            # cost of predicting; measured on 600 CIFAR-10 photos: 96.5 % vs 86.7 % from scratch.
            _emit(
                on_event,
                "message",
                topic="recipe",
                text="Tip: for photos, --pretrained (ImageNet features + a new head) is usually far better with "
                "few images: 96.5 % vs 86.7 % from scratch on 600 CIFAR-10 photos",
            )
    out = {**train_options, **chosen}
    if "extra" not in given:  # the run's config.json then says why it was trained this way
        out["extra"] = {"recipe": "folder", "chosen": chosen, "notes": [*data.notes, *notes]}
    return out


def _with_named_recipe(
    recipe: str, dataset, model, model_options, data_options, train_options, on_event
):
    """The recipe's model and options under the caller's own; says what it chose."""
    from sightline.train.recipe_book import VARIANTS, apply_recipe, for_machine, get_recipe

    r = for_machine(
        get_recipe(recipe), model, train_options.get("device"), train_options.get("amp")
    )
    model, model_options, data_options, train_options = apply_recipe(
        r, model, model_options, data_options, train_options
    )
    dataset = r.dataset if dataset is None else dataset
    if isinstance(dataset, (str, os.PathLike)) and str(dataset) != r.dataset:
        _emit(
            on_event,
            "message",
            topic="recipe",
            text=f"recipe {r.name} is tuned for {r.dataset}, not {dataset}: "
            "its settings may not suit these images",
        )
    where = f" (its variant {VARIANTS[r.variant][1]})" if r.variant else ""
    _emit(
        on_event,
        "message",
        topic="recipe",
        text=f"recipe {r.name}{where}: {r.model} {model_options or ''}, "
        + ", ".join(f"{k} {v}" for k, v in {**r.data_options, **r.train_options}.items()),
    )
    return dataset, model, model_options, data_options, train_options


def _gpu_default_recipe(
    dataset, model, model_options, data_options, train_options, on_event
) -> str | None:
    from sightline.train.recipe_book import gpu_default_recipe

    recipe = gpu_default_recipe(
        dataset, model, model_options, data_options, train_options.get("device")
    )
    if recipe is not None:
        _emit(
            on_event,
            "message",
            topic="recipe",
            text=f"GPU: training {dataset} with recipe {recipe}, its best "
            f"here (--model NAME trains a model with its own defaults instead)",
        )
    return recipe


def _run(
    dataset,
    model,
    recipe,
    data_options,
    model_options,
    resume,
    evaluate,
    report,
    name,
    runs_dir,
    progress,
    on_event,
    should_stop,
    train_options,
) -> TrainingResult:
    from torch import nn

    from sightline.models import default_model, get_model_entry
    from sightline.models.summary import summary
    from sightline.train import api, distributed

    ctx = distributed.current()  # under torchrun: rank 0 alone reports and writes
    if not ctx.is_main:
        on_event, progress = None, "quiet"
    if resume is not None:
        run = resume if isinstance(resume, Run) else Run(Path(resume))
        api.resumable_state(run)  # an ended run fails here, before its data is loaded
        _emit(on_event, "message", text=f"Resuming {run.path}")
        with _local_main_first(ctx):
            data = run.load_data() if run.data is None else run.data
        model_config, device = run.config["model"], run.config["train"].get("device", "auto")
        run = api.resume(
            run, data=data, progress=progress, on_event=on_event, should_stop=should_stop
        )
    else:
        if recipe is None:
            recipe = _gpu_default_recipe(
                dataset, model, model_options, data_options, train_options, on_event
            )
        if recipe is not None:
            dataset, model, model_options, data_options, train_options = _with_named_recipe(
                recipe, dataset, model, model_options, data_options, train_options, on_event
            )
        dataset = "fashion-mnist" if dataset is None else dataset
        if model_options.get("pretrained"):
            from sightline.data import Dataset
            from sightline.train.transfer import default_pretrained_model, transfer_data_options

            model = model or default_pretrained_model()
            if not isinstance(
                dataset, Dataset
            ):  # prepared at the size and channels the weights expect
                data_options = transfer_data_options(model, data_options)
        model = model or default_model(dataset)
        get_model_entry(model)  # an unknown name fails before any data is loaded
        with _local_main_first(ctx):
            data = _load(dataset, data_options, progress, on_event)
        _emit(
            on_event,
            "data",
            name=data.name,
            description=data.describe(),
            classes=list(data.classes),
            sizes={k: len(v) for k, v in data.splits().items()},
            input_shape=list(data.input_shape),
            skipped=[list(s) for s in data.skipped[:SKIPPED_SHOWN]],
            skipped_count=len(data.skipped),
        )
        for line in data.notes:
            _emit(on_event, "message", text=line, topic="data")
        if recipe is None and not model_options.get(
            "pretrained"
        ):  # the folder recipe: from scratch
            train_options = _with_folder_recipe(data, model, train_options, on_event)
        net = api.build_model(model, data, train_options.get("seed"), **model_options)
        s = summary(net)
        trainable = s.trainable
        if train_options.get("freeze") and isinstance(getattr(net, "classifier", None), nn.Module):
            trainable = sum(
                p.numel() for p in net.classifier.parameters()
            )  # the backbone stays as it is
        _emit(on_event, "model", name=model, parameters=s.total, trainable=trainable)
        model_config, device = net.sightline_config, train_options.get("device") or "auto"
        run = api.fit(
            net,
            data,
            name=name,
            runs_dir=runs_dir,
            progress=progress,
            on_event=on_event,
            should_stop=should_stop,
            **train_options,
        )
    # Rank 0's word: other machines' ranks may not see the run folder.
    status = distributed.broadcast_text(run.status.get("status", "unknown") if ctx.is_main else "")
    result = TrainingResult(run, status)
    if status == "interrupted":
        _emit(on_event, "done", **result.to_dict())
        return result
    if evaluate:
        if data.test is None:
            _emit(
                on_event,
                "message",
                text="No test split: skipped the final evaluation (evaluate a labelled folder "
                "with `sightline evaluate RUN --data FOLDER`).",
            )
        elif ctx.active:
            result.metrics = _evaluate_sharded(run, data, model_config, device, ctx)
        else:
            result.metrics = run.evaluate(data, split="test")
        if result.metrics is not None:
            m = result.metrics
            _emit(
                on_event,
                "evaluation",
                split="test",
                accuracy=m.accuracy,
                loss=m.loss,
                count=m.count,
                path=str(run.path / "evaluations" / "test.json"),
            )
    if report and ctx.is_main:
        from sightline.report import write_report

        result.report = write_report(run, data=data, metrics=result.metrics)
        _emit(on_event, "report", path=str(result.report), plots=str(run.path / "plots"))
    _emit(on_event, "done", **result.to_dict())
    return result


class _local_main_first:
    """Under torchrun, the first process on each machine loads (and downloads) the data while
    the others wait, then they read it from the cache: one download per machine, not per rank."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    def __enter__(self) -> None:
        if self.ctx.active and not self.ctx.is_local_main:
            from sightline.train import distributed

            distributed.barrier()

    def __exit__(self, *exc: object) -> None:
        if self.ctx.active and self.ctx.is_local_main and exc[0] is None:
            from sightline.train import distributed

            distributed.barrier()


def _evaluate_sharded(run: Run, data, model_config: dict[str, Any], device_spec: str, ctx):
    """The test evaluation under torchrun: rank 0's best weights on every rank, each rank's
    share of the test images, the logits gathered; rank 0 saves the result (others get None)."""
    import json

    from sightline import checkpoint as ckpt
    from sightline.data.preprocess import Preprocess
    from sightline.devices import resolve_device
    from sightline.train import distributed

    device = distributed.rank_device(resolve_device(device_spec), ctx)
    if ctx.is_main:
        model = run.load_model("best", device)
        preprocess = json.dumps(run.preprocess.to_dict())
    else:
        model, preprocess = ckpt.build_model({"model": model_config}).to(device).eval(), ""
    distributed.broadcast_module(model)
    preprocess = Preprocess.from_dict(json.loads(distributed.broadcast_text(preprocess)))
    logits = distributed.sharded_logits(model, data.test.images, preprocess, device)
    return run.evaluate(data, split="test", logits=logits) if ctx.is_main else None
