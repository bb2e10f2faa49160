"""Optimisers and learning-rate schedules.

The schedule is a pure function of (step, total_steps): the learning rate at any step can be
recomputed from the step counter alone, so resuming a run needs no scheduler object — the step
in the checkpoint is the scheduler state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sightline.plan.config import TrainConfig


def head_parameters(model: nn.Module) -> set[int]:
    """ids of the parameters of ``model.classifier`` (empty for a model without one)."""
    head = getattr(model, "classifier", None)
    return {id(p) for p in head.parameters()} if isinstance(head, nn.Module) else set()


def param_groups(model: nn.Module, weight_decay: float, backbone_lr: float = 1.0) -> list[dict]:
    """Weight decay on weights only: decaying biases and norm scales only hurts. With
    ``backbone_lr`` != 1 (fine-tuning pretrained weights) everything but the classifier learns
    at that fraction of the lr: the new head must move fast, the pretrained features gently.
    The head's groups come first (``param_groups[0]["lr"]`` is the peak lr the logs show).

    A model whose BatchNorms have no learned scale may ask for their biases to learn faster
    (``norm_bias_lr_scale``, airbench's ``bias_scaler``: airnet with ``airbench=True``); they
    get a group of their own, last."""
    head = head_parameters(model) if backbone_lr != 1.0 else set()
    bias_scale = float(getattr(model, "norm_bias_lr_scale", 1.0))
    norm_biases = (
        {
            id(m.bias)
            for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.bias is not None
        }
        if bias_scale != 1.0
        else set()
    )
    groups: dict[tuple[bool, bool], list] = {
        (h, d): [] for h in (True, False) for d in (True, False)
    }
    fast: list[nn.Parameter] = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if id(p) in norm_biases:
            fast.append(p)
        else:
            groups[(id(p) in head if head else True, p.ndim > 1)].append(p)
    out = [
        {
            "params": ps,
            "weight_decay": weight_decay if decay else 0.0,
            "lr_scale": 1.0 if is_head else backbone_lr,
        }
        for (is_head, decay), ps in groups.items()
        if ps
    ]
    if fast:
        out.append(
            {
                "params": fast,
                "weight_decay": 0.0,
                "lr_scale": bias_scale * (1.0 if not head else backbone_lr),
            }
        )
    return out


def create_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay, cfg.backbone_lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def limit_learning(model: nn.Module, epoch: int) -> None:
    """Parameters a model lets learn in its first epochs only (``model.learns_for_epochs``,
    {parameter name: epochs}, 0 for never: airnet's whitening bias, as airbench does, and its
    filters, which are computed, not learned): from that epoch on they get no gradient, so
    neither they nor the layers before them cost a backward pass (airnet: the first
    convolution's input gradient and the stem's GELU, ~7 % of a CPU step). A pure function of
    the epoch, so a resumed run gets the same; the Trainer builds its optimizer at epoch 0's
    setting, so the optimizer holds them and its saved state always matches."""
    limits = getattr(model, "learns_for_epochs", None) or {}
    params = dict(model.named_parameters())
    for name, epochs in limits.items():
        params[name].requires_grad_(epoch < epochs)


def freeze_backbone(model: nn.Module, frozen: bool) -> None:
    """Fine-tuning's first epochs: only the classifier learns (no gradients for the rest, and
    BatchNorm keeps its pretrained statistics), so a random new head cannot wreck the
    pretrained features with its first large gradients. ``frozen=False`` undoes it."""
    head = head_parameters(model)
    for p in model.parameters():
        if id(p) not in head:
            p.requires_grad_(not frozen)
    if frozen:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


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
        group["lr"] = lr * group.get("lr_scale", 1.0)
