"""Batched forward passes over uint8 image tensors: the one inference loop.

Validation during training, ``evaluate`` and ``predict`` all go through ``batched_logits``, so
they normalise exactly the same way and never hold more than one float batch in memory.
"""

from __future__ import annotations

import torch
from torch import nn

from sightline.data.preprocess import Preprocess


@torch.no_grad()
def batched_logits(
    model: nn.Module,
    images: torch.Tensor,
    preprocess: Preprocess,
    device: torch.device | str | None = None,
    batch_size: int = 1000,
) -> torch.Tensor:
    """Logits (N, num_classes) on the CPU for uint8 ``images`` (N, C, H, W) on any device.

    With ``preprocess.flip_tta`` the logits are averaged with those of the mirrored images.
    """
    if device is None:
        device = next(model.parameters()).device
    channels_last = any(
        p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in model.parameters()
    )
    was_training = model.training
    model.eval()
    outs = []
    try:
        for start in range(0, len(images), batch_size):
            x = preprocess.normalize(images[start : start + batch_size].to(device, non_blocking=True))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x).float()
            if preprocess.flip_tta:
                logits = (logits + model(x.flip(-1)).float()) / 2
            outs.append(logits.cpu())
    finally:
        model.train(was_training)
    if not outs:
        return torch.empty((0, 0))
    return torch.cat(outs)
