"""Looking inside a trained network: layer outputs, their statistics, saliency maps.

Layers are named as in ``sightline.models.summary`` (dotted module names such as
``stage1.conv.relu``). Everything here returns plain tensors, or dicts ready for ``json.dumps``
(for the web UI). The figures live in ``sightline.inspect_plots`` and are re-exported here
(``plot_activations``, ``plot_layer``, ``plot_filters``, ``plot_dense_weights``,
``plot_saliency``), imported on first use so that the numbers alone never load matplotlib.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sightline.data.preprocess import ImageInput, Preprocess
from sightline.errors import ModelError
from sightline.inference import batched_logits
from sightline.models.summary import conv_layers

SALIENCY_METHODS = ("gradcam", "gradient")

# Modules that map a feature map to one of the same shape, element by element (or per channel):
# Grad-CAM looks at the conv *block* output, i.e. after the BatchNorm/ReLU that follow the conv.
_ELEMENTWISE = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Hardswish, nn.Sigmoid, nn.Tanh, nn.Identity, nn.Dropout, nn.Dropout2d)  # fmt: skip


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
        raise ModelError(f"inspect takes one normalised image of shape {want}, got {tuple(x.shape)}; "
                         "use Preprocess to turn an image into model input")  # fmt: skip
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
def layer_outputs(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
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
        raise ModelError(f"layer(s) {', '.join(missing)} produced no tensor output in the forward pass")
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


# ----------------------------------------------------------------------------- saliency
def _cam_layer_hooks(model: nn.Module, record: list):
    """Record (module, first input, output) of every leaf call, in forward order."""

    def hook(module, inp, out):
        record.append((module, inp[0] if inp else None, out))

    return [m.register_forward_hook(hook) for n, m in model.named_modules() if n and not list(m.children())]


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


def saliency_with_method(model: nn.Module, x: torch.Tensor, target: int | None = None,
                         method: str = "gradcam") -> tuple[torch.Tensor, str]:  # fmt: skip
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


def saliency(model: nn.Module, x: torch.Tensor, target: int | None = None, method: str = "gradcam") -> torch.Tensor:
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


def inspect_image(model: nn.Module, preprocess: Preprocess, image: ImageInput, layers: Sequence[str] | None = None,
                  classes: Sequence[str] | None = None, method: str = "gradcam") -> Inspection:  # fmt: skip
    """Everything about how ``model`` sees one image (a path, PIL image, array or uint8 tensor):
    the prepared input, class probabilities (as ``predict`` computes them, flip TTA included),
    every layer's output (or ``layers``) with stats, and a saliency map for the prediction."""
    prepared = preprocess.prepare_image(image)
    x = preprocess.normalize(prepared[None])
    outputs = layer_outputs(model, x, layers)
    probs = batched_logits(model, prepared[None], preprocess, device=_device_dtype(model)[0]).float().softmax(1)[0]
    names = [str(c) for c in classes] if classes else [str(i) for i in range(len(probs))]
    if len(names) != len(probs):
        raise ModelError(f"{len(names)} class names given for a model with {len(probs)} outputs")
    top = int(probs.argmax())
    sal, used = saliency_with_method(model, x, target=top, method=method)
    return Inspection(prepared, [round(p, 6) for p in probs.tolist()], names[top], outputs, activation_stats(outputs),
                      sal, names, top, used)  # fmt: skip


# ----------------------------------------------------------------------------- figures
_PLOTS = ("plot_activations", "plot_layer", "plot_filters", "plot_dense_weights", "plot_saliency")

__all__ = ["SALIENCY_METHODS", "Inspection", "activation_stats", "conv_layers", "inspect_image", "layer_outputs",
           "leaf_names", "saliency", "saliency_with_method", *_PLOTS]  # fmt: skip


def __getattr__(name: str):
    # The figures need matplotlib; importing them on first use keeps ``import sightline.inspect``
    # light for code that only wants the numbers (the web server's JSON).
    if name in _PLOTS:
        from sightline import inspect_plots

        return getattr(inspect_plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
