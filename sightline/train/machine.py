"""What only a measurement on this machine can decide, settled just before training starts.

The plan (``sightline.plan``) decides everything a rule can; two choices need a few timed
training steps of the real model on the real data, here:

* **precision** on a CPU with AVX-512 BF16 and no AMX: bf16 or float32, whichever steps faster
  (``cpu_precision``);
* **a time budget**: how many of the planned epochs fit in its seconds here (``time_budget``),
  reusing the step timed for the precision when there was one.

Neither applies under torchrun: the ranks would each time their own steps and could disagree.
"""

from __future__ import annotations

from torch import nn

from sightline.data.dataset import Dataset
from sightline.devices import resolve_device
from sightline.plan.config import TrainConfig
from sightline.train import cpu_precision
from sightline.train.time_budget import epochs_for_budget, wants_budget


def measure_for_machine(
    model: nn.Module, data: Dataset, cfg: TrainConfig, given: set[str], *, several: bool = False
) -> tuple[TrainConfig, list[str]]:
    """``cfg`` with the measured choices made (``given``: the options the caller set, which
    stand), and the lines that say what was chosen. ``several``: one of several processes."""
    notes: list[str] = []
    step_s = None  # a training step timed here: bf16 against float32, then for the time budget
    device_type = resolve_device(cfg.device).type
    if not several and cpu_precision.wants_timing(model, cfg, device_type, given, len(data.train)):
        cfg, precision_notes, step_s = cpu_precision.choose_precision(model, data, cfg)
        notes += precision_notes
    if wants_budget(cfg, given):
        if several:
            notes.append(
                f"time budget: not applied with several processes; trains all {cfg.epochs} epochs"
            )
        else:
            cfg, budget_notes = epochs_for_budget(
                model, data, cfg, step_s, budget_given="time_budget" in given
            )
            notes += budget_notes
    return cfg, notes
