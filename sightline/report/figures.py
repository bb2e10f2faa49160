"""Every figure of a run, in one registry: the report draws them all into ``<run>/plots/``,
``sightline plot KIND RUN`` draws one, and the web UI shows the saved PNGs in this order with
these captions (``GET /api/runs/{id}``: ``plots`` and ``plot_captions``).

A figure is drawn from a ``RunView``: the run, and what its figures need (its data, the
evaluation of its test split, its model, one image looked inside), each computed once, when a
figure first needs it: ``sightline plot confusion`` reads the saved evaluation and never loads
the images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sightline.run import Run

LEGEND = (
    "blue = right (or the true class), red = wrong"  # the one colour convention of every caption
)


@dataclass(frozen=True)
class FigureSpec:
    name: str  # the PNG's stem in plots/ (and a `sightline plot` kind where one exists)
    caption: str
    draw: Callable[[RunView], Any]  # a matplotlib Figure, or None when the run has nothing to show
    missing: str = "has nothing to show"  # why there is none, after the run's name


@dataclass
class RunFigures:
    """Figures of one run, by name, plus the numbers the report prints."""

    figures: dict[str, Any] = field(default_factory=dict)
    metrics: Any = None
    split: str = "test"
    example: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # name → PNG on disk, once saved
    sizes: dict[str, int] = field(default_factory=dict)  # images per split


class RunView:
    """What a run's figures are drawn from. ``data``: the run's dataset when the caller has it
    (else loaded when a figure needs images); ``metrics``: an evaluation of ``split`` just made;
    ``split``: the one to show (default: test, else validation)."""

    def __init__(self, run: Run, data=None, metrics=None, split: str | None = None,
                 rows: int = 5, cols: int = 5, top_k: int = 16, seed: int = 0,
                 on_progress: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.run, self._data, self._metrics, self._split = run, data, metrics, split
        self.rows, self.cols, self.top_k, self.seed = rows, cols, top_k, seed
        self.say = on_progress or (lambda text: None)

    @cached_property
    def data(self):
        return self._data if self._data is not None else self.run.load_data()

    @cached_property
    def split(self) -> str:
        if self._split is not None:
            return self._split
        splits = self.data.splits()
        for name in ("test", "val"):
            if name in splits:
                return name
        from sightline.errors import RunError

        raise RunError(
            f"{self.data.name} has no test or validation split to report on (it has: {', '.join(splits)})"
        )

    @cached_property
    def results(self):
        """(metrics, images) of the split: the saved evaluation when it is of the current model."""
        m, images = self._metrics, self.data.splits()[self.split]
        if m is None or m.count != len(images) or m.logits is None:
            self.say(
                f"Reading the {self.split} predictions (evaluating only if none are saved for this model) ..."
            )
            m, images = self.run.split_results(self.split, data=self.data)
        return m, images

    @cached_property
    def confusion_metrics(self):
        """The split's metrics, from the saved evaluation alone when there is one (no images)."""
        if self._metrics is not None or "results" in self.__dict__:
            return self.results[0]
        split = self._split or "test"
        saved = self.run.saved_results(split) if self._data is None else None
        return saved if saved is not None else self.results[0]

    @cached_property
    def model(self):
        return self.run.load_model()

    @cached_property
    def inspection(self):
        """The first image of the split looked inside: every layer's output, saliency."""
        from sightline import inspect as insp

        first = self.results[1].images[0]
        return insp.inspect_image(self.model, self.run.preprocess, first, classes=self.run.classes)

    @property
    def dark(self) -> bool:
        return self.run.preprocess.dark_background


# ----------------------------------------------------------------------------- the figures
def _curves(v: RunView):
    from sightline import plots

    if not v.run.history:
        return None
    status = v.run.status
    stopped = status.get("epochs_done") if status.get("status") == "early_stopped" else None
    return plots.plot_curves(
        v.run.history, best_epoch=status.get("best_epoch"), stopped_epoch=stopped
    )


def _per_class(v: RunView):
    from sightline import plots

    return plots.plot_per_class_accuracy(v.confusion_metrics.confusion, v.run.classes)


def _confusion(normalize: bool) -> Callable[[RunView], Any]:
    def draw(v: RunView):
        from sightline import plots

        return plots.plot_confusion(
            v.confusion_metrics.confusion, v.run.classes, normalize=normalize
        )

    return draw


def _reliability(v: RunView):
    from sightline import plots
    from sightline.infer.calibration import reliability_bins

    m = v.confusion_metrics
    labels = m.labels
    bins = reliability_bins(m.probabilities, labels)
    before = None
    if not m.calibrator.identity and m.uncalibrated is not None:
        raw = m.calibrator.invert(m.logits).softmax(1)
        before = (reliability_bins(raw, labels), m.uncalibrated.ece)
    return plots.plot_reliability(bins, m.calibration.ece, before)


def _predictions(only_mistakes: bool) -> Callable[[RunView], Any]:
    def draw(v: RunView):
        from sightline import plots

        m, images = v.results
        return plots.plot_predictions(images.images, images.labels, m.probabilities, v.run.classes,
                                      v.rows, v.cols, only_mistakes=only_mistakes, dark_background=v.dark)  # fmt: skip

    return draw


def _probabilities(v: RunView):
    from sightline import plots

    m, images = v.results
    return plots.plot_probability_grid(images.images, images.labels, m.probabilities, v.run.classes,
                                       v.rows, min(v.cols, 3), dark_background=v.dark)  # fmt: skip


def _top_losses(v: RunView):
    from sightline import plots

    m, images = v.results
    return plots.plot_top_losses(images.images, images.labels, m.probabilities, m.losses,
                                 v.run.classes, k=v.top_k, dark_background=v.dark)  # fmt: skip


def _saliency(v: RunView):
    from sightline import inspect as insp

    images = v.results[1]
    label = v.run.classes[int(images.labels[0])]
    return insp.plot_saliency(images.images[0], v.inspection.saliency, title=f"true {label}")


def _filters(v: RunView):
    from sightline import inspect as insp

    return insp.plot_filters(v.model) if insp.conv_layers(v.model) else None


def _dense_weights(v: RunView):
    import torch

    from sightline import inspect as insp

    if insp.conv_layers(v.model) or not any(
        isinstance(m, torch.nn.Linear) for m in v.model.modules()
    ):
        return None
    return insp.plot_dense_weights(v.model, v.run.preprocess.input_shape)


def _activations(v: RunView):
    from sightline import inspect as insp

    return insp.plot_activations(v.inspection.outputs, max_channels=16)


def _samples(v: RunView):
    from sightline import plots

    train = v.data.train
    return plots.plot_samples(train.images, train.labels, v.run.classes, v.rows, v.cols,
                              random=True, seed=v.seed, dark_background=v.dark)  # fmt: skip


def _schedule(v: RunView):
    loaded = v.__dict__.get("data", v._data)  # the steps per epoch: from the status, else the data
    return schedule_figure(v.run, len(loaded.train) if loaded is not None else 0)


def schedule_figure(run: Run, train_size: int):
    """The run's learning-rate schedule, from the step plan training used (config.plan_steps)."""
    from sightline import plots
    from sightline.plan.config import TrainConfig, plan_steps

    cfg = TrainConfig.from_dict(run.config["train"])
    plan = plan_steps(run.status.get("train_size") or train_size, cfg)
    return plots.plot_lr_schedule(
        cfg.lr, cfg.schedule, cfg.warmup, cfg.epochs, plan.steps_per_epoch,
        stop_step=plan.stop_step if plan.stop_step < plan.total_steps else None,
    )  # fmt: skip


# In the order the report and the run page show them.
FIGURES: dict[str, FigureSpec] = {f.name: f for f in (
    FigureSpec("curves", "loss and accuracy per epoch: train (blue) vs validation (orange)", _curves,
               "has no finished epoch yet: nothing to plot"),
    FigureSpec("per-class-accuracy", "accuracy (recall) per class", _per_class),
    FigureSpec("confusion", "counts: rows true class, columns predicted", _confusion(False)),
    FigureSpec("confusion-normalized", "share of each true class", _confusion(True)),
    FigureSpec("reliability", "how often it is right against how sure it says it is (calibration)",
               _reliability),
    FigureSpec("predictions", f"predicted (confidence) (true): {LEGEND}", _predictions(False)),
    FigureSpec("mistakes", f"mistakes only: {LEGEND}", _predictions(True)),
    FigureSpec("probabilities", f"class probabilities: {LEGEND}", _probabilities),
    FigureSpec("top-losses", f"the images the model got most confidently wrong: {LEGEND}", _top_losses),
    FigureSpec("saliency", "saliency: where the evidence for the prediction is", _saliency),
    FigureSpec("filters", "the first convolutional layer's filters", _filters, "has no convolution"),
    FigureSpec("dense-weights", "the first dense layer's weights as images", _dense_weights,
               "has convolutions (see its filters) or no dense layer"),
    FigureSpec("activations", "the output of every layer for this image", _activations),
    FigureSpec("samples", "training images with their labels", _samples),
    FigureSpec("schedule", "the learning-rate schedule", _schedule),
)}  # fmt: skip


def caption(name: str) -> str:
    """The figure's caption; a PNG the registry does not know (drawn by hand) gets its name."""
    spec = FIGURES.get(name)
    return spec.caption if spec is not None else name.replace("-", " ").replace("_", " ")


def order(names: list[str]) -> list[str]:
    """``names`` in the registry's order, unknown ones after, alphabetically."""
    rank = {n: i for i, n in enumerate(FIGURES)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))
