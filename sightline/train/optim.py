"""Optimisers and learning-rate schedules.

The schedule is a pure function of (step, total_steps): the learning rate at any step can be
recomputed from the step counter alone, so resuming a run needs no scheduler object — the step
in the checkpoint is the scheduler state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sightline.train.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: decaying biases and norm scales only hurts."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def create_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(schedule: str, step: int, total: int, warmup: float) -> float:
    """Multiplier of the peak lr at ``step`` (0-based) of ``total`` steps.

    * constant: linear warm-up, then flat.
    * onecycle: linear warm-up from 10 % to the peak, then linear decay to 0 — the triangle
      that trains small nets fastest on a fixed budget (airbench, super-convergence).
    * cosine / linear: warm-up, then cosine or linear decay to 0.
    """
    total = max(total, 1)
    warm = int(round(warmup * total))
    if warm > 0 and step < warm:
        start = 0.1 if schedule == "onecycle" else 0.0
        return start + (1.0 - start) * (step + 1) / warm
    if schedule == "constant":
        return 1.0
    progress = (step - warm) / max(total - warm, 1)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress  # onecycle and linear decay


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
