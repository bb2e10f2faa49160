"""A GPU's one-off costs paid before the clock starts, then everything put back.

Why: a GPU run's first steps pay for lazily loaded kernels, cuDNN's first calls, the allocator
growing and the CUDA graph's capture: on an H200 the first epoch of ``cifar10-airbench`` took
0.7-1.0 s against ~0.23 s for each later one (benchmarks/README.md). airbench times its runs
after an untimed warm-up run; here the trainer runs a few real steps of its own batches first
(one of each shape an epoch has: the full batch, which captures the graph, and a short last
batch), then puts back what they changed: the weights and buffers in place (a captured graph
keeps pointing at them), the optimizer's state and learning rates, fp16's loss scale, the
random states. So the run trains exactly as it would without the warm-up, its epochs' times are
the training's own, and the warm-up's seconds are reported apart (status.json
``warmup_seconds``). Off on a CPU, whose first steps cost little (``device_warmup``).
"""

from __future__ import annotations

import copy
import time

import torch

from sightline.plan.config import TrainConfig
from sightline.train.trainer_view import TrainerView

FULL_BATCH_STEPS = 2  # the first captures the graph (itself a few steps); the second replays it


def wanted(device_type: str, cfg: TrainConfig) -> bool:
    """Whether the trainer warms up before its first timed step: on a GPU unless turned off."""
    return cfg.device_warmup if cfg.device_warmup is not None else device_type == "cuda"


def batch_sizes(train_size: int, batch_size: int) -> list[int]:
    """The warm-up's batches: the full batch twice, then an epoch's short last batch if it has one."""
    full = min(batch_size, train_size)
    short = train_size % full
    return [full] * FULL_BATCH_STEPS + ([short] if short else [])


def run(trainer: TrainerView, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Warms ``trainer`` up, records the seconds as ``trainer.warmup_seconds`` and says so."""
    trainer.warmup_seconds = round(warm_up(trainer, images, labels), 3)
    trainer.emit(
        "on_message",
        f"Warm-up: {trainer.warmup_seconds:.1f} s of first-step costs (kernels, graph capture) "
        "before the clock starts, the state then put back (--no-device-warmup: off)",
    )


def warm_up(trainer: TrainerView, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Runs the warm-up steps on ``trainer`` and restores its state; returns the seconds taken."""
    start = time.monotonic()
    model, optimizer, device = trainer.model, trainer.optimizer, trainer.device
    params = [p.detach().clone() for p in model.parameters()]
    buffers = [b.detach().clone() for b in model.buffers()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    precision_state = copy.deepcopy(trainer.precision.state_dict())
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    gen = torch.Generator().manual_seed(0)  # its own augmentation draws: the run's are untouched
    was_training = model.training
    model.train()
    try:
        for size in batch_sizes(len(labels), trainer.cfg.batch_size):
            idx = torch.arange(size, device=labels.device)
            trainer.optimize(*trainer.step_batch(images, labels, idx, gen))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        with torch.no_grad():
            for p, saved in zip(model.parameters(), params, strict=True):
                p.copy_(saved)
                p.grad = None
            for b, saved in zip(model.buffers(), buffers, strict=True):
                b.copy_(saved)
        optimizer.load_state_dict(optimizer_state)
        trainer.precision.load_state_dict(precision_state)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state(cuda_rng, device)
        model.train(was_training)
    return time.monotonic() - start
