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

from sightline.run import Run, RunWriter
from sightline.run.layout import RunLayout

EventFn = Callable[[dict[str, Any]], None]


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
    check: bool = True,
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
            cifar10-airbench, ``plan.recipes.GPU_DEFAULT_RECIPES``).
        data_options: ``load_dataset`` options (classes, val_split, size, channels, ...).
        resume: continue this interrupted run instead of starting a new one.
        evaluate / report: after training, evaluate the best checkpoint on the test split
            (saved in ``evaluations/test.json``) and write the plots and ``report.html``.
        check: before training on an image folder, check it (``sightline.health.check``:
            unreadable files, copies, leaks into test, class counts, odd images; not labels)
            and say what it found; kept in the run as ``check.json``.
        progress: the terminal display ("auto", "bar", "lines", "json", "quiet").
        on_event: gets every step of the job as a dict with a ``kind``: download, data,
            model, run (the folder exists), train_begin, step, epoch, message, train_end,
            evaluation, report, done — or failed, with the error, before it is raised.
        should_stop: checked between training steps; True stops with everything saved.
        **train_options: ``TrainConfig`` fields; unset ones take the model's tuned defaults.
    """
    from sightline.plan import TrainRequest

    request = TrainRequest(
        dataset, model, recipe, data_options or {}, model_options or {}, train_options
    )
    try:
        return _run(request, resume, evaluate, report, check, name, runs_dir, progress,
                    on_event, should_stop)  # fmt: skip
    except BaseException as e:
        _emit(on_event, "failed", error=str(e) or type(e).__name__, type=type(e).__name__)
        raise


def _run(
    request,
    resume,
    evaluate: bool,
    report: bool,
    check: bool,
    name: str | None,
    runs_dir,
    progress: str,
    on_event: EventFn | None,
    should_stop,
) -> TrainingResult:
    from sightline.train import api, distributed

    ctx = distributed.current()  # under torchrun: rank 0 alone reports and writes
    if not ctx.is_main:
        on_event, progress = None, "quiet"
    if resume is not None:
        run = resume if isinstance(resume, Run) else Run(Path(resume))
        api.resumable_state(run)  # an ended run fails here, before its data is loaded
        _emit(on_event, "message", text=f"Resuming {run.path}")
        with api.local_main_first(ctx):
            data = run.load_data() if run.data is None else run.data
        model_config, device = run.config["model"], run.config["train"].get("device", "auto")
        run = api.resume(
            run, data=data, progress=progress, on_event=on_event, should_stop=should_stop
        )
    else:
        # The check reads the images as training decodes them: each file is decoded once.
        reader = _folder_reader(request.dataset) if check and ctx.is_main else None
        labels_file = check and ctx.is_main and reader is None and _is_labels_file(request.dataset)
        checked: list[Any] = []  # the check's report, said as soon as the data is loaded
        on_data = None
        if reader is not None:
            on_data = lambda _: checked.append(_check_folder(reader, on_event))  # noqa: E731
        elif labels_file:
            on_data = lambda d: checked.append(_check_loaded(d, request.dataset, on_event))  # noqa: E731
        plan, data, net = api.prepare(
            request, progress=progress, on_event=on_event, observe=reader and reader.observe,
            on_data=on_data,
        )  # fmt: skip
        health = checked[0] if checked else None
        model_config, device = net.sightline_config, plan.config.device
        run = api.train_plan(plan, net, data, name=name, runs_dir=runs_dir, progress=progress,
                             on_event=on_event, should_stop=should_stop)  # fmt: skip
        if health is not None:
            RunWriter(run.path).write_check(health.to_dict())
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
                balanced_accuracy=round(m.balanced_accuracy, 6),
                loss=m.loss,
                count=m.count,
                path=str(RunLayout(run.path).evaluation("test")),
                without_copies=run.last_evaluation.get("without_copies"),
            )
    if report and ctx.is_main:
        from sightline.report import write_report

        result.report = write_report(run, data=data, metrics=result.metrics)
        _emit(on_event, "report", path=str(result.report), plots=str(RunLayout(run.path).plots))
    if ctx.is_main and run.tracking:  # --track: the evaluation, figures and model there too
        from sightline.train import log_results

        for line in log_results(run, model=result.metrics is not None):
            _emit(on_event, "message", text=f"Tracked: {line}", topic="track")
    _emit(on_event, "done", **result.to_dict())
    return result


def _folder_reader(dataset: Any):
    """What reads an image folder for its check as it is loaded (None: not a folder)."""
    if not isinstance(dataset, (str, os.PathLike)) or not Path(dataset).is_dir():
        return None
    from sightline.health import FolderReader

    return FolderReader(dataset)


def _is_labels_file(dataset: Any) -> bool:
    from sightline.data.labels_file import is_labels_file

    return isinstance(dataset, (str, os.PathLike)) and is_labels_file(dataset)


def _check_folder(reader, on_event: EventFn | None):
    """The data check of an image folder before training on it, on the images loaded."""
    from sightline.health import check

    return _say_check(check(reader.root, labels=False, read=reader.inventory()), on_event)


def _check_loaded(data: Any, labels_file: Any, on_event: EventFn | None):
    """The data check of a labels file's images before training on them: the images as loaded
    (nothing decoded again), named as the file's rows name them."""
    from sightline.health import check
    from sightline.health.scan import scan_dataset

    read = scan_dataset(data, labels_file=Path(labels_file).expanduser().resolve())
    return _say_check(check(labels_file, labels=False, read=read), on_event)


def _say_check(health: Any, on_event: EventFn | None):
    for line in health.brief():
        _emit(on_event, "message", text=line, topic="check")
    return health


def _evaluate_sharded(run: Run, data, model_config: dict[str, Any], device_spec: str, ctx):
    """The test evaluation under torchrun: rank 0's best weights on every rank, each rank's
    share of the test images, the logits gathered; rank 0 saves the result (others get None)."""
    import json

    from sightline.data.preprocess import Preprocess
    from sightline.devices import resolve_device
    from sightline.run import checkpoint as ckpt
    from sightline.train import distributed

    device = distributed.rank_device(resolve_device(device_spec), ctx)
    if ctx.is_main:  # the network's own logits on every rank; the calibrator is applied below
        model, _ = ckpt.load_model(run.model_file("best"), device, calibrated=False)
        preprocess = json.dumps(run.preprocess.to_dict())
    else:
        model, preprocess = ckpt.build_model({"model": model_config}).to(device).eval(), ""
    distributed.broadcast_module(model)
    preprocess = Preprocess.from_dict(json.loads(distributed.broadcast_text(preprocess)))
    logits = distributed.sharded_logits(model, data.test.images, preprocess, device)
    if not ctx.is_main:
        return None
    return run.evaluate(data, split="test", logits=run.calibrator("best").apply(logits))
