"""The training loop: data on device, batched augmentation, exact resume.

Why it looks the way it does:
* The whole training set sits on the compute device as uint8; a step indexes a batch,
  normalises and augments it there. No DataLoader, no per-sample Python.
* All randomness of an epoch (shuffle order, augmentation) comes from one generator seeded by
  (seed, epoch), and dropout from the global RNG whose state is checkpointed. A run resumed
  from any checkpoint — end of epoch or mid-epoch — replays the same batches and ends with the
  same weights, bit for bit on CPU.
* The learning rate is a function of the global step (see optim.lr_factor), so the step
  counter is the whole scheduler state. The schedule spans the planned epochs (config.plan_steps);
  ``max_steps`` only ends the run early.
* Training is a job: a ``should_stop`` callable (or Ctrl-C) stops it between two steps with
  everything saved; an exception or a non-finite loss marks the run ``failed`` with the reason;
  the caller's global RNG state is the same after training as before.
* The loop is the same for every run: what a batch is comes from its feed (train/feed.py), who
  trains (one process, or a rank of several) from its world (train/world.py), and everything
  around a step (checkpoints, metrics, early stopping, ...) from its concerns (train/callbacks/).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline.data.augment import Augment, alternating_flips
from sightline.data.dataset import Dataset
from sightline.data.preprocess import Preprocess
from sightline.devices import resolve_device, retain_freed_cpu_memory, to_device
from sightline.errors import failure_text
from sightline.models.hardware import use_channels_last
from sightline.plan.config import TrainConfig, plan_steps
from sightline.plan.resolve import run_preprocess, settle
from sightline.run import checkpoint as ckpt
from sightline.run.writer import RunWriter
from sightline.train import cuda_graphs, resume_state, warmup
from sightline.train.callbacks import (
    Callback,
    Checkpointing,
    DivergenceCheck,
    EarlyStopping,
    LookaheadAveraging,
    MetricsFile,
)
from sightline.train.callbacks.progress_events import ProgressEvents
from sightline.train.callbacks.trackers import trackers
from sightline.train.feed import ImageFeed
from sightline.train.interrupt import graceful_sigint
from sightline.train.loss import logit_adjustment
from sightline.train.mixing import Mixer
from sightline.train.optim import (
    create_optimizer,
    freeze_backbone,
    limit_learning,
    lr_factor,
    set_lr,
)
from sightline.train.precision import Precision
from sightline.train.world import World


class StopRequested(Exception):
    """Ctrl-C was pressed or ``should_stop()`` said so: stop at the next step boundary and save."""


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Trainer:
    """Trains ``model`` on ``data`` into the run folder ``run_dir``. Use ``sightline.fit``."""

    def __init__(
        self,
        model: nn.Module,
        data: Dataset,
        cfg: TrainConfig,
        run_dir: Path,
        callbacks: list[Any],
        should_stop: Callable[[], bool] | None = None,
        feed: ImageFeed | None = None,
        world: World | None = None,
        preprocess: Preprocess | None = None,
    ) -> None:
        self.feed = feed or ImageFeed()  # what a step feeds the model (train/feed.py)
        self.feed.setup(model)
        self.world = world or World()  # one process, or a rank of several (train/world.py)
        self.cfg = cfg
        self.should_stop = should_stop
        self.data = data
        self.run_dir = Path(run_dir)
        # A ``Callback`` among ``callbacks`` is a training concern (gets the trainer, has state in
        # resume.pt); anything else hears the JSON-ready events (displays, the user's own).
        own = [c for c in callbacks if isinstance(c, Callback)]
        self.callbacks = [c for c in callbacks if not isinstance(c, Callback)]
        self.callbacks = self.callbacks if self.world.is_main else []
        self.device = self.world.device(resolve_device(cfg.device))
        if self.device.type == "cpu":
            retain_freed_cpu_memory()  # each step reuses the last one's memory instead of page-faulting it in
        self.channels_last = use_channels_last(model, self.device)
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # Every parameter a model limits to its first epochs is in the optimizer, whichever
        # epoch a run (or a second fit of this model) starts at: its saved state always matches.
        limit_learning(self.model, 0)
        self.optimizer = create_optimizer(self.model, cfg)
        self.precision = Precision(self.device, cfg.amp)  # bf16/fp16 autocast, fp16's loss scale
        # One GPU: the step's forward and backward replay as CUDA graphs (train/cuda_graphs.py).
        self.graphs = (
            cuda_graphs.GraphedTraining(
                self.model,
                lambda msg: self.emit("on_message", msg),
                batch_size=min(cfg.batch_size, len(data.train)),
            )
            if self.world.allows_cuda_graphs and cuda_graphs.wanted(self.device.type, cfg)
            else None
        )
        self.precision.cache_weights = self.graphs is None
        # The plan is final: the trainer trains it as it is (plan/resolve.py settles both).
        cfg = self.cfg = settle(cfg, data)
        self.augment = Augment.from_config(cfg, data.flip)
        self.mixer = Mixer(cfg.mixup, cfg.cutmix)  # mixup / cutmix of each batch (train/mixing.py)
        self.flip_base = (
            to_device(alternating_flips(len(data.train), cfg.seed), self.device)
            if self.augment.flip and cfg.alternate_flip
            else None
        )
        self.preprocess = preprocess or run_preprocess(cfg, data)  # what the run saves
        self.meta = ckpt.model_metadata(
            model, data.classes, self.preprocess.to_dict(), dataset=data.name
        )
        # The training concerns, in the order their hooks run (train/callbacks/): the best epoch
        # is known before its checkpoint is written.
        # The loss's logit adjustment for imbalanced classes, where the plan said so.
        self.logit_adjustment = (
            logit_adjustment(data.train.labels, data.num_classes).to(self.device)
            if cfg.balance
            else None
        )
        self.early = EarlyStopping(cfg.monitor, cfg.patience, cfg.min_delta, data.val is not None)
        self.lookahead = LookaheadAveraging(self.model) if cfg.lookahead else None
        self.files = MetricsFile()
        self.concerns: list[Callback] = [
            DivergenceCheck(),
            *([self.lookahead] if self.lookahead is not None else []),
            self.early,
            Checkpointing(cfg.checkpoint_every),
            self.files,
            *trackers(cfg.track, cfg.track_uri),  # --track: they see the files as written
            *own,  # fit(callbacks=[...])'s concerns
            ProgressEvents(),  # last: the events tell what the concerns before it decided
        ]
        self.plan = plan_steps(len(data.train), cfg)
        self.steps = self.plan.steps_per_epoch
        self.total_steps = self.plan.total_steps  # the schedule's length, even with max_steps
        # Progress state: everything here goes into the resume checkpoint.
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self.stop_training = False  # a concern's word: stop after this epoch (early stopping)
        # Running loss sum, correct count and images seen this epoch, kept on the device so a
        # step never waits for the GPU; read back only when progress is shown.
        self.sum_dtype = torch.float32 if self.device.type == "mps" else torch.float64
        self.sums = torch.zeros(3, dtype=self.sum_dtype, device=self.device)
        self.epoch_time = 0.0
        self.warmup_seconds: float | None = None  # the untimed warm-up's, when it ran
        self.status = "running"
        self.error: str | None = None
        self.stop_requested = False  # set by Ctrl-C; checked between steps
        self.writes = self.world.is_main  # this process writes the run folder
        self.writer = RunWriter(self.run_dir)  # the one writer of its files (run/writer.py)
        self.world.attach(self)

    # ------------------------------------------------------------------ events
    def emit(self, event: str, payload: Any) -> None:
        """Tell the displays and the user's callbacks (JSON-ready payloads, never the trainer)."""
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(payload)

    def _call(self, hook: str, *args: Any) -> None:
        """Run ``hook`` of every training concern, in order."""
        for concern in self.concerns:
            getattr(concern, hook)(self, *args)

    @property
    def monitor(self) -> str:
        return self.early.monitor

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, gen: torch.Generator | None) -> dict[str, Any]:
        """Everything a resumed run needs to go on bit for bit (train/resume_state.py)."""
        return resume_state.capture(self, gen)

    def load_state_dict(self, state: dict[str, Any]) -> torch.Generator | None:
        """Put ``state_dict``'s state back; returns the epoch's generator mid-epoch, else None."""
        return resume_state.restore(self, state)

    def save_checkpoint(self, gen: torch.Generator | None) -> None:
        state = self.state_dict(gen)
        if self.writes:
            self.writer.save_resume(state)

    def summary(self) -> dict[str, Any]:
        return self.files.summary(self)  # status.json

    # ------------------------------------------------------------------ one epoch
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        cfg = self.cfg
        set_lr(
            self.optimizer,
            cfg.lr * lr_factor(cfg.schedule, self.global_step, self.total_steps, cfg.warmup),
        )
        logits, loss_sum = self.optimize(x, y)
        self.global_step += 1
        self._call("on_optimizer_step")
        self.step_in_epoch += 1
        with torch.no_grad():
            self.sums[0] += loss_sum.to(self.sum_dtype)
            self.sums[1] += (logits.argmax(1) == y).sum().to(self.sum_dtype)
            self.sums[2] += y.numel()

    def optimize(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward (through the CUDA graph where there is one), loss, backward and optimizer
        step on the batch ``(x, y)``, nothing counted; returns (logits, the summed loss)."""
        autocast = self.precision.autocast
        logits = self.graphs(x, autocast) if self.graphs is not None else None
        with autocast():
            if logits is None:
                logits = self.world.forward(self, x)
            loss, loss_sum = self.world.loss(self, logits, y)
        self.precision.backward_and_step(loss, self.optimizer)
        return logits, loss_sum

    # What a step trains on: the feed's batch (train/feed.py), of which the world keeps this
    # process's rows (train/world.py), so resume and early stopping work the same for all.
    def train_inputs(self) -> torch.Tensor:
        return self.feed.train_inputs(self)

    def step_batch(
        self, inputs: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.world.step_batch(self, inputs, labels, idx, gen)

    def flip_mask(self, idx: torch.Tensor) -> torch.Tensor | None:
        """Which images of the batch ``idx`` are mirrored, with ``alternate_flip``; else None (a coin each)."""
        if self.flip_base is None:
            return None
        return self.flip_base[idx] ^ bool(self.epoch % 2)

    def _run_epoch(
        self, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator | None
    ) -> bool:
        """Train from the current position to the end of the epoch. False when stopped early."""
        cfg = self.cfg
        fresh = _epoch_generator(cfg.seed, self.epoch)
        # The epoch's order (the same on resume) goes to the device once: a batch's indices copied
        # over one step at a time would make the host wait for the GPU's queue every step.
        perm = to_device(torch.randperm(len(labels), generator=fresh), self.device)
        gen = gen if gen is not None else fresh
        start = time.monotonic() - self.epoch_time
        bs = cfg.batch_size
        self.model.train()
        if cfg.head_epochs:  # fine-tuning: the new head learns alone first
            freeze_backbone(self.model, self.epoch < cfg.head_epochs)
        if self.graphs is None:  # a captured CUDA graph keeps the parameters it was captured with
            limit_learning(self.model, self.epoch)
        self.gen = gen
        while self.step_in_epoch < self.steps:
            if self.global_step >= self.plan.stop_step:
                return False
            if self.world.stop_now(self):
                self.stop_requested = True
                raise StopRequested
            i = self.step_in_epoch
            end = len(labels) if i == self.steps - 1 else (i + 1) * bs
            idx = perm[i * bs : end]
            self.train_step(*self.step_batch(images, labels, idx, gen))
            self.epoch_time = time.monotonic() - start
            self._call("on_step_end")  # the step's progress event too (ProgressEvents)
        return True

    def stop_asked(self) -> bool:
        """Ctrl-C was pressed or ``should_stop()`` says stop (this process's view)."""
        return self.stop_requested or (self.should_stop is not None and self.should_stop())

    def read_sums(self) -> list[float]:
        """(loss sum, correct, images) of this process's epoch so far, read back from the device
        (a GPU sync) and shown to the concerns that watch the loss."""
        loss_sum, correct, seen = self.sums.tolist()
        self._call("on_sums", loss_sum, None)
        return [loss_sum, correct, seen]

    def _end_epoch(self) -> bool:
        """Validate, record, checkpoint. Returns True when early stopping says stop."""
        sums = self.world.epoch_sums(self)
        self._call("on_sums", sums[0], sums[0] / max(sums[2], 1))
        val_logits = self.world.val_logits(self) if self.data.val is not None else None
        row = self.files.epoch_row(self, sums, val_logits)
        # The best epoch and its checkpoint, early stopping, then the epoch's event.
        self._call("on_epoch_end", row)
        self.history.append(row)
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_time = 0.0
        self.sums.zero_()
        return self.stop_training

    def save_model(self, which: str, meta: dict[str, Any]) -> None:
        if self.writes:
            self.writer.save_model(which, self.model, {**self.meta, **meta})

    def _save_all(self, gen: torch.Generator | None) -> None:
        self._call("on_save", gen)  # last.safetensors, resume.pt, metrics.csv, status.json

    # ------------------------------------------------------------------ the loop
    def fit(self, resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Train to the end (or a stop); returns the status summary. The caller's global RNG
        state is restored afterwards: training seeds its own."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            try:
                return self._fit(resume_state)
            finally:
                if self.graphs is not None:  # its memory goes back, also if the trainer is kept
                    self.graphs.release()
                limit_learning(self.model, 0)  # the model leaves trainable, as it came
                self.world.detach(self)

    def _fit(self, resume_state: dict[str, Any] | None) -> dict[str, Any]:
        if self.writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        gen = None
        if resume_state is not None:
            gen = self.load_state_dict(resume_state)
        else:
            self.world.seed(self)
        self.status = "running"
        self._call("on_train_begin")
        try:
            with graceful_sigint(self, self.world.sigint_repeat_window):
                self._loop(gen)
        except Exception as e:
            # Whatever went wrong, the run folder says so: never "running" forever.
            self.status = "failed"
            self.error = failure_text(e)
            with contextlib.suppress(Exception):
                self.files.write(self)
            with contextlib.suppress(Exception):
                self._call("on_train_end")
            self.emit("on_train_end", self.summary())
            raise
        if self.status != "interrupted":
            self.save_checkpoint(None)  # records the final status for `resume`
        self.files.write(self)
        self._call("on_train_end")
        summary = self.summary()
        self.emit("on_train_end", summary)
        return summary

    def _loop(self, gen: torch.Generator | None) -> None:
        images = self.train_inputs()
        labels = self.data.train.labels.to(self.device)
        if warmup.wanted(self.device.type, self.cfg) and self.epoch < self.cfg.epochs:
            warmup.run(self, images, labels)  # untimed first steps, the state then put back
        try:
            while self.epoch < self.cfg.epochs:
                finished = self._run_epoch(images, labels, gen)
                gen = None
                stop = self._end_epoch() if (finished or self.step_in_epoch > 0) else False
                stop = self.world.agree(stop)
                self._save_all(None)
                if stop:
                    self.status = "early_stopped"
                    self.emit("on_message", self.early.stop_message())
                    break
                if not finished:
                    self.status = "max_steps"
                    break
            else:
                self.status = "finished"
        except StopRequested:
            # Raised between steps (see graceful_sigint), so model, optimiser and RNGs agree.
            self.status = "interrupted"
            self._call("on_save", self.gen)  # resumable mid-epoch, from this very step
            # Face-neutral words: the CLI adds its own "Resume with", the server a Resume button.
            where = (
                f"after epoch {self.epoch}"
                if self.step_in_epoch == 0
                else f"in epoch {self.epoch + 1}, after step {self.step_in_epoch}"
            )
            self.emit("on_message", f"Stopped {where}: saved, resumable from there")
