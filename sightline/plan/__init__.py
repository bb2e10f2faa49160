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
    "TrainConfig": "sightline.plan.config",
    "plan_steps": "sightline.plan.config",
    "resolve_config": "sightline.plan.config",
    "DataOptions": "sightline.plan.inputs",
    "ModelChoice": "sightline.plan.inputs",
    "class_list": "sightline.plan.inputs",
    "image_size": "sightline.plan.inputs",
    "kv_pair": "sightline.plan.inputs",
    "add_cli_options": "sightline.plan.option_faces",
    "cli_flags": "sightline.plan.option_faces",
    "cli_type": "sightline.plan.option_faces",
    "cli_values": "sightline.plan.option_faces",
    "declared": "sightline.plan.options",
    "declared_option": "sightline.plan.options",
    "VARIANTS": "sightline.plan.recipes",
    "get_recipe": "sightline.plan.recipes",
    "list_recipes": "sightline.plan.recipes",
    "TrainRequest": "sightline.plan.resolve",
    "Plan": "sightline.plan.resolve",
    "resolve": "sightline.plan.resolve",
    "complete": "sightline.plan.resolve",
    "check": "sightline.plan.resolve",
    "json_schema": "sightline.plan.option_faces",
    "object_schema": "sightline.plan.option_faces",
    "DEFAULT_DATASET": "sightline.plan.resolve",
    "preview": "sightline.plan.preview",
    "for_machine": "sightline.plan.recipes",
}

if TYPE_CHECKING:
    from sightline.plan.config import TrainConfig, plan_steps, resolve_config
    from sightline.plan.inputs import DataOptions, ModelChoice, class_list, image_size, kv_pair
    from sightline.plan.option_faces import (
        add_cli_options,
        cli_flags,
        cli_type,
        cli_values,
        json_schema,
        object_schema,
    )
    from sightline.plan.options import declared, declared_option
    from sightline.plan.preview import preview
    from sightline.plan.recipes import VARIANTS, for_machine, get_recipe, list_recipes
    from sightline.plan.resolve import DEFAULT_DATASET, Plan, TrainRequest, check, complete, resolve

__all__ = [
    "add_cli_options",
    "check",
    "class_list",
    "cli_flags",
    "cli_type",
    "cli_values",
    "complete",
    "DataOptions",
    "declared",
    "declared_option",
    "DEFAULT_DATASET",
    "for_machine",
    "get_recipe",
    "image_size",
    "json_schema",
    "kv_pair",
    "list_recipes",
    "ModelChoice",
    "object_schema",
    "Plan",
    "plan_steps",
    "preview",
    "resolve",
    "resolve_config",
    "TrainConfig",
    "TrainRequest",
    "VARIANTS",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
