"""Epochs that fit a time budget on this machine: ``time_budget`` (seconds of training).

A recipe's minutes hold on the machine it was measured on. The same 2 cores train at very
different rates elsewhere: float32 convolutions run about twice as fast per core on an Intel
CPU with AVX-512 as on an AVX2 one, and an AMD CPU with AVX-512 executes it at about AVX2's
rate per cycle. So a recipe says how long it may train, and ``epochs_for_budget`` times a few
real training steps of the run (a copy of the model, the run's own batch, augmentation,
precision and optimizer) before the run starts, then trains as many epochs as fit: at most
the configured ``epochs`` (the recipe's best schedule), at least one.

* The timed steps run on a throwaway copy of the model and optimizer, under a forked random
  state: the run itself starts exactly as it would without the budget, and the same seed and
  epoch count give the same weights.
* What was chosen is written to the run's config.json (``epochs``, and the measurement under
  ``extra.time_budget``), so a resumed run keeps its schedule and a run says why it trained
  that long. ``--epochs`` given by the user wins over a recipe's budget; ``--time-budget``
  given by the user caps the epochs given with it.
* The first steps of a process are slower (memory being mapped in, kernels chosen), so
  ``WARMUP_STEPS`` untimed steps come first; then steps are timed for ``TIMED_SECONDS``: the
  estimate is their mean, which counts the hiccups an epoch has too.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline.data.dataset import Dataset
from sightline.devices import resolve_device
from sightline.plan.config import TrainConfig, steps_per_epoch
from sightline.train.loop import Trainer  # the run's own step: no second copy of it to drift

WARMUP_STEPS = 3  # untimed: the process's first steps map memory in and choose kernels
TIMED_STEPS = (
    3  # then at least this many steps are timed (a large model's step can take seconds) ...
)
TIMED_SECONDS = 1.5  # ... and for at least this long: a burst of a few steps ran up to 15 % faster
# than the same steps over an epoch (2 cores, fastcnn width 16: 18 ms against 21)
GPU_TIMED_SECONDS = 0.25  # a GPU's steps take the same time each (and its runs are seconds long)
FORWARD_SHARE = 1 / 3  # an image's forward pass costs about a third of its training step


def measure_step_seconds(model: nn.Module, data: Dataset, cfg: TrainConfig) -> float:
    """Seconds one training step of ``cfg``'s batch takes here, timed on a copy of ``model``."""
    probe_cfg = dataclasses.replace(cfg, cuda_graphs=False, max_steps=None, checkpoint_every=0)
    device = resolve_device(cfg.device)
    with (
        tempfile.TemporaryDirectory() as tmp,
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
    ):
        trainer = Trainer(copy.deepcopy(model), data, probe_cfg, Path(tmp), callbacks=[])
        trainer.writes = False
        torch.manual_seed(cfg.seed)
        images, labels = trainer.train_inputs(), trainer.data.train.labels.to(trainer.device)
        gen = torch.Generator().manual_seed(cfg.seed)
        batch = min(cfg.batch_size, len(labels))
        trainer.model.train()
        least = TIMED_SECONDS if trainer.device.type == "cpu" else GPU_TIMED_SECONDS
        steps, start = -WARMUP_STEPS, 0.0
        while steps < TIMED_STEPS or time.perf_counter() - start < least:
            if steps == 0:
                _sync(trainer.device)
                start = time.perf_counter()
            idx = torch.randint(len(labels), (batch,), generator=gen).to(trainer.device)
            trainer.train_step(*trainer.step_batch(images, labels, idx, gen))
            steps += 1
        _sync(trainer.device)
        return (time.perf_counter() - start) / steps


def epoch_seconds(step_s: float, data: Dataset, cfg: TrainConfig, flip_tta: bool) -> float:
    """An epoch's estimated seconds: its steps, and the validation after it (a forward pass per
    image, two with flip TTA)."""
    seconds = steps_per_epoch(len(data.train), cfg.batch_size) * step_s
    if data.val is not None:
        per_image = step_s / min(cfg.batch_size, len(data.train)) * FORWARD_SHARE
        seconds += (
            len(data.val) * per_image * (2 if flip_tta else 1) * (1 + 2 * bool(cfg.shift_tta))
        )
    return seconds


def epochs_for_budget(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    step_s: float | None = None,
    budget_given: bool = False,
) -> tuple[TrainConfig, list[str]]:
    """``cfg`` with as many epochs as fit ``cfg.time_budget`` seconds here (at most ``cfg.epochs``,
    at least one more than ``head_epochs``), and a note line saying what was chosen and why.
    ``step_s``: the step already timed for ``cfg`` (else it is timed here). ``budget_given``: the
    caller set the budget (not a recipe), so ``--epochs`` caps it rather than replacing it."""
    budget = cfg.time_budget
    if budget is None:
        return cfg, []
    step_s = measure_step_seconds(model, data, cfg) if step_s is None else step_s
    per_epoch = epoch_seconds(step_s, data, cfg, cfg.flips(data.flip))
    fit = math.floor(budget / per_epoch) if per_epoch > 0 else cfg.epochs
    epochs = max(min(cfg.epochs, fit), cfg.head_epochs + 1, 1)
    measured: dict[str, Any] = {
        "seconds": budget,
        "step_s": round(step_s, 5),
        "epoch_s": round(per_epoch, 2),
        "max_epochs": cfg.epochs,
        "epochs": epochs,
    }
    if epochs > fit:  # the fewest a run trains: one epoch, or one after fine-tuning's head epochs
        why = f"{'fewer than 1' if fit < 1 else f'only {fit}'} fit; trains {epochs} anyway"
    elif epochs == cfg.epochs:
        why = f"all {epochs} fit"
    else:
        why = f"{epochs} of at most {cfg.epochs} fit"
    hint = "--epochs N sets the most it trains" if budget_given else "--epochs N fixes the number"
    note = (
        f"time budget {_seconds(budget)} of training: {why} at ~{_seconds(per_epoch)} an epoch "
        f"(a step of {cfg.batch_size} images timed here at {step_s * 1000:.3g} ms; {hint})"
    )
    extra = {**cfg.extra, "time_budget": measured}
    return dataclasses.replace(cfg, epochs=epochs, extra=extra), [note]


def wants_budget(cfg: TrainConfig, given: set[str]) -> bool:
    """A budget applies unless the caller fixed the epochs and the budget came from a recipe (the
    caller's own ``--epochs`` is then what they asked for), or the run trains a head on frozen
    features (epochs of milliseconds)."""
    if cfg.time_budget is None or cfg.freeze:
        return False
    return "epochs" not in given or "time_budget" in given


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _seconds(s: float) -> str:
    return f"{s:.3g} s" if s < 20 else f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
