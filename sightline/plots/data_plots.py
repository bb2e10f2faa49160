"""Pictures of images: one image with a colour bar, sample grids, predictions, probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from sightline.errors import DataError
from sightline.plots.style import (
    CORRECT,
    FONT,
    NEUTRAL,
    WRONG,
    as_numpy,
    check_predictions,
    grid_shape,
    new_figure,
    show_image,
    to_display,
)


def plot_image(image, title: str | None = None, colorbar: bool = True) -> Figure:
    """One image with a colour bar: the tutorials' first look at the pixel values."""
    fig = new_figure(4.2, 3.6)
    ax = fig.add_subplot()
    a = to_display(image)
    shown = ax.imshow(a, cmap="viridis" if a.ndim == 2 else None)
    if colorbar and a.ndim == 2:
        fig.colorbar(shown, ax=ax, label="pixel value")
    if title:
        ax.set_title(title, fontsize=FONT + 1)
    return fig


def _empty(message: str) -> Figure:
    """A small figure that says why there is nothing to draw (a report still gets an image)."""
    fig = new_figure(5, 1.5)
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=FONT + 2)
    return fig


def _pick(n: int, count: int, random: bool, seed: int) -> list[int]:
    if random:
        g = torch.Generator().manual_seed(seed)
        return torch.randperm(n, generator=g)[:count].tolist()
    return list(range(min(n, count)))


def plot_samples(images, labels, classes: Sequence[str], rows: int = 5, cols: int = 5, random: bool = False,
                 seed: int = 0, dark_background: bool = False) -> Figure:  # fmt: skip
    """A rows x cols grid of images with the class name under each."""
    labels = as_numpy(labels)
    check_predictions(len(images), labels, None, classes)
    index = _pick(len(labels), rows * cols, random, seed)
    rows, cols = grid_shape(len(index), rows, cols)
    fig = new_figure(1.7 * cols, 1.85 * rows)
    for k, i in enumerate(index):
        ax = fig.add_subplot(rows, cols, k + 1)
        show_image(ax, images[i], dark_background)
        ax.set_xlabel(classes[int(labels[i])], fontsize=FONT)
    return fig


def _prediction_index(labels: np.ndarray, preds: np.ndarray, count: int, only_mistakes: bool) -> list[int]:
    pool = np.flatnonzero(preds != labels) if only_mistakes else np.arange(len(labels))
    return pool[:count].tolist()


def plot_predictions(images, labels, probs, classes: Sequence[str], rows: int = 5, cols: int = 5,
                     only_mistakes: bool = False, dark_background: bool = False) -> Figure:  # fmt: skip
    """Images labelled "predicted (confidence %) (true)", blue when right and red when wrong."""
    labels, probs = as_numpy(labels), as_numpy(probs)
    check_predictions(len(images), labels, probs, classes)
    preds = probs.argmax(1)
    index = _prediction_index(labels, preds, rows * cols, only_mistakes)
    if not index:
        return _empty("no mistakes to show" if only_mistakes else "no images")
    rows, cols = grid_shape(len(index), rows, cols)
    fig = new_figure(1.9 * cols, 2.0 * rows)
    for k, i in enumerate(index):
        ax = fig.add_subplot(rows, cols, k + 1)
        show_image(ax, images[i], dark_background)
        p, t = int(preds[i]), int(labels[i])
        ax.set_xlabel(f"{classes[p]} {probs[i, p]:.0%}\n({classes[t]})", fontsize=FONT - 1, color=CORRECT if p == t else WRONG)
    return fig


def _bars(ax, probs: np.ndarray, classes: Sequence[str], label: int | None, names: bool = True) -> None:
    bars = ax.bar(range(len(probs)), probs, color=NEUTRAL)
    pred = int(probs.argmax())
    bars[pred].set_color(WRONG)  # predicted in red; the true class, drawn after, in blue
    if label is not None:
        bars[int(label)].set_color(CORRECT)
    ax.set_ylim(0, 1)
    # Class names under every bar chart of a grid cost more to lay out than the rest of it
    # together: a grid names them under its bottom row only.
    ax.set_xticks(range(len(classes)), classes if names else [], rotation=90, fontsize=FONT - 1)
    ax.tick_params(axis="y", labelsize=FONT - 1)


def plot_probabilities(image, probs, classes: Sequence[str], label: int | None = None, dark_background: bool = False) -> Figure:
    """The image and its class probabilities side by side (predicted bar red, true bar blue)."""
    probs = as_numpy(probs).reshape(-1)
    check_predictions(1, np.array([0 if label is None else int(label)]), probs[None], classes)
    fig = new_figure(6.5, 3.2)
    ax_img, ax_bar = fig.subplots(1, 2, width_ratios=[1, 1.6])
    show_image(ax_img, image, dark_background)
    pred = int(probs.argmax())
    color = CORRECT if label is None or pred == int(label) else WRONG
    true = f" ({classes[int(label)]})" if label is not None else ""
    ax_img.set_xlabel(f"{classes[pred]} {probs[pred]:.0%}{true}", color=color, fontsize=FONT)
    _bars(ax_bar, probs, classes, label)
    ax_bar.set_ylabel("probability", fontsize=FONT)
    return fig


def plot_probability_grid(images, labels, probs, classes: Sequence[str], rows: int = 5, cols: int = 3,
                          dark_background: bool = False) -> Figure:  # fmt: skip
    """rows x cols of (image, probability bars) pairs: the tutorials' verification grid."""
    labels, probs = as_numpy(labels), as_numpy(probs)
    check_predictions(len(images), labels, probs, classes)
    n = min(len(labels), rows * cols)
    if n == 0:
        return _empty("no images")
    rows, cols = grid_shape(n, rows, cols)
    fig = new_figure(4.6 * cols, 2.5 * rows)
    axes = fig.subplots(rows, 2 * cols, squeeze=False, width_ratios=[1, 1.5] * cols)
    for i in range(rows * cols):
        ax_img, ax_bar = axes[i // cols, 2 * (i % cols)], axes[i // cols, 2 * (i % cols) + 1]
        if i >= n:
            ax_img.axis("off")
            ax_bar.axis("off")
            continue
        show_image(ax_img, images[i], dark_background)
        pred, true = int(probs[i].argmax()), int(labels[i])
        ax_img.set_xlabel(f"{classes[pred]} {probs[i, pred]:.0%}\n({classes[true]})", fontsize=FONT - 1,
                          color=CORRECT if pred == true else WRONG)  # fmt: skip
        _bars(ax_bar, probs[i], classes, true, names=i // cols == rows - 1 or i + cols >= n)
    return fig


def plot_top_losses(images, labels, probs, losses, classes: Sequence[str], k: int = 16, dark_background: bool = False) -> Figure:
    """The ``k`` images with the highest loss: what the model got most confidently wrong."""
    labels, probs, losses = as_numpy(labels), as_numpy(probs), as_numpy(losses)
    check_predictions(len(images), labels, probs, classes)
    if len(losses) != len(labels):
        raise DataError(f"{len(labels)} images but {len(losses)} losses: pass one loss per image")
    order = np.argsort(-losses, kind="stable")[:k]
    if len(order) == 0:
        return _empty("no images")
    cols = min(4, max(1, len(order)))
    rows = max(1, -(-len(order) // cols))
    fig = new_figure(2.3 * cols, 2.3 * rows)
    for n, i in enumerate(order):
        ax = fig.add_subplot(rows, cols, n + 1)
        show_image(ax, images[int(i)], dark_background)
        pred, true = int(probs[i].argmax()), int(labels[i])
        ax.set_title(f"pred {classes[pred]} ({probs[i, pred]:.0%})\ntrue {classes[true]} ({probs[i, true]:.0%})\nloss {losses[i]:.2f}",
                     fontsize=FONT - 1, color=CORRECT if pred == true else WRONG)  # fmt: skip
    return fig
