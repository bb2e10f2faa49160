"""A Keras-style model summary: each layer, its output shape and parameter count, and totals.

Layer names are the dotted module names (``stage1.conv.bn``), the same names that hidden-layer
tools use to pick layers. Like Keras, BatchNorm's moving mean and variance count as
non-trainable parameters (so the CIFAR tutorial's model shows its familiar 289,443).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sightline.errors import ModelError

if TYPE_CHECKING:
    from torch import nn


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: tuple[int | None, ...]
    params: int
    trainable: int


@dataclass
class ModelSummary:
    name: str
    input_shape: tuple[int, ...]
    layers: list[LayerRow] = field(default_factory=list)
    total: int = 0
    trainable: int = 0

    @property
    def non_trainable(self) -> int:
        return self.total - self.trainable

    @property
    def size_mb(self) -> float:
        return self.total * 4 / 2**20  # float32

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [
                {
                    "name": r.name,
                    "type": r.type,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                    "trainable": r.trainable,
                }
                for r in self.layers
            ],
            "total": self.total,
            "trainable": self.trainable,
            "non_trainable": self.non_trainable,
        }

    def __str__(self) -> str:
        def shape(s: tuple) -> str:
            return "(" + ", ".join("None" if d is None else str(d) for d in s) + ")"

        rows = [
            (f"{r.name} ({r.type})", shape(r.output_shape), f"{r.params:,}") for r in self.layers
        ]
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows])
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows])
        w2 = max([len("Param #")] + [len(r[2]) for r in rows])
        width = w0 + w1 + w2 + 4
        lines = [
            f'Model: "{self.name}"   input {shape((None, *self.input_shape))}, shapes are (batch, channels, height, width)',
            "_" * width,
            f"{'Layer (type)':<{w0}}  {'Output Shape':<{w1}}  {'Param #':>{w2}}",
            "=" * width,
        ]
        lines += [f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}" for a, b, c in rows]
        lines += [
            "=" * width,
            f"Total params: {self.total:,} ({self.size_mb:.2f} MB)",
            f"Trainable params: {self.trainable:,}",
            f"Non-trainable params: {self.non_trainable:,}",
            "_" * width,
        ]
        return "\n".join(lines)


def _own_counts(module: nn.Module) -> tuple[int, int]:
    """(all, trainable) parameters held directly by ``module``, BN statistics included."""
    params = list(module.parameters(recurse=False))
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    for name, buf in module.named_buffers(recurse=False):
        if buf is not None and name in ("running_mean", "running_var"):
            total += buf.numel()
    return total, trainable


def summary(model: nn.Module, input_shape: tuple[int, int, int] | None = None) -> ModelSummary:
    """Trace one forward pass and tabulate every leaf layer.

    >>> print(summary(create_model("mlp", (1, 28, 28), 10)))
    """
    import torch  # here, not at the top: `import sightline.models` stays free of PyTorch

    cfg = getattr(model, "sightline_config", {})
    shape = tuple(input_shape or cfg.get("input_shape") or ())
    if len(shape) != 3:
        raise ModelError(
            "summary needs input_shape (C, H, W) for a model not built by create_model"
        )
    result = ModelSummary(cfg.get("name", type(model).__name__), shape)
    outputs: dict[str, tuple[int | None, ...]] = {}
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def hook(mod, inp, out, name=name):
                if isinstance(out, torch.Tensor):
                    outputs[name] = (None, *out.shape[1:])

            hooks.append(module.register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((2, *shape), device=device))
    except RuntimeError as e:  # e.g. an MLP built for 28x28 given 32x32 images
        raise ModelError(f"{result.name} does not accept input of shape {shape}: {e}") from None
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    for name, module in model.named_modules():
        total, trainable = _own_counts(module)
        if name in outputs or (name and total):
            result.layers.append(
                LayerRow(name, type(module).__name__, outputs.get(name, ()), total, trainable)
            )
        result.total += total
        result.trainable += trainable
    return result


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The model's 2-D convolutions by dotted name: the one test of "is this a convnet" (for
    channels-last, Grad-CAM, filter pictures)."""
    from torch import nn

    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
