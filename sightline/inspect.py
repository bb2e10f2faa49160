"""Looking inside a trained network: layer outputs, learned filters, saliency.

Layers are named as in ``sightline.summary`` (dotted module names such as ``stage1.conv.relu``).
Every function returns plain tensors or dicts (for the web UI) or a matplotlib ``Figure``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from sightline.data.preprocess import ImageInput, Preprocess
from sightline.errors import ModelError
from sightline.plots.style import FONT, new_figure, show_image, to_display


def _leaf_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if n and not list(m.children())]


def layer_outputs(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Output of each named layer (default: every leaf layer) for one normalised input."""
    x = x[None] if x.ndim == 3 else x
    modules = dict(model.named_modules())
    names = list(layers) if layers else _leaf_names(model)
    unknown = [n for n in names if n not in modules or not n]
    if unknown:
        raise ModelError(f"unknown layer(s) {', '.join(unknown)}; layers are: {', '.join(_leaf_names(model))}")
    outputs: dict[str, torch.Tensor] = {}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o.detach()[0].float().cpu().clone()))
             for n in names]  # fmt: skip
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {n: outputs[n] for n in names if n in outputs}


def activation_stats(outputs: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """Shape, mean, std, min, max and fraction of exact zeros (dead after ReLU) per layer."""
    return {
        name: {
            "shape": list(t.shape),
            "mean": round(t.mean().item(), 6),
            "std": round(t.std().item(), 6) if t.numel() > 1 else 0.0,
            "min": round(t.min().item(), 6),
            "max": round(t.max().item(), 6),
            "zero_fraction": round((t == 0).float().mean().item(), 6),
        }
        for name, t in outputs.items()
    }


def _map_grid(sub, maps: torch.Tensor, max_channels: int, title: str) -> None:
    """Up to ``max_channels`` feature maps of one layer in a (sub)figure, 16 per row."""
    n = min(len(maps), max_channels)
    cols = min(n, 16)
    rows = math.ceil(n / cols)
    sub.suptitle(title, fontsize=FONT - 1, x=0.01, ha="left")
    axes = sub.subplots(rows, cols, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
    for i, ax in enumerate(axes.flat):
        if i < n:
            ax.imshow(maps[i].numpy(), cmap="viridis")
        ax.set_axis_off()


def plot_layer(name: str, output: torch.Tensor, max_channels: int = 32) -> Figure:
    """One layer's output: feature maps as images, or a flat vector as bars."""
    return plot_activations({name: output}, max_channels=max_channels)


def _title(name: str, t: torch.Tensor) -> str:
    s = activation_stats({name: t})[name]
    return f"{name}  {tuple(t.shape)}  mean {s['mean']:.3f}  std {s['std']:.3f}  zeros {s['zero_fraction']:.0%}"


def _is_map(t: torch.Tensor) -> bool:
    return t.ndim == 3 and t.shape[1] * t.shape[2] > 1  # a (C, 1, 1) "map" is really a vector


def plot_activations(outputs: dict[str, torch.Tensor], layers: Sequence[str] | None = None, max_channels: int = 32) -> Figure:
    """Every layer's output for one image: conv maps as grids, dense layers as bar plots."""
    names = list(layers) if layers else list(outputs)
    heights = [0.75 * math.ceil(min(len(outputs[n]), max_channels) / 16) + 0.35 if _is_map(outputs[n]) else 1.4 for n in names]
    fig = new_figure(12, max(2.0, sum(heights)))
    subfigs = fig.subfigures(len(names), 1, height_ratios=heights, squeeze=False)[:, 0]
    for sub, name in zip(subfigs, names, strict=True):
        t = outputs[name]
        if _is_map(t):
            _map_grid(sub, t, max_channels, _title(name, t))
        else:
            ax = sub.subplots()
            v = t.flatten().numpy()
            ax.bar(np.arange(len(v)), v, width=0.9, color="#4c72b0")
            ax.set_xlim(-0.5, len(v) - 0.5)
            ax.set_title(_title(name, t), fontsize=FONT - 1, loc="left")
            ax.tick_params(labelsize=FONT - 2)
    return fig


def _conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def plot_filters(model: nn.Module, layer: str | None = None, max_filters: int = 64) -> Figure:
    """Learned filters of the first conv layer (or ``layer``): RGB in colour, else averaged gray."""
    convs = dict(_conv_layers(model))
    if not convs:
        raise ModelError("this model has no convolutional layers; try plot_dense_weights")
    name = layer or next(iter(convs))
    if name not in convs:
        raise ModelError(f"{name!r} is not a conv layer; conv layers are: {', '.join(convs)}")
    w = convs[name].weight.detach().float().cpu()[:max_filters]
    cols = min(len(w), 16)
    rows = math.ceil(len(w) / cols)
    fig = new_figure(0.8 * cols + 0.4, 0.8 * rows + 0.6)
    fig.suptitle(f"{name}: {len(convs[name].weight)} filters {tuple(convs[name].weight.shape[1:])}", fontsize=FONT)
    for i, f in enumerate(w):
        ax = fig.add_subplot(rows, cols, i + 1)
        if f.shape[0] == 3:
            img = (f - f.min()) / (f.max() - f.min() + 1e-8)
            ax.imshow(img.permute(1, 2, 0).numpy())
        else:
            ax.imshow(f.mean(0).numpy(), cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_dense_weights(model: nn.Module, input_shape: Sequence[int], layer: str | None = None, max_units: int = 32) -> Figure:
    """The first dense layer's weights, one image per hidden unit (what each unit looks for)."""
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    name = layer or next(iter(linears), None)
    if name is None or name not in linears:
        raise ModelError(f"no dense layer {name!r}; dense layers are: {', '.join(linears) or 'none'}")
    w = linears[name].weight.detach().float().cpu()
    c, h, wd = input_shape
    if w.shape[1] != c * h * wd:
        raise ModelError(f"{name} takes {w.shape[1]} inputs, not the {c}x{h}x{wd} image; pick the first dense layer")
    units = w[:max_units].view(-1, c, h, wd).mean(1)
    cols = min(len(units), 8)
    rows = math.ceil(len(units) / cols)
    fig = new_figure(1.2 * cols, 1.2 * rows + 0.4)
    fig.suptitle(f"{name}: weights of {min(len(w), max_units)} of {len(w)} units (red +, blue -)", fontsize=FONT)
    for i, u in enumerate(units):
        ax = fig.add_subplot(rows, cols, i + 1)
        lim = u.abs().max().item() or 1.0
        ax.imshow(u.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def saliency(model: nn.Module, x: torch.Tensor, target: int | None = None, method: str = "gradcam") -> torch.Tensor:
    """Where the evidence is: (H, W) in [0, 1] for one normalised input.

    ``gradient``: |d logit / d input|, max over channels. ``gradcam``: Grad-CAM on the last conv
    layer, upsampled to the input; a model without conv layers falls back to ``gradient``.
    """
    if method not in ("gradcam", "gradient"):
        raise ModelError(f"unknown saliency method {method!r}: use gradcam or gradient")
    x = (x[None] if x.ndim == 3 else x).detach().to(next(model.parameters()).device).requires_grad_(True)
    convs = _conv_layers(model)
    use_cam = method == "gradcam" and bool(convs)
    store: dict[str, torch.Tensor] = {}
    hook = None
    if use_cam:
        def keep(m, i, o):
            o.retain_grad()
            store["a"] = o
        hook = convs[-1][1].register_forward_hook(keep)
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(x)
            t = int(logits[0].argmax()) if target is None else int(target)
            model.zero_grad(set_to_none=True)
            logits[0, t].backward()
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
        if hook is not None:
            hook.remove()
    if use_cam:
        a = store["a"]
        weights = a.grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * a).sum(1, keepdim=True)).detach()
        sal = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    else:
        sal = x.grad.detach().abs().amax(1)[0]
    sal = sal.float().cpu()
    return (sal - sal.min()) / (sal.max() - sal.min()) if sal.max() > sal.min() else torch.zeros_like(sal)


def plot_saliency(image, sal: torch.Tensor, title: str | None = None) -> Figure:
    """The image and the saliency heatmap over it, side by side."""
    fig = new_figure(6, 3.2)
    a, b = fig.subplots(1, 2)
    show_image(a, image)
    a.set_title(title or "image", fontsize=FONT)
    disp = to_display(image)
    b.imshow(disp, cmap="gray" if disp.ndim == 2 else None, vmin=0, vmax=255)
    b.imshow(sal.numpy(), cmap="jet", alpha=0.45, extent=(-0.5, disp.shape[1] - 0.5, disp.shape[0] - 0.5, -0.5))
    b.set_title("saliency", fontsize=FONT)
    b.set_xticks([])
    b.set_yticks([])
    return fig


@dataclass
class Inspection:
    input: torch.Tensor  # uint8 (C, H, W), as the model saw it
    probabilities: list[float]
    predicted: str
    outputs: dict[str, torch.Tensor] = field(repr=False)
    stats: dict[str, dict[str, Any]] = field(repr=False)
    saliency: torch.Tensor = field(repr=False)
    classes: list[str] = field(default_factory=list)

    def to_dict(self, max_values: int = 4096) -> dict[str, Any]:
        """JSON-ready: per layer shape + stats (+ values for layers up to ``max_values``)."""
        layers = []
        for name, t in self.outputs.items():
            row: dict[str, Any] = {"name": name, **self.stats[name]}
            if t.numel() <= max_values:
                row["values"] = t.tolist()
            layers.append(row)
        return {
            "predicted": self.predicted,
            "probabilities": dict(zip(self.classes, self.probabilities, strict=True)) if self.classes else self.probabilities,
            "layers": layers,
            "saliency": [[round(v, 4) for v in r] for r in self.saliency.tolist()],
        }


def inspect_image(model: nn.Module, preprocess: Preprocess, image: ImageInput, layers: Sequence[str] | None = None,
                  classes: Sequence[str] | None = None, method: str = "gradcam") -> Inspection:  # fmt: skip
    """Everything about how ``model`` sees one image (a path, PIL image, array or uint8 tensor)."""
    prepared = preprocess.prepare_image(image)
    x = preprocess.normalize(prepared[None])
    outputs = layer_outputs(model, x, layers)
    with torch.no_grad():
        was = model.training
        model.eval()
        probs = model(x.to(next(model.parameters()).device)).float().softmax(1)[0].cpu()
        model.train(was)
    names = list(classes) if classes else [str(i) for i in range(len(probs))]
    return Inspection(prepared, [round(p, 6) for p in probs.tolist()], names[int(probs.argmax())], outputs,
                      activation_stats(outputs), saliency(model, x, method=method), names)  # fmt: skip
