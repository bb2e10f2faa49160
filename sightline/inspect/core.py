"""Looking inside a trained network: layer outputs, their statistics, saliency maps.

Layers are named as in ``sightline.models.summary`` (dotted module names such as
``stage1.conv.relu``). Everything here returns plain tensors, or dicts ready for ``json.dumps``
(for the web UI). The figures that draw them are in ``sightline.inspect.plots``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sightline.data.preprocess import ImageInput, Preprocess
from sightline.errors import ModelError
from sightline.infer.batched import batched_logits
from sightline.infer.ood import detector_of, is_unknown

SALIENCY_METHODS = ("gradcam", "gradient")
MAPS_PER_ROW = 16

_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Sigmoid,
    nn.Tanh,
)
# Modules that map a feature map to one of the same shape, element by element (or per channel):
# Grad-CAM looks at the conv *block* output, i.e. after the BatchNorm/ReLU that follow the conv.
_ELEMENTWISE = (nn.BatchNorm2d, *_ACTIVATIONS, nn.Identity, nn.Dropout, nn.Dropout2d)


# ----------------------------------------------------------------------------- helpers
def leaf_names(model: nn.Module) -> list[str]:
    """Dotted names of the modules without children: the layers of ``summary(model)``."""
    return [n for n, m in model.named_modules() if n and not list(m.children())]


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


def _batch(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One input, (C,H,W) or (1,C,H,W), as a batch of one on the model's device and dtype."""
    x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[None]
    expected = tuple(getattr(model, "sightline_config", {}).get("input_shape") or ())
    if x.ndim != 4 or len(x) != 1 or (expected and tuple(x.shape[1:]) != expected):
        want = f"(1, {', '.join(map(str, expected))})" if expected else "(1, C, H, W)"
        raise ModelError(
            f"inspect takes one normalised image of shape {want}, got {tuple(x.shape)}; "
            "use Preprocess to turn an image into model input"
        )
    device, dtype = _device_dtype(model)
    return x.detach().to(device=device, dtype=dtype)


def _unknown_layer(name: str, model: nn.Module) -> ModelError:
    names = leaf_names(model)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ModelError(f"unknown layer {name!r}{hint}; the layers are: {', '.join(names)}")


def _finite(v: float) -> float | None:
    """JSON has no NaN or infinity: such values become null."""
    return round(v, 6) if math.isfinite(v) else None


# ----------------------------------------------------------------------------- layer outputs
def layer_outputs(
    model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Output of each named layer for one normalised input ``x`` (C,H,W) or (1,C,H,W).

    ``layers`` default to every leaf layer, returned in the order the forward pass runs them;
    named layers come back in the order given (any module name works, e.g. a whole block
    ``stage2``). Outputs are float32 CPU copies without the batch dimension, taken in eval
    mode without gradients. A module that runs twice reports its first output.
    Raises ``ModelError`` for an unknown layer name, listing the valid ones.
    """
    modules = dict(model.named_modules())
    names = list(dict.fromkeys(layers)) if layers else leaf_names(model)
    for n in names:
        if not n or n not in modules:
            raise _unknown_layer(n, model)
    x = _batch(model, x)
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, inp, out):
            # Copy now: an in-place ReLU right after a conv would overwrite the conv's output.
            if name not in outputs and isinstance(out, torch.Tensor):
                outputs[name] = out.detach()[0].float().cpu().clone()

        return hook

    hooks = [modules[n].register_forward_hook(keep(n)) for n in names]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    if not layers:
        return outputs  # forward order
    missing = [n for n in names if n not in outputs]
    if missing:
        raise ModelError(
            f"layer(s) {', '.join(missing)} produced no tensor output in the forward pass"
        )
    return {n: outputs[n] for n in names}


def activation_stats(outputs: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    """Per layer: shape, mean, std, min, max and the fraction of exact zeros (after a ReLU:
    the units that are off for this image). Plain floats, ready for ``json.dumps``."""
    stats = {}
    for name, t in outputs.items():
        t = t.detach().float()
        empty = t.numel() == 0
        stats[name] = {
            "shape": list(t.shape),
            "mean": None if empty else _finite(t.mean().item()),
            "std": 0.0 if t.numel() < 2 else _finite(t.std().item()),
            "min": None if empty else _finite(t.min().item()),
            "max": None if empty else _finite(t.max().item()),
            "zero_fraction": None if empty else round((t == 0).float().mean().item(), 6),
        }
    return stats


def map_mosaic(maps: torch.Tensor, max_channels: int = 32, cols: int = MAPS_PER_ROW) -> np.ndarray:
    """Up to ``max_channels`` feature maps (C,H,W) tiled into one 2-D array, ``cols`` per row.

    Each map is scaled to 0..1 on its own (a constant map, e.g. a ReLU that is off for this
    image, is 0); the gaps between maps are NaN, drawn white. Plain numbers (no matplotlib),
    so the figures and the web server's PNGs draw the same mosaic.
    """
    m = maps[:max_channels].detach().float().cpu()
    n, h, w = m.shape
    lo, hi = m.amin((1, 2), keepdim=True), m.amax((1, 2), keepdim=True)
    m = torch.where(hi > lo, (m - lo) / (hi - lo).clamp(min=1e-12), torch.zeros_like(m))
    cols = min(n, cols)
    rows = math.ceil(n / cols)
    gap = max(1, round(max(h, w) / 8))
    tiles = torch.full((rows * cols, h + gap, w + gap), float("nan"))
    tiles[:n, :h, :w] = m
    grid = (
        tiles.view(rows, cols, h + gap, w + gap)
        .permute(0, 2, 1, 3)
        .reshape(rows * (h + gap), cols * (w + gap))
    )
    return grid[:-gap, :-gap].numpy()


def is_map(t: torch.Tensor) -> bool:
    """A feature map (C, H, W) with more than one position; a (C, 1, 1) "map" is a vector."""
    return t.ndim == 3 and t.shape[1] * t.shape[2] > 1


def key_layers(model: nn.Module, names: Sequence[str], limit: int = 12) -> list[str]:
    """At most ``limit`` of ``names`` (layer names in forward order) worth showing for one image:
    the last layer (the logits) always, then the convolution and activation layers, spread
    evenly over the depth when there are more, then others to fill the room; in forward order.

    A deep network has hundreds of layers; a page (or a figure) of all of them says less than a
    dozen picked from the start, the middle and the end.
    """
    names = list(names)
    if len(names) <= limit:
        return names
    modules = dict(model.named_modules())
    body = names[:-1]
    wanted = [n for n in body if isinstance(modules.get(n), (nn.Conv2d, *_ACTIVATIONS))]
    chosen = set(_spread(wanted, limit - 1))
    others = [n for n in body if n not in chosen]
    chosen |= set(_spread(others, limit - 1 - len(chosen)))
    return [n for n in body if n in chosen] + [names[-1]]


def _spread(items: list[str], k: int) -> list[str]:
    """``k`` of ``items`` evenly spaced, the first and the last included."""
    if k <= 0:
        return []
    if len(items) <= k:
        return list(items)
    if k == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


# ----------------------------------------------------------------------------- saliency
def _cam_layer_hooks(model: nn.Module, record: list):
    """Record (module, first input, output) of every leaf call, in forward order."""

    def hook(module, inp, out):
        record.append((module, inp[0] if inp else None, out))

    return [
        m.register_forward_hook(hook)
        for n, m in model.named_modules()
        if n and not list(m.children())
    ]


def _cam_activation(record: list) -> torch.Tensor | None:
    """The output of the last Conv2d call, followed through the BatchNorm/activation modules
    that directly consume it (checked by tensor identity, so it is real data flow)."""
    last = max((i for i, (m, _, _) in enumerate(record) if isinstance(m, nn.Conv2d)), default=None)
    if last is None:
        return None
    act = record[last][2]
    for module, inp, out in record[last + 1 :]:
        if not (isinstance(module, _ELEMENTWISE) and inp is act and isinstance(out, torch.Tensor)):
            break
        act = out
    return act


def saliency_with_method(
    model: nn.Module, x: torch.Tensor, target: int | None = None, method: str = "gradcam"
) -> tuple[torch.Tensor, str]:
    """``saliency`` and the method actually used ("gradient" where gradcam fell back)."""
    if method not in SALIENCY_METHODS:
        raise ModelError(f"unknown saliency method {method!r}: use {' or '.join(SALIENCY_METHODS)}")
    x = _batch(model, x).requires_grad_(True)
    record: list = []
    hooks = _cam_layer_hooks(model, record) if method == "gradcam" else []
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            logits = model(x)
            n = logits.shape[-1]
            t = int(logits[0].argmax()) if target is None else int(target)
            if not 0 <= t < n:
                raise ModelError(f"saliency target {target} is not a class index (0..{n - 1})")
            act = _cam_activation(record) if method == "gradcam" else None
            used = "gradcam" if act is not None else "gradient"
            # autograd.grad, not backward(): the parameters' .grad stay exactly as they were.
            wrt = act if act is not None else x
            (grad,) = torch.autograd.grad(logits[0, t], wrt, allow_unused=True)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
        record.clear()
    if grad is None:
        grad = torch.zeros_like(wrt)
    if used == "gradcam":
        weights = grad.mean(dim=(2, 3), keepdim=True)  # one weight per channel
        cam = F.relu((weights * wrt).sum(1, keepdim=True)).detach().float()
        sal = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    else:
        sal = grad.detach().float().abs().amax(1)[0]
    sal = sal.cpu()
    lo, hi = sal.min(), sal.max()
    return ((sal - lo) / (hi - lo) if hi > lo else torch.zeros_like(sal)), used


def saliency(
    model: nn.Module, x: torch.Tensor, target: int | None = None, method: str = "gradcam"
) -> torch.Tensor:
    """Where the evidence for class ``target`` (default: the predicted class) is: a map (H, W)
    in [0, 1] for one normalised input (C,H,W) or (1,C,H,W).

    * ``"gradient"``: |d logit / d input|, the maximum over the colour channels.
    * ``"gradcam"``: Grad-CAM on the last Conv2d layer (its block output, after the BatchNorm
      and ReLU that follow it), upsampled bilinearly to the input size. A model without
      convolutions (the MLP) has no feature maps, so it falls back to ``"gradient"``
      (``saliency_with_method`` says which was used).

    The model's train/eval mode, ``requires_grad`` flags and parameter gradients are left as
    they were.
    """
    return saliency_with_method(model, x, target, method)[0]


# ----------------------------------------------------------------------------- one image
@dataclass
class Inspection:
    """How a model sees one image (see ``inspect_image``)."""

    input: torch.Tensor  # uint8 (C, H, W), as the model saw it
    probabilities: list[float]
    predicted: str
    outputs: dict[str, torch.Tensor] = field(repr=False)
    stats: dict[str, dict[str, Any]] = field(repr=False)
    saliency: torch.Tensor = field(repr=False)  # (H, W) in [0, 1]
    classes: list[str] = field(default_factory=list)
    predicted_index: int = 0
    saliency_method: str = "gradcam"  # the method used: "gradient" where gradcam fell back
    ood_score: float | None = None  # how unlike the training images (infer/ood.py); None: no score
    unknown_threshold: float | None = None  # the run's: over it, the answer is "unknown"

    @property
    def unknown(self) -> bool:
        return bool(is_unknown(self.ood_score, self.unknown_threshold))

    def to_dict(self, max_values: int = 4096) -> dict[str, Any]:
        """JSON-ready. Per layer its shape and stats, plus ``values`` (nested lists, 5 decimals)
        for layers of at most ``max_values`` numbers, so a web page can draw them."""
        layers = []
        for name, t in self.outputs.items():
            row: dict[str, Any] = {"name": name, **self.stats[name]}
            if t.numel() <= max_values:
                v = torch.round(t.float(), decimals=5)
                row["values"] = torch.where(v.isfinite(), v, torch.zeros_like(v)).tolist()
            layers.append(row)
        return {
            "predicted": self.predicted,
            "predicted_index": self.predicted_index,
            "classes": list(self.classes),
            "probabilities": dict(zip(self.classes, self.probabilities, strict=True)),
            "input_shape": list(self.input.shape),
            "layers": layers,
            "saliency_method": self.saliency_method,
            "saliency": torch.round(self.saliency.float(), decimals=4).tolist(),
        }


def inspect_image(
    model: nn.Module,
    preprocess: Preprocess,
    image: ImageInput,
    layers: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    method: str = "gradcam",
    prepared: bool = False,
) -> Inspection:
    """Everything about how ``model`` sees one image (a path, PIL image, array or uint8 tensor):
    the prepared input, class probabilities (as ``predict`` computes them, flip TTA included),
    every layer's output (or ``layers``) with stats, and a saliency map for the prediction.

    ``prepared``: ``image`` is already what the model sees, a uint8 (C, H, W) tensor of the
    model's input shape (an image of a dataset split, or ``preprocess.prepare_image``'s
    result): used as is, as evaluation uses it, not prepared a second time."""
    if prepared:
        seen = torch.as_tensor(image)
        if seen.dtype != torch.uint8 or tuple(seen.shape) != preprocess.input_shape:
            raise ModelError(
                f"a prepared image is a uint8 tensor of shape {preprocess.input_shape}, "
                f"not {seen.dtype} {tuple(seen.shape)}"
            )
    else:
        seen = preprocess.prepare_image(image)
    x = preprocess.normalize(seen[None])
    outputs = layer_outputs(model, x, layers)
    detector = detector_of(model)
    device = _device_dtype(model)[0]
    if detector is None:
        logits, score = batched_logits(model, seen[None], preprocess, device=device), None
    else:
        logits, features = batched_logits(model, seen[None], preprocess, device, features=True)
        score = round(float(detector.scores(features)[0]), 4)
    probs = logits.float().softmax(1)[0]
    names = [str(c) for c in classes] if classes else [str(i) for i in range(len(probs))]
    if len(names) != len(probs):
        raise ModelError(f"{len(names)} class names given for a model with {len(probs)} outputs")
    top = int(probs.argmax())
    sal, used = saliency_with_method(model, x, target=top, method=method)
    return Inspection(
        seen,
        [round(p, 6) for p in probs.tolist()],
        names[top],
        outputs,
        activation_stats(outputs),
        sal,
        names,
        top,
        used,
        score,
        None if detector is None else detector.threshold,
    )
