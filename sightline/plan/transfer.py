"""Transfer learning's data side: train on the input the pretrained weights expect.

ImageNet weights were trained on 224 px RGB photos normalised their own way; the backbone's
features are only as good as the match. So a pretrained model gets its data prepared to the
model's ``pretrained_input`` (size and channels, unless the user chose others: a grayscale
folder is replicated to RGB, a 32 px CIFAR image is enlarged), and the dataset's ``Preprocess``
takes the weights' mean/std instead of the data's own. The run saves that ``Preprocess``, so
predict, evaluate and the server prepare photos the same way with nothing else to know.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sightline.data.dataset import Dataset
from sightline.errors import ConfigError
from sightline.models import get_model_entry


def pretrained_input(model: str) -> dict[str, Any]:
    """The input model ``model``'s pretrained weights expect; ConfigError if it has none."""
    entry = get_model_entry(model)
    if entry.pretrained_input is None or "pretrained" not in entry.options():
        with_weights = [e.name for e in _models_with_weights()]
        raise ConfigError(
            f"model {model!r} has no pretrained weights; models with them: {', '.join(with_weights)}"
        )
    return dict(entry.pretrained_input)


def _models_with_weights() -> list[Any]:
    from sightline.models import list_models

    return [e for e in list_models() if e.pretrained_input is not None]


def default_pretrained_model() -> str:
    return _models_with_weights()[0].name


# The backbones the folder recipe picks from when no model is named, most accurate first: each
# with the seconds one image's features took (one view; 2 cores of an Intel Xeon, ONNX Runtime,
# 600 photos and their mirrors, benchmarks/transfer.py 2026-11-28: 41.6 and 28.9 s) and its
# accuracy there (the 3,000 test images, 2026-11-29: 97.50 and 96.93 %). Lite1 (34.0 s on an
# AMD EPYC where Lite0 took 21.7 s, 96.83 %) is slower than Lite0 and no better: not picked.
BACKBONE_CHOICES = (("efficientnet-lite2", 0.035, 97.50), ("efficientnet-lite0", 0.024, 96.93))
FEATURE_BUDGET = 120.0  # seconds of features the pick may cost without --time-budget
VIEWS = 2  # each image and its mirror (photos are flipped)


def pick_backbone(
    images: int, time_budget: float | None, on_gpu: bool, available: Any = None
) -> tuple[str, str]:
    """(the backbone for a folder of ``images`` images, the plan's note saying why): the most
    accurate of ``BACKBONE_CHOICES`` whose weights are here (``available(name)``) and whose
    features fit ``time_budget`` seconds (else ``FEATURE_BUDGET``) at this measured pace; on a
    GPU the most accurate (its features take seconds)."""
    if available is None:
        from sightline.models.pretrained import weights_available as available
    choices = [c for c in BACKBONE_CHOICES if available(c[0])]
    if not choices:
        name = default_pretrained_model()
        return name, f"backbone {name}: the pretrained model (no other has its weights here)"
    budget = float(time_budget or FEATURE_BUDGET)
    best = choices[0]
    for name, seconds, accuracy in choices:
        cost = images * VIEWS * seconds
        if on_gpu or cost <= budget:
            where = (
                "a GPU"
                if on_gpu
                else f"~{cost:.0f} s of features on 2 CPU cores, within {budget:.0f} s"
            )
            better = (
                ""
                if (name, seconds, accuracy) != best or len(choices) == 1
                else (f"; the most accurate here ({accuracy:.1f} % on 600 CIFAR photos)")
            )
            return name, f"backbone {name} for {images:,} images: {where}{better}"
    name, seconds, _ = choices[-1]
    return name, (
        f"backbone {name} for {images:,} images: the fastest; ~{images * VIEWS * seconds:.0f} s "
        f"of features on 2 CPU cores, over {budget:.0f} s (--model names another)"
    )


def transfer_data_options(model: str, data_options: dict[str, Any]) -> dict[str, Any]:
    """``load_dataset`` options for a pretrained ``model``: its size and channels unless given,
    and the resampling its weights were trained with (timm's configs say bicubic for most)."""
    want = pretrained_input(model)
    out = dict(data_options)
    if want.get("interpolation", "bilinear") != "bilinear":
        out.setdefault("interpolation", want["interpolation"])
    if out.get("size") is None:
        out["size"] = want["size"]
    if out.get("channels") is None:
        out["channels"] = want.get("channels", 3)
    return out


def with_pretrained_normalization(data: Dataset, model: str) -> Dataset:
    """``data`` whose ``Preprocess`` normalises as the pretrained weights expect."""
    want = pretrained_input(model)
    c = data.preprocess.channels
    mean, std = tuple(want["mean"]), tuple(want["std"])
    if c != len(mean):  # grayscale kept as one channel: the weights' stem sums over RGB
        mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
    return replace(data, preprocess=replace(data.preprocess, mean=mean, std=std))
