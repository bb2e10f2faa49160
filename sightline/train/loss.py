"""The training loss: cross-entropy with label smoothing, and on imbalanced data each image
weighted by how rare its class is (``TrainConfig.balance``; the plan decides, ``plan/resolve.py``).

The weights are scikit-learn's "balanced" ones, n / (k n_c) for a class of n_c of the n training
images and k classes: over the training set they average 1, so a weighted batch's loss keeps the
plain loss's scale (and its learning rate), sums the same way over several processes, and a
balanced dataset gets weights of exactly 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes,) float32: n / (k n_c) for each of the k classes with images, 0 for a class
    with none (it has no images to weigh)."""
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0, counts.sum() / (present * counts.clamp(min=1)), 0.0)
    return weights.float()


def batch_loss(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the mean loss to back-propagate, the plain summed loss the metrics report) of a batch:
    with ``weights``, each image's loss times its class's weight."""
    if weights is None:
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        return loss, loss.detach() * y.numel()
    summed, plain = loss_sums(logits, y, label_smoothing, weights)
    return summed / max(1, y.numel()), plain.detach()


def loss_sums(
    logits: torch.Tensor, y: torch.Tensor, label_smoothing: float, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the sum to back-propagate, the plain summed loss the metrics report) of a process's
    rows (several processes: each sums, the world divides); 0 for no rows."""
    if weights is None:
        summed = F.cross_entropy(
            logits.float(), y, label_smoothing=label_smoothing, reduction="sum"
        )
        return summed, summed.detach()
    losses = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing, reduction="none")
    return (losses * weights[y]).sum(), losses.detach().sum()
