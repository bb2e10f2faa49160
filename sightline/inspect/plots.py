"""Figures of a network's inside: feature maps, learned filters, dense weights, saliency.

The numbers come from ``sightline.inspect.core``; these functions only draw them, on
``matplotlib.figure.Figure`` objects (no pyplot, nothing is shown). ``sightline.inspect``
re-exports all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from sightline.errors import ModelError
from sightline.inspect.core import MAPS_PER_ROW, activation_stats, is_map, map_mosaic
from sightline.models.summary import conv_layers
from sightline.plots.style import FONT, new_figure, show_image, to_display

FIG_WIDTH = 12.0  # inches; one feature map is FIG_WIDTH / MAPS_PER_ROW wide
_VIRIDIS = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # white gaps between maps


def _title(name: str, t: torch.Tensor) -> str:
    s = activation_stats({name: t})[name]
    if s["mean"] is None:
        return f"{name}  {tuple(t.shape)}  (empty)"
    return (
        f"{name}  {tuple(t.shape)}   mean {s['mean']:.3g}  std {s['std']:.3g}  "
        f"range {s['min']:.3g}..{s['max']:.3g}  zeros {s['zero_fraction']:.0%}"
    )


def _draw_maps(ax, t: torch.Tensor, max_channels: int) -> None:
    ax.imshow(map_mosaic(t, max_channels), cmap=_VIRIDIS, interpolation="nearest", vmin=0, vmax=1)
    ax.set_anchor("W")  # left-aligned, so layers with few maps line up with the others
    ax.set_axis_off()


def _draw_vector(ax, t: torch.Tensor, classes: Sequence[str] | None) -> None:
    v = t.detach().float().flatten().cpu().numpy()
    x = np.arange(len(v))
    if len(v) <= 128:
        ax.bar(x, v, width=0.85, color="#4c72b0")
    else:  # hundreds of bars: one filled step artist draws the same picture much faster
        ax.fill_between(x, v, step="mid", color="#4c72b0", linewidth=0)
    ax.axhline(0, color="#444444", linewidth=0.6)
    ax.set_xlim(-0.5, len(v) - 0.5)
    if classes is not None and len(classes) == len(v) and len(v) <= 40:
        ax.set_xticks(
            x,
            [str(c) for c in classes],
            rotation=30 if len(v) > 8 else 0,
            ha="right" if len(v) > 8 else "center",
        )
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=FONT - 2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _block_height(t: torch.Tensor, max_channels: int) -> float:
    """Inches a layer needs: its mosaic at 0.75 in per map, or a fixed bar-plot height."""
    if not is_map(t):
        return 1.5
    n = min(len(t), max_channels)
    cols = min(n, MAPS_PER_ROW)
    rows = math.ceil(n / cols)
    cell = FIG_WIDTH / MAPS_PER_ROW
    return rows * cell * t.shape[1] / t.shape[2] + 0.3


def plot_activations(
    outputs: dict[str, torch.Tensor],
    layers: Sequence[str] | None = None,
    max_channels: int = 32,
    classes: Sequence[str] | None = None,
) -> Figure:
    """Every layer's output for one image (from ``layer_outputs``), one block per layer.

    Feature maps (C,H,W) are drawn as a grid of up to ``max_channels`` maps (viridis, each on
    its own scale); flat outputs as bars, labelled with ``classes`` where the size matches (the
    logits). Each block's title gives the layer name, shape and statistics.
    """
    names = list(layers) if layers else list(outputs)
    missing = [n for n in names if n not in outputs]
    if missing:
        raise ModelError(f"no output for layer(s) {', '.join(missing)}; have: {', '.join(outputs)}")
    if not names:
        raise ModelError("no layer outputs to plot")
    heights = [_block_height(outputs[n], max_channels) for n in names]
    fig = new_figure(FIG_WIDTH, max(1.8, sum(heights) + 0.3))
    axes = fig.subplots(len(names), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, name in zip(axes, names, strict=True):
        t = outputs[name]
        if is_map(t):
            _draw_maps(ax, t, max_channels)
            shown = min(len(t), max_channels)
            note = f"   (first {shown} of {len(t)} maps)" if shown < len(t) else ""
            ax.set_title(_title(name, t) + note, fontsize=FONT - 1, loc="left")
        else:
            _draw_vector(ax, t, classes)
            ax.set_title(_title(name, t), fontsize=FONT - 1, loc="left")
    if any(is_map(outputs[n]) for n in names):
        fig.suptitle(
            "feature maps: each on its own colour scale (dark = low, yellow = high)",
            fontsize=FONT - 1,
            x=0.01,
            ha="left",
            color="#555555",
        )
    return fig


def plot_layer(
    name: str, output: torch.Tensor, max_channels: int = 32, classes: Sequence[str] | None = None
) -> Figure:
    """One layer's output: feature maps as a grid of images, or a flat vector as bars."""
    return plot_activations({name: output}, max_channels=max_channels, classes=classes)


def plot_filters(model: nn.Module, layer: str | None = None, max_filters: int = 64) -> Figure:
    """Learned filters of the first conv layer (or the conv layer ``layer``), one image each.

    Filters over 3 input channels are drawn in colour (each filter min-max normalised), others
    as the average over their input channels in gray.
    """
    convs = dict(conv_layers(model))
    if not convs:
        raise ModelError("this model has no convolutional layers; try plot_dense_weights")
    name = layer or next(iter(convs))
    if name not in convs:
        raise ModelError(f"{name!r} is not a conv layer; conv layers are: {', '.join(convs)}")
    weight = convs[name].weight.detach().float().cpu()
    w = weight[:max_filters]
    cols = min(len(w), MAPS_PER_ROW)
    rows = math.ceil(len(w) / cols)
    fig = new_figure(0.8 * cols + 0.4, 0.8 * rows + 0.6)
    shown = f"first {len(w)} of " if len(w) < len(weight) else ""
    kind = "RGB" if weight.shape[1] == 3 else ("channel mean" if weight.shape[1] > 1 else "gray")
    fig.suptitle(
        f"{name}: {shown}{len(weight)} filters {tuple(weight.shape[1:])}, {kind}, each on its own scale",
        fontsize=FONT,
    )
    for i, f in enumerate(w):
        ax = fig.add_subplot(rows, cols, i + 1)
        if f.shape[0] == 3:
            img = (f - f.min()) / (f.max() - f.min()).clamp(min=1e-8)
            ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
        else:
            ax.imshow(f.mean(0).numpy(), cmap="gray", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_dense_weights(
    model: nn.Module, input_shape: Sequence[int], layer: str | None = None, max_units: int = 32
) -> Figure:
    """The first dense layer's weights (or ``layer``'s), reshaped to the input image: one image
    per hidden unit, red where a bright pixel raises the unit, blue where it lowers it."""
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    name = layer or next(iter(linears), None)
    if name is None or name not in linears:
        raise ModelError(
            f"no dense layer {name!r}; dense layers are: {', '.join(linears) or 'none'}"
        )
    w = linears[name].weight.detach().float().cpu()
    c, h, wd = (int(s) for s in input_shape)
    if w.shape[1] != c * h * wd:
        raise ModelError(
            f"{name} takes {w.shape[1]} inputs, not the {c}x{h}x{wd} image; pick the first dense layer"
        )
    units = w[:max_units].view(-1, c, h, wd).mean(1)
    cols = min(len(units), 8)
    rows = math.ceil(len(units) / cols)
    fig = new_figure(1.2 * cols, 1.2 * rows + 0.4)
    fig.suptitle(
        f"{name}: weights of {len(units)} of {len(w)} units (red +, blue -, white 0)", fontsize=FONT
    )
    for i, u in enumerate(units):
        ax = fig.add_subplot(rows, cols, i + 1)
        lim = u.abs().max().item() or 1.0
        ax.imshow(u.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(str(i), fontsize=FONT - 2, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_saliency(image, sal: torch.Tensor, title: str | None = None) -> Figure:
    """The image (uint8 (C,H,W) tensor or (H,W[,C]) array) and the saliency heatmap over it,
    side by side. The heat is opaque where the saliency is high and clear where it is 0."""
    disp = to_display(image)
    s = (
        sal.detach().float().cpu().numpy()
        if isinstance(sal, torch.Tensor)
        else np.asarray(sal, dtype=float)
    )
    fig = new_figure(6.4, 3.3)
    a, b = fig.subplots(1, 2)
    show_image(a, image)
    a.set_title(title or "image", fontsize=FONT)
    b.imshow(disp, cmap="gray" if disp.ndim == 2 else None, vmin=0, vmax=255)
    extent = (-0.5, disp.shape[1] - 0.5, disp.shape[0] - 0.5, -0.5)  # stretch to the image
    heat = b.imshow(
        s, cmap="jet", vmin=0, vmax=1, alpha=np.clip(0.15 + 0.65 * s, 0, 1), extent=extent
    )
    b.set_title("saliency", fontsize=FONT)
    b.set_xticks([])
    b.set_yticks([])
    cbar = fig.colorbar(heat, ax=b, fraction=0.046, pad=0.02)
    cbar.ax.tick_params(labelsize=FONT - 2)
    return fig
