"""The plan: one request (what a face was asked) → one resolved plan (how the run trains).

Every rule that decides a training run lives here, written once: the defaults, each model's
tuned defaults, pretrained weights (a head on frozen features unless fine-tuned), the named
recipes and their machine variants, the GPU recipe, the folder recipe, the device's defaults
and the world size. ``fit``, ``run_training``, ``sightline train`` and a web job all reach them
through ``resolve`` and ``complete``; the faces only translate their input into a
``TrainRequest``. Importing this package does not import PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports

_EXPORTS = {
    "TrainRequest": "sightline.plan.resolve",
    "Plan": "sightline.plan.resolve",
    "resolve": "sightline.plan.resolve",
    "complete": "sightline.plan.resolve",
    "check": "sightline.plan.resolve",
}

if TYPE_CHECKING:
    from sightline.plan.resolve import Plan, TrainRequest, check, complete, resolve

__all__ = ["Plan", "TrainRequest", "check", "complete", "resolve"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
