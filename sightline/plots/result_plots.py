"""Pictures of results: training curves, confusion matrices, per-class accuracy, lr schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from sightline.plots.style import CORRECT, FONT, TRAIN, VAL, WRONG, as_numpy, new_figure


def plot_curves(history: Sequence[dict[str, Any]], best_epoch: int | None = None, stopped_epoch: int | None = None) -> Figure:
    """Loss and accuracy per epoch, train vs validation; best epoch and early stop marked."""
    fig = new_figure(9, 3.6)
    epochs = [r["epoch"] for r in history]
    for ax, key, title in zip(fig.subplots(1, 2), ("loss", "accuracy"), ("Loss", "Accuracy"), strict=True):
        ax.plot(epochs, [r[key] for r in history], "o-", color=TRAIN, label="train", ms=4)
        val = [r.get(f"val_{key}") for r in history]
        if any(v is not None for v in val):
            ax.plot([e for e, v in zip(epochs, val, strict=True) if v is not None], [v for v in val if v is not None],
                    "s-", color=VAL, label="validation", ms=4)  # fmt: skip
        if best_epoch:
            ax.axvline(best_epoch, color=CORRECT, ls="--", lw=1, label=f"best (epoch {best_epoch})")
        if stopped_epoch:
            ax.axvline(stopped_epoch, color=WRONG, ls=":", lw=1.2, label=f"early stop (epoch {stopped_epoch})")
        ax.set_title(title, fontsize=FONT + 2)
        ax.set_xlabel("epoch", fontsize=FONT)
        ax.set_xticks(epochs if len(epochs) <= 20 else np.linspace(epochs[0], epochs[-1], 10, dtype=int))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=FONT - 1)
    return fig


def plot_confusion(confusion, classes: Sequence[str], normalize: bool = False) -> Figure:
    """Heatmap of counts (or row-normalised %), rows = true class, columns = predicted."""
    cm = as_numpy(confusion).astype(float)
    values = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
    k = len(classes)
    size = max(4.5, 0.55 * k + 2.5)
    fig = new_figure(size + 1, size)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "images")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=FONT)
    ax.set_yticks(range(k), classes, fontsize=FONT)
    ax.set_xlabel("predicted", fontsize=FONT + 1)
    ax.set_ylabel("true", fontsize=FONT + 1)
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""), fontsize=FONT + 2)
    top = values.max() if values.size else 1
    cell_font = FONT - 1 if k <= 12 else 6
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            text = f"{v:.0%}" if normalize else f"{int(v)}"
            if k > 20 and v == 0:
                continue
            ax.text(j, i, text, ha="center", va="center", fontsize=cell_font, color="white" if v > top * 0.55 else "black")
    return fig


def plot_per_class_accuracy(confusion, classes: Sequence[str]) -> Figure:
    """Per-class accuracy (recall) as horizontal bars, worst class easy to spot."""
    cm = as_numpy(confusion).astype(float)
    acc = np.diag(cm) / np.maximum(cm.sum(1), 1)
    fig = new_figure(6, max(2.5, 0.32 * len(classes) + 1))
    ax = fig.add_subplot()
    ax.barh(range(len(classes)), acc, color=[CORRECT if a >= acc.mean() else WRONG for a in acc])
    ax.set_yticks(range(len(classes)), classes, fontsize=FONT)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.13)  # room for the value labels right of the bars
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.axvline(acc.mean(), color="black", lw=1, ls="--")
    for i, a in enumerate(acc):
        ax.text(a + 0.01, i, f"{a:.1%}", va="center", fontsize=FONT - 1)
    ax.set_xlabel("accuracy (recall)", fontsize=FONT)
    ax.set_title(f"Per-class accuracy (dashed: mean {acc.mean():.1%}; red: below the mean)", fontsize=FONT)
    return fig


def most_confused(confusion, classes: Sequence[str], k: int = 5) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells: (true class, predicted class, count)."""
    cm = as_numpy(confusion).copy()
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm, axis=None, kind="stable")[:k]
    pairs = [(classes[i // len(classes)], classes[i % len(classes)], int(cm.flat[i])) for i in order]
    return [p for p in pairs if p[2] > 0]


def plot_lr_schedule(lr: float, schedule: str, warmup: float, epochs: int, steps_per_epoch: int) -> Figure:
    """The learning rate at every step of a training config, before training."""
    from sightline.train.optim import lr_factor

    total = epochs * steps_per_epoch
    steps = np.arange(total)
    values = [lr * lr_factor(schedule, int(s), total, warmup) for s in steps]
    fig = new_figure(6, 3)
    ax = fig.add_subplot()
    ax.plot(steps / steps_per_epoch, values, color=TRAIN)
    ax.set_xlabel("epoch", fontsize=FONT)
    ax.set_ylabel("learning rate", fontsize=FONT)
    ax.set_title(f"{schedule} schedule: peak {lr:g}, warm-up {warmup:.0%}, {epochs} epochs x {steps_per_epoch} steps", fontsize=FONT)
    ax.grid(alpha=0.3)
    return fig
