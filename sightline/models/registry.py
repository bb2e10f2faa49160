"""The model registry: every architecture by name, built with ``create_model``.

A model family lives in its own module and registers its builder with ``@register_model``. A
builder takes ``input_shape`` (C, H, W), ``num_classes`` and keyword options, and returns an
``nn.Module`` that maps float (N, C, H, W) to logits (N, num_classes). ``create_model`` records
how the model was built on ``model.sightline_config``, so a checkpoint can rebuild it exactly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from sightline.errors import ModelError

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Builder
    description: str
    train_defaults: dict[str, object]  # recommended TrainConfig values (lr, optimizer, ...)

    def options(self) -> dict[str, object]:
        """The builder's keyword options and their defaults."""
        params = inspect.signature(self.builder).parameters
        return {
            k: p.default
            for k, p in params.items()
            if k not in ("input_shape", "num_classes") and p.default is not inspect.Parameter.empty
        }


_REGISTRY: dict[str, ModelEntry] = {}
DEFAULT_MODEL = "fastcnn"


def register_model(
    name: str, description: str, train_defaults: dict[str, object] | None = None
) -> Callable[[Builder], Builder]:
    """Decorator for a builder ``fn(input_shape, num_classes, **options) -> nn.Module``.

    ``train_defaults`` are the training settings this architecture is tuned for (keys of
    ``sightline.train.TrainConfig``); the user's explicit settings override them.
    """

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, description, dict(train_defaults or {}))
        return builder

    return wrap


def list_models() -> list[ModelEntry]:
    _load_families()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_model_entry(name: str) -> ModelEntry:
    _load_families()
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, input_shape: tuple[int, int, int], num_classes: int, **options: object) -> nn.Module:
    """Build model ``name`` for images of ``input_shape`` (C, H, W) and ``num_classes`` classes.

    >>> model = create_model("mlp", (1, 28, 28), 10, hidden=128)
    """
    entry = get_model_entry(name)
    known = entry.options()
    unknown = sorted(set(options) - set(known))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
        raise ModelError(f"model {name!r} has no option {', '.join(unknown)}; its options: {valid}")
    input_shape = tuple(int(s) for s in input_shape)  # type: ignore[assignment]
    try:
        model = entry.builder(input_shape=input_shape, num_classes=int(num_classes), **options)
    except (ValueError, TypeError) as e:
        raise ModelError(f"cannot build {name!r} for input {input_shape} and {num_classes} classes: {e}") from None
    model.sightline_config = {  # type: ignore[assignment]
        "name": name,
        "input_shape": list(input_shape),
        "num_classes": int(num_classes),
        "options": {**known, **options},
    }
    return model


def _load_families() -> None:
    # Importing the family modules runs their @register_model decorators.
    from sightline.models import fastcnn, mlp, tutorial_cnn  # noqa: F401
