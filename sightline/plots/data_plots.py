"""Pictures of images: one image with a colour bar, sample grids, predictions, probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sightline.errors import DataError
from sightline.plots.style import (
    CORRECT,
    FONT,
    NEUTRAL,
    WRONG,
    as_numpy,
    check_predictions,
    grid_shape,
    image_grid,
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


def plot_samples(
    images,
    labels,
    classes: Sequence[str],
    rows: int = 5,
    cols: int = 5,
    random: bool = False,
    seed: int = 0,
    dark_background: bool = False,
) -> Figure:
    """A rows x cols grid of images with the class name under each."""
    labels = as_numpy(labels)
    check_predictions(len(images), labels, None, classes)
    index = _pick(len(labels), rows * cols, random, seed)
    if not index:
        return _empty("no images")
    return image_grid(
        [images[i] for i in index],
        [classes[int(labels[i])] for i in index],
        cols,
        dark_background=dark_background,
        cell=(1.7, 1.85),
        caption_lines=1,
        fontsize=FONT,
    )


def _prediction_index(
    labels: np.ndarray, preds: np.ndarray, count: int, only_mistakes: bool
) -> list[int]:
    pool = np.flatnonzero(preds != labels) if only_mistakes else np.arange(len(labels))
    return pool[:count].tolist()


def plot_predictions(
    images,
    labels,
    probs,
    classes: Sequence[str],
    rows: int = 5,
    cols: int = 5,
    only_mistakes: bool = False,
    dark_background: bool = False,
) -> Figure:
    """Images labelled "predicted (confidence %) (true)", blue when right and red when wrong."""
    labels, probs = as_numpy(labels), as_numpy(probs)
    check_predictions(len(images), labels, probs, classes)
    preds = probs.argmax(1)
    index = _prediction_index(labels, preds, rows * cols, only_mistakes)
    if not index:
        return _empty("no mistakes to show" if only_mistakes else "no images")
    captions = [
        f"{classes[int(preds[i])]} {probs[i, int(preds[i])]:.0%}\n({classes[int(labels[i])]})"
        for i in index
    ]
    colors = [CORRECT if preds[i] == labels[i] else WRONG for i in index]
    return image_grid(
        [images[i] for i in index], captions, cols, colors=colors, dark_background=dark_background
    )


def _bars(ax, probs: np.ndarray, classes: Sequence[str], label: int | None) -> None:
    bars = ax.bar(range(len(probs)), probs, color=NEUTRAL)
    pred = int(probs.argmax())
    bars[pred].set_color(WRONG)  # predicted in red; the true class, drawn after, in blue
    if label is not None:
        bars[int(label)].set_color(CORRECT)
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=FONT - 1)
    ax.tick_params(axis="y", labelsize=FONT - 1)


def plot_probabilities(
    image, probs, classes: Sequence[str], label: int | None = None, dark_background: bool = False
) -> Figure:
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


def plot_probability_grid(
    images,
    labels,
    probs,
    classes: Sequence[str],
    rows: int = 5,
    cols: int = 3,
    dark_background: bool = False,
) -> Figure:
    """rows x cols of (image, probability bars) pairs: the tutorials' verification grid.

    Bars: grey, the predicted class red, the true class blue (a right prediction is blue).
    Drawn in one axes (units: inches), like ``image_grid``, for speed.
    """
    labels, probs = as_numpy(labels), as_numpy(probs)
    check_predictions(len(images), labels, probs, classes)
    n = min(len(labels), rows * cols)
    if n == 0:
        return _empty("no images")
    rows, cols = grid_shape(n, rows, cols)
    k = len(classes)
    cw, ch, pad, box, bar_h = 4.6, 2.1, 0.08, 1.45, 1.45
    names_h = (
        max(len(c) for c in classes) * (FONT - 2) * 0.5 / 72 + 0.1
    )  # class names under the last row
    fig = Figure(figsize=(cw * cols, ch * rows + names_h))
    fig.set_dpi(100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    bars_x0, bars_w = 1.75, cw - 1.75 - 0.15
    step = bars_w / k
    for i in range(n):
        r, c = divmod(i, cols)
        x, y = c * cw, r * ch + pad
        a = to_display(images[i])
        gray = a.ndim == 2
        ax.imshow(
            a,
            cmap=("binary" if dark_background else "gray") if gray else None,
            vmin=0 if gray else None,
            vmax=255 if gray else None,
            extent=(x + pad, x + pad + box, y + box, y),
            interpolation="nearest",
            aspect="auto",
        )
        ax.add_patch(Rectangle((x + pad, y), box, box, fill=False, lw=0.6, edgecolor="#888888"))
        pred, true = int(probs[i].argmax()), int(labels[i])
        ax.text(
            x + pad + box / 2,
            y + box + 0.05,
            f"{classes[pred]} {probs[i, pred]:.0%}\n({classes[true]})",
            ha="center",
            va="top",
            fontsize=FONT - 1,
            color=CORRECT if pred == true else WRONG,
        )
        colors = [NEUTRAL] * k
        colors[pred] = WRONG
        colors[true] = CORRECT  # drawn after: a right prediction is blue
        base = y + bar_h
        xs = [x + bars_x0 + (j + 0.5) * step for j in range(k)]
        ax.bar(
            xs, [-float(v) * bar_h for v in probs[i]], width=step * 0.8, bottom=base, color=colors
        )
        ax.add_patch(
            Rectangle((x + bars_x0, y), bars_w, bar_h, fill=False, lw=0.6, edgecolor="#bbbbbb")
        )
        if r == rows - 1 or i + cols >= n:  # the bottom bars of each column name the classes
            for j, name in enumerate(classes):
                ax.text(
                    xs[j], base + 0.05, name, rotation=90, ha="center", va="top", fontsize=FONT - 2
                )
    ax.set_xlim(0, cw * cols)
    ax.set_ylim(ch * rows + names_h, 0)
    return fig


def plot_top_losses(
    images,
    labels,
    probs,
    losses,
    classes: Sequence[str],
    k: int = 16,
    dark_background: bool = False,
) -> Figure:
    """The ``k`` images with the highest loss: what the model got most confidently wrong."""
    labels, probs, losses = as_numpy(labels), as_numpy(probs), as_numpy(losses)
    check_predictions(len(images), labels, probs, classes)
    if len(losses) != len(labels):
        raise DataError(f"{len(labels)} images but {len(losses)} losses: pass one loss per image")
    order = np.argsort(-losses, kind="stable")[:k]
    if len(order) == 0:
        return _empty("no images")
    captions, colors = [], []
    for i in order:
        pred, true = int(probs[i].argmax()), int(labels[i])
        captions.append(
            f"pred {classes[pred]} ({probs[i, pred]:.0%})\ntrue {classes[true]} ({probs[i, true]:.0%})\nloss {losses[i]:.2f}"
        )
        colors.append(CORRECT if pred == true else WRONG)
    return image_grid(
        [images[int(i)] for i in order],
        captions,
        4,
        colors=colors,
        dark_background=dark_background,
        cell=(2.3, 2.5),
        caption_lines=3,
    )
