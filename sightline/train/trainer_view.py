"""What a training concern, a feed or a world may read and change of the trainer: the
``Trainer``'s face to its collaborators (``train/loop.py`` owns it).

A ``Protocol`` rather than the class itself, so the concerns (``train/callbacks``), the feeds
(``train/feed.py``, ``train/frozen.py``) and the worlds (``train/world.py``,
``train/distributed``) that ``loop.py`` imports can name it without importing it back. A new
concern reads what it needs from here; an attribute not listed is the trainer's own business.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from sightline.data.augment import Augment
from sightline.data.dataset import Dataset
from sightline.data.preprocess import Preprocess
from sightline.plan.config import StepPlan, TrainConfig
from sightline.run.writer import RunWriter
from sightline.train.mixing import Mixer
from sightline.train.precision import Precision


class TrainerView(Protocol):
    # ---------------------------------------------------------------- what it trains, where
    cfg: TrainConfig  # the settled plan's training options (plan/resolve.settle)
    data: Dataset
    model: nn.Module  # on ``device``, channels-last where faster
    device: torch.device
    channels_last: bool
    optimizer: torch.optim.Optimizer
    precision: Precision  # autocast and fp16's loss scale
    augment: Augment
    mixer: Mixer  # mixup / cutmix (train/mixing.py); ``mixer.last``: the current batch's mix
    preprocess: Preprocess  # what the run saves with its model
    feed: Any  # what a step feeds the model: train/feed.py's ImageFeed, or frozen features
    world: Any  # one process, or a rank of several: train/world.py's World
    plan: StepPlan  # steps per epoch, total steps, where to stop
    steps: int  # per epoch
    total_steps: int  # the schedule's length
    lookahead: Any  # train/lookahead.py's averaging, or None
    early: Any  # the early-stopping concern (its monitor and best)
    logit_adjustment: torch.Tensor | None  # (K,) added to the logits in the loss (train/loss.py)
    concerns: list[Any]  # the training concerns, in order (train/callbacks)

    # ---------------------------------------------------------------- where it is
    epoch: int  # completed epochs
    step_in_epoch: int
    global_step: int
    gen: torch.Generator | None  # the epoch's batch order
    sums: torch.Tensor  # (3,) the epoch's loss sum, correct and seen, on the device
    sum_dtype: torch.dtype
    epoch_time: float
    warmup_seconds: float | None
    history: list[dict[str, Any]]  # one row per epoch (metrics.csv)
    status: str  # running, finished, early_stopped, max_steps, interrupted, failed
    error: str | None
    stop_training: bool  # a concern's word: stop after this epoch
    stop_requested: bool  # Ctrl-C or should_stop: stop at the next step
    should_stop: Callable[[], bool] | None

    # ---------------------------------------------------------------- what it writes
    run_dir: Path
    writes: bool  # this process writes the run folder (rank 0)
    writer: RunWriter  # the one writer of the run's files

    @property
    def monitor(self) -> str: ...  # the metric the best epoch is chosen on

    def emit(self, event: str, payload: Any) -> None: ...
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None: ...
    def optimize(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...
    def train_inputs(self) -> torch.Tensor: ...
    def step_batch(
        self, inputs: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...
    def flip_mask(self, idx: torch.Tensor) -> torch.Tensor | None: ...
    def stop_asked(self) -> bool: ...
    def read_sums(self) -> list[float]: ...
    def save_model(self, which: str, meta: dict[str, Any]) -> None: ...
    def save_checkpoint(self, gen: torch.Generator | None) -> None: ...
    def fit(self, resume_state: dict[str, Any] | None = None) -> dict[str, Any]: ...
