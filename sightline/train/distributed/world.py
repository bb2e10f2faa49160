"""One rank of a torchrun job, as the ``Trainer``'s world (train/world.py): DistributedDataParallel.

Only the world's answers change, never the loop, so resume, early stopping and stops work as alone:
* ``step_batch``: every rank indexes and augments the same global batch with the same epoch
  generator, then keeps its rows (``distributed.rows``): any world size sees the same images,
  augmented the same way, in the same order. The per-rank batch is the global batch divided
  by the world size; when it does not divide, ranks get one image more or less.
* ``loss``: a rank back-propagates its summed loss x world size / global batch; DDP averages
  the ranks' gradients, so the step is exactly that of the mean loss over the global batch,
  also when the ranks' rows differ in number (and SyncBatchNorm makes the statistics global).
* Metrics are all-reduced at the end of each epoch; validation is sharded and gathered.
* Rank 0 alone writes files and reports; stops (Ctrl-C, ``should_stop``) and early stopping
  are rank 0's decision, broadcast every ``STOP_SYNC_EVERY`` steps and at each epoch's end.
* The CPU RNG states of all ranks (dropout) go into the resume checkpoint: resumed with the
  same world size, a run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from sightline.train import distributed as dist_
from sightline.train.distributed import sync_batchnorm
from sightline.train.loss import loss_sums
from sightline.train.trainer_view import TrainerView
from sightline.train.world import World

# A collective per step costs ~0.1 ms on gloo but a GPU sync on NCCL: stop requests are shared
# every few steps (and at every epoch's end), not after every one.
STOP_SYNC_EVERY = 8


class DistributedWorld(World):
    allows_cuda_graphs = False  # DDP's gradient hooks run between the backward's kernels
    sigint_repeat_window = 2.0  # the terminal's Ctrl-C, then torchrun's copy of it

    def __init__(self) -> None:
        self.ctx = dist_.current()
        self.is_main = self.ctx.is_main
        self.images_factor = self.ctx.world_size
        self.global_n = 0  # the images of the global batch this step (the ranks' rows summed)
        self.ddp: DistributedDataParallel | None = None
        self.swapped: list[Any] = []

    def device(self, device: torch.device) -> torch.device:
        return dist_.rank_device(device, self.ctx)

    def attach(self, trainer: TrainerView) -> None:
        model, cfg = trainer.model, trainer.cfg
        sync_bn = bool(cfg.sync_bn) and dist_.has_batchnorm(model)
        self.swapped = sync_batchnorm.convert_sync_batchnorm(model) if sync_bn else []
        # A frozen backbone during head_epochs, or a parameter that learns for the first epochs
        # only (optim.limit_learning), leaves parameters without gradients in a step.
        # With SyncBatchNorm the running statistics agree already: no buffer broadcast per step.
        self.ddp = DistributedDataParallel(
            model,
            device_ids=[trainer.device.index] if trainer.device.type == "cuda" else None,
            find_unused_parameters=bool(
                cfg.head_epochs or getattr(model, "learns_for_epochs", None)
            ),
            **_buffer_sync(not sync_bn),
        )
        if trainer.lookahead is not None:  # the slow weights: rank 0's (DDP broadcast them), here
            trainer.lookahead.restart(model)

    # ------------------------------------------------------------------ the step
    def step_batch(
        self,
        trainer: TrainerView,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        idx: torch.Tensor,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mine = dist_.rows(len(idx), self.ctx)
        self.global_n = len(idx)
        if trainer.augment.active or trainer.mixer.active:  # the global batch's, any world size
            x = trainer.mixer(trainer.feed.batch(trainer, inputs, idx, gen), labels[idx], gen)
            if trainer.mixer.last is not None:
                trainer.mixer.last = trainer.mixer.last.rows(mine)
            return x[mine], labels[idx[mine]]
        return trainer.feed.batch(trainer, inputs, idx[mine], gen), labels[idx[mine]]

    def forward(self, trainer: TrainerView, x: torch.Tensor) -> torch.Tensor:
        assert self.ddp is not None
        return self.ddp(x)

    def loss(
        self, trainer: TrainerView, logits: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        summed, plain = loss_sums(
            logits, y, trainer.cfg.label_smoothing, trainer.logit_adjustment, trainer.mixer.last
        )
        return summed * (self.ctx.world_size / self.global_n), plain

    def seed(self, trainer: TrainerView) -> None:
        # The same initial weights come from the model's own seed (and DDP broadcasts rank 0's);
        # dropout masks must differ between ranks, as they differ between a batch's images.
        torch.manual_seed(trainer.cfg.seed * 1_000_003 + self.ctx.rank)

    # ------------------------------------------------------------------ agreeing
    def stop_now(self, trainer: TrainerView) -> bool:
        if trainer.step_in_epoch % STOP_SYNC_EVERY:
            return False
        return dist_.broadcast_flag(trainer.stop_asked())

    def agree(self, flag: bool) -> bool:
        return dist_.broadcast_flag(flag)

    def epoch_sums(self, trainer: TrainerView) -> list[float]:
        return dist_.all_reduce_sum(trainer.sums.clone()).tolist()

    def val_logits(self, trainer: TrainerView) -> torch.Tensor:
        images = trainer.data.val.images
        return dist_.sharded_logits(trainer.model, images, trainer.preprocess, trainer.device)

    # ------------------------------------------------------------------ checkpoints
    def save_state(self, trainer: TrainerView, state: dict[str, Any]) -> None:
        # The epoch's running sums over all ranks: rank 0 carries them on after a resume.
        state["sums"] = dist_.all_reduce_sum(trainer.sums.clone()).cpu().double()
        state["world_size"] = self.ctx.world_size
        state["rng_cpu_ranks"] = torch.stack(dist_.all_gather_same(torch.get_rng_state()))

    def load_state(self, trainer: TrainerView, state: dict[str, Any]) -> None:
        if not self.ctx.is_main:
            trainer.sums.zero_()
        ranks = state.get("rng_cpu_ranks")
        if ranks is not None and state.get("world_size") == self.ctx.world_size:
            torch.set_rng_state(ranks[self.ctx.rank].clone())  # its own storage: a view crashes it
        else:  # another world size: fresh dropout streams, still one per rank and step
            seed = trainer.cfg.seed * 1_000_003 + self.ctx.rank + 7919 * trainer.global_step
            torch.manual_seed(seed)

    def detach(self, trainer: TrainerView) -> None:
        sync_batchnorm.restore_batchnorm(self.swapped)  # the model works in one process again


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
