"""The training loop of one rank under torchrun: ``Trainer`` with DistributedDataParallel.

Only the hooks change, never the loop, so resume, early stopping and stops work as alone:
* ``_step_batch``: every rank indexes and augments the same global batch with the same epoch
  generator, then keeps its rows (``distributed.rows``): any world size sees the same images,
  augmented the same way, in the same order. The per-rank batch is the global batch divided
  by the world size; when it does not divide, ranks get one image more or less.
* ``_loss``: a rank back-propagates its summed loss x world size / global batch; DDP averages
  the ranks' gradients, so the step is exactly that of the mean loss over the global batch,
  also when the ranks' rows differ in number (and SyncBatchNorm makes the statistics global).
* Metrics are all-reduced at the end of each epoch; validation is sharded and gathered.
* Rank 0 alone writes files and reports; stops (Ctrl-C, ``should_stop``) and early stopping
  are rank 0's decision, broadcast every ``STOP_SYNC_EVERY`` steps and at each epoch's end.
* The CPU RNG states of all ranks (dropout) go into the resume checkpoint: resumed with the
  same world size, a run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sightline.data.dataset import Dataset
from sightline.plan.config import TrainConfig
from sightline.train import distributed as dist_
from sightline.train import sync_batchnorm
from sightline.train.loop import Trainer

# A collective per step costs ~0.1 ms on gloo but a GPU sync on NCCL: stop requests are shared
# every few steps (and at every epoch's end), not after every one.
STOP_SYNC_EVERY = 8


class DistributedTrainer(Trainer):
    def __init__(
        self,
        model: nn.Module,
        data: Dataset,
        cfg: TrainConfig,
        run_dir: Path,
        callbacks: list[Any],
        should_stop=None,
    ) -> None:
        self.ctx = dist_.current()
        super().__init__(
            model, data, cfg, run_dir, callbacks if self.ctx.is_main else [], should_stop
        )
        self.device = dist_.rank_device(self.device, self.ctx)
        self.model = self.model.to(self.device)
        self.writes = self.ctx.is_main
        self.graphs = None  # DDP's gradient hooks run between the backward's kernels: eager steps
        self.images_factor = self.ctx.world_size
        self.sigint_repeat_window = 2.0  # the terminal's Ctrl-C, then torchrun's copy of it
        self.sync_bn = bool(cfg.sync_bn) and dist_.has_batchnorm(self.model)
        self._swapped = sync_batchnorm.convert_sync_batchnorm(self.model) if self.sync_bn else []
        self.sums = self.sums.to(self.device)
        # A frozen backbone during head_epochs has parameters without gradients in a step.
        # With SyncBatchNorm the running statistics agree already: no buffer broadcast per step.
        self.ddp = DistributedDataParallel(
            self.model,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=bool(cfg.head_epochs),
            **_buffer_sync(not self.sync_bn),
        )
        self._global_n = cfg.batch_size
        if self.lookahead is not None:  # the slow weights: rank 0's (DDP broadcast them), here
            self.lookahead.restart(self.model)

    # ------------------------------------------------------------------ the step
    def _step_batch(
        self, images: torch.Tensor, labels: torch.Tensor, idx: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mine = dist_.rows(len(idx), self.ctx)
        self._global_n = len(idx)
        if self.augment.active:  # the global batch's augmentation, for any world size
            return self._batch(images, idx, gen)[mine], labels[idx[mine]]
        return self._batch(images, idx[mine], gen), labels[idx[mine]]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ddp(x)

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        summed = dist_.loss_sum(logits, y, self.cfg.label_smoothing)
        return summed * (self.ctx.world_size / self._global_n), summed.detach()

    def _seed(self) -> None:
        # The same initial weights come from the model's own seed (and DDP broadcasts rank 0's);
        # dropout masks must differ between ranks, as they differ between a batch's images.
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.ctx.rank)

    # ------------------------------------------------------------------ agreeing
    def _stop_now(self) -> bool:
        if self.step_in_epoch % STOP_SYNC_EVERY:
            return False
        return dist_.broadcast_flag(super()._stop_now())

    def _agree(self, flag: bool) -> bool:
        return dist_.broadcast_flag(flag)

    def _epoch_sums(self) -> list[float]:
        return dist_.all_reduce_sum(self.sums.clone()).tolist()

    def _val_logits(self) -> torch.Tensor:
        assert self.data.val is not None
        return dist_.sharded_logits(self.model, self.data.val.images, self.preprocess, self.device)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, gen: torch.Generator | None) -> dict[str, Any]:
        state = super().state_dict(gen)
        # The epoch's running sums over all ranks: rank 0 carries them on after a resume.
        state["sums"] = dist_.all_reduce_sum(self.sums.clone()).cpu().double()
        state["world_size"] = self.ctx.world_size
        state["rng_cpu_ranks"] = torch.stack(dist_.all_gather_same(torch.get_rng_state()))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> torch.Generator | None:
        gen = super().load_state_dict(state)
        if not self.ctx.is_main:
            self.sums.zero_()
        ranks = state.get("rng_cpu_ranks")
        if ranks is not None and state.get("world_size") == self.ctx.world_size:
            torch.set_rng_state(ranks[self.ctx.rank].clone())  # its own storage: a view crashes it
        else:  # another world size: fresh dropout streams, still one per rank and step
            torch.manual_seed(self.cfg.seed * 1_000_003 + self.ctx.rank + 7919 * self.global_step)
        return gen

    def fit(self, resume_state: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return super().fit(resume_state)
        finally:
            sync_batchnorm.restore_batchnorm(self._swapped)  # the model works in one process again


def _buffer_sync(each_step: bool) -> dict[str, bool]:
    """DDP's option for broadcasting rank 0's buffers before each forward pass, by the name
    this PyTorch knows (``forward_sync_buffers`` replaced ``broadcast_buffers`` in 2.12)."""
    import inspect

    params = inspect.signature(DistributedDataParallel.__init__).parameters
    return {
        "forward_sync_buffers"
        if "forward_sync_buffers" in params
        else "broadcast_buffers": each_step
    }
