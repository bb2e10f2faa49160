"""TensorBoard tracking of a training run (issue 55's first slice): one training concern that
writes TensorBoard's event files as the run trains, read by TensorBoard itself
(``tensorboard --logdir RUN/tensorboard``) or any tool that reads its events.

What it writes, each under its own tag:

* ``train/loss``: the running mean loss of the epoch at the optimizer step it was read at (the
  trainer reads it back at most 10x a second: no extra GPU sync);
* ``epoch/<column>``: every number of the epoch's row of ``metrics.csv`` (loss, accuracy,
  val_loss, val_accuracy, lr, time, images_per_sec) at the epoch's number;
* ``plan``: the settled plan's training options, as a Markdown table (text), once;
* after the evaluation (``log_tensorboard_results``, the pipeline calls it): ``test/<metric>``,
  the confusion matrix, the sample predictions and the mistakes as images, and the model's graph
  where it traces.

Resuming writes into the same folder from the step it resumes at (``purge_step``: events a
killed run wrote after its last checkpoint are dropped, so no curve doubles back). The run
folder stays the truth: when the events cannot be written (a full disk, a folder that cannot be
made) it warns once and training goes on.

``sightline.fit(..., callbacks=[TensorBoardTracker()])``; needs ``pip install tensorboard``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from sightline.errors import SightlineError
from sightline.train.callbacks.base import Callback
from sightline.train.callbacks.tracked_metrics import running_loss
from sightline.train.trainer_view import TrainerView

INSTALL_HINT = "pip install tensorboard"
FOLDER = "tensorboard"  # the event files' folder inside the run, by default
EPOCH_TAGS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "images_per_sec")


def require_tensorboard() -> Any:
    """torch's SummaryWriter; SightlineError naming the package when TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise SightlineError(
            f"TensorBoard tracking needs the tensorboard package: {INSTALL_HINT}"
        ) from None
    return SummaryWriter


class TensorBoardTracker(Callback):
    """Writes the run's curves as TensorBoard events into ``log_dir`` (default
    ``<run>/tensorboard``)."""

    state_key = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike | None = None) -> None:
        self.summary_writer = require_tensorboard()  # the class: a missing package, said at once
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.writer: Any = None
        self.failed = False

    def on_train_begin(self, trainer: TrainerView) -> None:
        if not trainer.writes:  # one process of several writes the run (rank 0)
            return
        folder = self.log_dir or trainer.run_dir / FOLDER
        self._guard(lambda: self._open(folder, trainer))

    def _open(self, folder: Path, trainer: TrainerView) -> None:
        # purge_step: a resumed run drops the events written after the step it resumes at
        self.writer = self.summary_writer(str(folder), purge_step=trainer.global_step or None)
        trainer.writer.write_tracking("tensorboard", {"log_dir": str(folder.resolve())})
        cfg = asdict(trainer.cfg) if is_dataclass(trainer.cfg) else dict(vars(trainer.cfg))
        table = "| option | value |\n| --- | --- |\n" + "\n".join(
            f"| {k} | {v} |" for k, v in sorted(cfg.items())
        )
        self.writer.add_text("plan", table, trainer.global_step)

    def on_sums(self, trainer: TrainerView, loss_sum: float, epoch_loss: float | None) -> None:
        loss = running_loss(trainer, loss_sum, epoch_loss)
        if self.writer is None or loss is None:
            return
        self._guard(lambda: self.writer.add_scalar("train/loss", loss, trainer.global_step))

    def on_epoch_end(self, trainer: TrainerView, row: dict[str, Any]) -> None:
        if self.writer is None:
            return

        def write() -> None:
            for tag in EPOCH_TAGS:
                value = row.get(tag)
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"epoch/{tag}", value, row["epoch"])

        self._guard(write)

    def on_save(self, trainer: TrainerView, gen: Any) -> None:
        if self.writer is not None:
            self._guard(self.writer.flush)

    def _guard(self, fn: Any) -> None:
        """Run ``fn``; on an OSError warn once, stop writing events, and let training go on."""
        if self.failed:
            return
        try:
            fn()
        except OSError as e:
            self.failed, self.writer = True, None
            warnings.warn(
                f"TensorBoard events cannot be written ({e}); training goes on, and the run "
                "folder keeps every number",
                stacklevel=2,
            )


RESULT_FIGURES = {"confusion.png": "test/confusion_matrix", "predictions.png": "test/predictions",
                  "mistakes.png": "test/mistakes"}  # fmt: skip  # the report's figures, by tag


def log_tensorboard_results(run: Any, record: dict[str, Any]) -> str:
    """The evaluated run's test metrics, figures and graph into its event folder (``record``:
    its entry of ``tracking.json``); returns where, for a person."""
    import numpy as np
    from PIL import Image

    from sightline.run.layout import RunLayout
    from sightline.train.callbacks.tracked_metrics import evaluation_metrics

    folder, step = record["log_dir"], len(run.history)
    writer = require_tensorboard()(folder)
    try:
        for tag, value in evaluation_metrics(run.evaluation or {}).items():
            writer.add_scalar(tag, value, step)
        plots = RunLayout(run.path).plots
        for name, tag in RESULT_FIGURES.items():
            if (plots / name).is_file() and not (plots / name).is_symlink():
                with Image.open(plots / name) as im:
                    image = np.asarray(im.convert("RGB"))
                writer.add_image(tag, image, step, dataformats="HWC")
        _add_graph(writer, run)
    finally:
        writer.close()
    return f"TensorBoard events in {folder}"


def _add_graph(writer: Any, run: Any) -> None:
    """The model's graph, where torch.jit can trace it (some models cannot: then none)."""
    import torch

    try:
        model = run.load_model().eval()
        example = torch.zeros(1, *run.preprocess.input_shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings: a graph is drawn or not
            writer.add_graph(model, example)
    except Exception:  # noqa: BLE001, S110 - a model the tracer cannot follow has no graph
        pass
