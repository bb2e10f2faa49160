"""Shared look of every figure: colours, fonts, image display, saving.

Figures are built on ``matplotlib.figure.Figure`` directly — no pyplot state — so they render
headless, in threads (the web server) and in notebooks alike.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from sightline.errors import DataError, SightlineError
from sightline.fileio import atomic_open

CORRECT = "#1f77b4"  # blue, as in the tutorials
WRONG = "#d62728"  # red
NEUTRAL = "#9a9a9a"
TRAIN = "#1f77b4"
VAL = "#ff7f0e"
FONT = 9


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.set_dpi(100)
    return fig


def to_display(image) -> np.ndarray:
    """One image → (H,W) or (H,W,3) array for imshow.

    Tensors are channels-first (C,H,W), as everywhere in sightline. Numpy arrays may be either
    (C,H,W) or (H,W,C): a leading axis of 1 or 3 with a trailing axis that is not is taken as
    channels-first. A batch of one (1,C,H,W) is unwrapped.
    """
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and (
        isinstance(image, torch.Tensor) or (a.shape[0] in (1, 3) and a.shape[2] not in (1, 3))
    ):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise DataError(
            f"cannot show an image of shape {tuple(image.shape)}: expected (C,H,W) with 1 or 3 channels, (H,W,C) or (H,W)"
        )
    return a


def show_image(ax, image, dark_background: bool = False) -> None:
    """Grayscale as the tutorials show it (``binary``: ink dark on white for dark-background
    data), colour as RGB; no ticks."""
    a = to_display(image)
    if a.ndim == 2:
        ax.imshow(a, cmap="binary" if dark_background else "gray", vmin=0, vmax=255)
    else:
        ax.imshow(a)
    ax.set_xticks([])
    ax.set_yticks([])


def figure_format(path: str | os.PathLike) -> str:
    """ "png" or "svg" by ``path``'s suffix; SightlineError for anything else."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise SightlineError(
            f"{path}: figures are written as .png or .svg, not {path.suffix or 'no suffix'}"
        )
    return fmt


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 100) -> bytes:
    """``fig`` as the bytes of a PNG or SVG file (a run's plots go through its writer)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG or SVG (by suffix), atomically; returns the path."""
    fmt = figure_format(path)
    with atomic_open(path, "wb") as f:  # the one atomic writer of the project
        fig.savefig(f, format=fmt, dpi=dpi)
    return Path(path)


def as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def grid_shape(n: int, rows: int, cols: int) -> tuple[int, int]:
    """Shrink rows to what ``n`` images fill."""
    rows = max(1, min(rows, -(-n // cols)))
    return rows, cols


def check_predictions(
    n: int, labels: np.ndarray, probs: np.ndarray | None, classes: Sequence[str]
) -> None:
    """Clear errors for mismatched plot inputs instead of an IndexError deep inside matplotlib."""
    if len(labels) != n:
        raise DataError(f"{n} images but {len(labels)} labels: pass one label per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataError(
            f"labels run from {labels.min()} to {labels.max()} but there are {len(classes)} class names"
        )
    if probs is not None and (probs.ndim != 2 or probs.shape != (n, len(classes))):
        raise DataError(
            f"probabilities have shape {tuple(probs.shape)}; expected ({n}, {len(classes)}): one row per image, one column per class"
        )


# ----------------------------------------------------------------------------- image grids
def image_grid(
    images: Sequence,
    captions: Sequence[str],
    cols: int,
    *,
    colors: Sequence[str] | None = None,
    dark_background: bool = False,
    cell: tuple[float, float] = (1.9, 2.0),
    caption_lines: int = 2,
    fontsize: float = FONT - 1,
) -> Figure:
    """Images in a grid, a caption under each, all drawn in ONE axes (data units = inches).

    One matplotlib axes per image made a 25-image grid cost 0.3–0.5 s to lay out and draw (tick
    machinery, constrained layout); one axes with an image artist per cell costs a fraction,
    and looks the same: each image framed, its caption centred under it.
    """
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    cw, ch = cell
    fig = Figure(figsize=(cw * cols, ch * rows))
    fig.set_dpi(100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    pad = 0.06
    caption_h = caption_lines * fontsize * 1.25 / 72 + 0.06  # inches
    box = max(0.2, min(cw - 2 * pad, ch - caption_h - 2 * pad))
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        a = to_display(image)
        h, w = a.shape[:2]
        iw, ih = (box, box * h / w) if w >= h else (box * w / h, box)
        x0, y0 = c * cw + (cw - iw) / 2, r * ch + pad + (box - ih)
        gray = a.ndim == 2
        ax.imshow(
            a,
            cmap=("binary" if dark_background else "gray") if gray else None,
            vmin=0 if gray else None,
            vmax=255 if gray else None,
            extent=(x0, x0 + iw, y0 + ih, y0),
            interpolation="nearest",
            aspect="auto",
        )
        ax.add_patch(Rectangle((x0, y0), iw, ih, fill=False, lw=0.6, edgecolor="#888888"))
        ax.text(
            c * cw + cw / 2,
            y0 + ih + 0.05,
            captions[k],
            ha="center",
            va="top",
            fontsize=fontsize,
            color=colors[k] if colors is not None else "black",
        )
    ax.set_xlim(0, cw * cols)
    ax.set_ylim(ch * rows, 0)
    return fig
