"""What a request would train with, without training it: the plan's preview.

``preview`` runs the plan's own steps, in their order: ``check`` (``resolve`` and the options'
checks: what a server runs before it queues a job), then ``complete`` on the data's outline
(``data/outline.py``: classes, split sizes and input shape from the file inventory, no image
decoded) with the model's architecture on PyTorch's "meta" device (no weights, no memory). So
what it shows — the folder recipe's epochs and batch, the device's defaults, the notes — is
what ``sightline train``, ``fit`` and a queued job would train with, from the same code. What
only the trainer settles is not in it: bf16 or float32 where a CPU's speed has to be timed, the
epochs a time budget allows, several processes (``train/machine.py``, ``train/distributed.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sightline.plan.config import StepPlan, plan_steps
from sightline.plan.resolve import (
    Plan,
    TrainRequest,
    check,
    check_fits,
    complete,
    planned_config,
)


@dataclass
class Preview:
    """A completed plan (``plan.config`` set), the data it would train on and its steps.
    ``data`` is None for a built-in dataset not yet loaded on this machine (its labels are
    unknown until then): the config is then the options' before the data's rules."""

    plan: Plan
    data: Any = None  # the data's outline (a Dataset with meta images)
    steps: StepPlan | None = None
    # The plan's notes with the data's in between, in the order a job's log shows them:
    # {"topic": "recipe" | "data" | "device", "text": ...}
    notes: list[dict[str, str]] = field(default_factory=list)


def preview(request: TrainRequest) -> Preview:
    """The plan ``request`` makes: ConfigError / ModelError / DataError as training would
    meet them (an unknown class, a model too large for the machine), before any is queued."""
    from sightline.data import Dataset
    from sightline.data.outline import outline_dataset

    plan = check(request)
    if isinstance(plan.dataset, Dataset):  # a face that already holds the data
        data = plan.dataset
    else:
        data = outline_dataset(plan.dataset, **plan.data_options)
    if data is None:
        plan.config = planned_config(plan)
        plan.note(
            "data",
            f"{plan.dataset} is not loaded on this machine yet: its steps per epoch, and the "
            "rules that depend on them, are settled when the job loads it",
        )
        return Preview(plan, notes=list(plan.notes))
    check_fits(plan, data.input_shape, data.num_classes)  # as ``train.api.prepare`` does
    shown = len(plan.notes)
    complete(plan, data, _architecture(plan, data))
    assert plan.config is not None
    notes = [
        *plan.notes[:shown],
        *({"topic": "data", "text": line} for line in data.notes),
        *plan.notes[shown:],
    ]
    return Preview(plan, data, plan_steps(len(data.train), plan.config), notes)


def _architecture(plan: Plan, data: Any) -> Any:
    """The plan's model on the meta device: its layers (``complete`` asks whether it is a
    convnet, which decides bf16 on an AMX CPU) without allocating or loading any weights."""
    import torch

    from sightline.models.registry import architecture_options, create_model

    options = architecture_options(plan.model_options)
    with torch.device("meta"):
        return create_model(plan.model, data.input_shape, data.num_classes, **options)
