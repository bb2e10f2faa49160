"""Pictures of results: training curves, confusion matrices, per-class accuracy, lr schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from sightline.errors import ConfigError, DataError
from sightline.plots.style import CORRECT, FONT, TRAIN, VAL, WRONG, as_numpy, new_figure


def _square(confusion, classes: Sequence[str]) -> np.ndarray:
    cm = as_numpy(confusion)
    if cm.shape != (len(classes), len(classes)):
        raise DataError(
            f"confusion matrix has shape {tuple(cm.shape)} but there are {len(classes)} class names"
        )
    return cm


def plot_curves(
    history: Sequence[dict[str, Any]],
    best_epoch: int | None = None,
    stopped_epoch: int | None = None,
) -> Figure:
    """Loss and accuracy per epoch, train vs validation; best epoch and early stop marked.

    ``val_loss`` / ``val_accuracy`` may be None or missing (no validation split): only the
    training curve is drawn then.
    """
    fig = new_figure(9, 3.9)
    if not history:
        fig.text(0.5, 0.5, "no epochs recorded yet", ha="center", va="center", fontsize=FONT + 2)
        return fig
    epochs = [r["epoch"] for r in history]
    for ax, key, title in zip(
        fig.subplots(1, 2), ("loss", "accuracy"), ("Loss", "Accuracy"), strict=True
    ):
        train = [
            (e, r.get(key)) for e, r in zip(epochs, history, strict=True) if r.get(key) is not None
        ]
        ax.plot(
            [e for e, _ in train], [v for _, v in train], "o-", color=TRAIN, label="train", ms=4
        )
        val = [
            (e, r.get(f"val_{key}"))
            for e, r in zip(epochs, history, strict=True)
            if r.get(f"val_{key}") is not None
        ]
        if val:
            ax.plot(
                [e for e, _ in val], [v for _, v in val], "s-", color=VAL, label="validation", ms=4
            )
        if best_epoch is not None:
            ax.axvline(best_epoch, color=CORRECT, ls="--", lw=1, label=f"best (epoch {best_epoch})")
        if stopped_epoch is not None:
            ax.axvline(
                stopped_epoch,
                color=WRONG,
                ls=":",
                lw=1.2,
                label=f"early stop (epoch {stopped_epoch})",
            )
        ax.set_title(title, fontsize=FONT + 2)
        ax.set_xlabel("epoch", fontsize=FONT)
        ax.set_xticks(
            epochs
            if len(epochs) <= 20
            else np.unique(np.linspace(epochs[0], epochs[-1], 10).round().astype(int))
        )
        ax.grid(alpha=0.3)
    # One legend under both panels: inside an axes it hides the curves or the epoch markers.
    fig.legend(
        *ax.get_legend_handles_labels(),
        loc="outside lower center",
        ncols=4,
        fontsize=FONT,
        frameon=False,
    )
    return fig


def plot_confusion(confusion, classes: Sequence[str], normalize: bool = False) -> Figure:
    """Heatmap of counts (or row-normalised %), rows = true class, columns = predicted."""
    cm = _square(confusion, classes).astype(float)
    values = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    k = len(classes)
    size = min(max(4.5, 0.55 * k + 2.5), 20.0)  # capped: 100 classes would be a 57-inch figure
    fig = new_figure(size + 1, size)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(
        im,
        ax=ax,
        shrink=0.8,
        label="share of the true class" if normalize else "images",
        format=PercentFormatter(1.0, decimals=0) if normalize else None,
    )
    tick_font = min(
        FONT, max(4, 600 // max(k, 1))
    )  # many classes: smaller names, still one per row
    ax.set_xticks(
        range(k),
        classes,
        rotation=45 if k <= 30 else 90,
        ha="right" if k <= 30 else "center",
        fontsize=tick_font,
    )
    ax.set_yticks(range(k), classes, fontsize=tick_font)
    ax.set_xlabel("predicted", fontsize=FONT + 1)
    ax.set_ylabel("true", fontsize=FONT + 1)
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""), fontsize=FONT + 2)
    top = values.max() if values.size else 1
    cell_font = FONT - 1 if k <= 12 else 6
    if k > 30:  # cells too small for numbers: the colours carry it
        return fig
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            text = f"{v:.0%}" if normalize else f"{int(v)}"
            if k > 20 and v == 0:
                continue
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=cell_font,
                color="white" if v > top * 0.55 else "black",
            )
    return fig


def plot_per_class_accuracy(confusion, classes: Sequence[str]) -> Figure:
    """Per-class accuracy (recall) as horizontal bars, worst class easy to spot."""
    cm = _square(confusion, classes).astype(float)
    acc = np.diag(cm) / np.maximum(cm.sum(1), 1)
    mean = float(acc.mean()) if acc.size else 0.0
    fig = new_figure(6.5, max(2.5, 0.32 * len(classes) + 1))
    ax = fig.add_subplot()
    ax.barh(range(len(classes)), acc, color=[CORRECT if a >= mean else WRONG for a in acc])
    ax.set_yticks(range(len(classes)), classes, fontsize=FONT)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.axvline(mean, color="black", lw=1, ls="--")
    # Values in a column right of the axes, so neither the bars nor the mean line cross them.
    for i, a in enumerate(acc):
        ax.annotate(
            f"{a:.1%}",
            (1.0, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=FONT - 1,
            annotation_clip=False,
        )
    ax.set_xlabel("accuracy (recall)", fontsize=FONT)
    ax.set_title(
        f"Per-class accuracy (dashed: mean {mean:.1%}; red: below the mean)", fontsize=FONT
    )
    return fig


def most_confused(confusion, classes: Sequence[str], k: int = 5) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells: (true class, predicted class, count)."""
    cm = _square(confusion, classes).copy()
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm, axis=None, kind="stable")[:k]
    pairs = [
        (classes[i // len(classes)], classes[i % len(classes)], int(cm.flat[i])) for i in order
    ]
    return [p for p in pairs if p[2] > 0]


def plot_lr_schedule(
    lr: float,
    schedule: str,
    warmup: float,
    epochs: int,
    steps_per_epoch: int,
    stop_step: int | None = None,
) -> Figure:
    """The learning rate at every step of a training config; ``stop_step`` (max_steps) marks
    where the run ends before the schedule does."""
    from sightline.train.optim import lr_factor

    if epochs < 1 or steps_per_epoch < 1:
        raise ConfigError(
            f"cannot draw a schedule of {epochs} epochs x {steps_per_epoch} steps: both must be at least 1"
        )
    total = epochs * steps_per_epoch
    steps = np.arange(total)
    values = [lr * lr_factor(schedule, int(s), total, warmup) for s in steps]
    fig = new_figure(6, 3)
    ax = fig.add_subplot()
    ax.plot(steps / steps_per_epoch, values, color=TRAIN)
    ax.set_xlabel("epoch", fontsize=FONT)
    ax.set_ylabel("learning rate", fontsize=FONT)
    ax.set_title(
        f"{schedule} schedule: peak {lr:g}, warm-up {warmup:.0%}, {epochs} epochs x {steps_per_epoch} steps",
        fontsize=FONT,
    )
    if stop_step is not None and stop_step < total:
        ax.axvline(
            stop_step / steps_per_epoch,
            color=WRONG,
            ls=":",
            lw=1.2,
            label=f"stops at step {stop_step:,} (max steps)",
        )
        ax.legend(fontsize=FONT - 1)
    ax.grid(alpha=0.3)
    return fig


def plot_reliability(
    bins: tuple[Any, Any, Any],
    ece: float,
    before: tuple[tuple[Any, Any, Any], float] | None = None,
) -> Figure:
    """Reliability diagram: per bin of the top probability, how often the answer was right
    (bars) against how sure it said it was (the diagonal: perfect calibration). ``bins``:
    ``infer.calibration.reliability_bins`` (images, confidence, accuracy); ``before``: the same
    and the ECE of the network's own probabilities, drawn as a line."""
    count, confidence, accuracy = (np.asarray(b, dtype=float) for b in bins)
    n = len(count)
    edges = np.linspace(0, 1, n + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, 1.0 / n
    used = count > 0
    fig = new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.bar(centres[used], accuracy[used], width=width * 0.92, color=CORRECT, alpha=0.85,
           label=f"calibrated (ECE {ece:.2%})")  # fmt: skip
    gap_bottom = np.minimum(accuracy, confidence)
    ax.bar(centres[used], np.abs(confidence - accuracy)[used], bottom=gap_bottom[used],
           width=width * 0.92, color=WRONG, alpha=0.35, label="gap to its confidence")  # fmt: skip
    if before is not None:
        (b_count, b_conf, b_acc), b_ece = before
        b_count, b_conf, b_acc = (np.asarray(b, dtype=float) for b in (b_count, b_conf, b_acc))
        b_used = b_count > 0
        ax.plot(b_conf[b_used], b_acc[b_used], "o-", color="black", ms=3, lw=1,
                label=f"before calibration (ECE {b_ece:.2%})")  # fmt: skip
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top probability)", fontsize=FONT)
    ax.set_ylabel("accuracy", fontsize=FONT)
    ax.legend(fontsize=FONT - 1, loc="upper left")
    ax.set_title(f"Reliability: {int(count.sum()):,} images in {n} bins", fontsize=FONT)
    return fig
