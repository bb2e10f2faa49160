"""The training loss: cross-entropy with label smoothing, and on imbalanced data the logit-adjusted
loss (``TrainConfig.balance``; the plan decides, ``plan/resolve.py``).

Logit adjustment (Menon et al., 2021, "Long-tail learning via logit adjustment"): the loss sees
the network's logits plus the log of each class's share of the training images, so the network
itself need not learn the classes' frequencies and its own logits, which predict, are those of
balanced classes. Nothing changes at inference. Measured on long-tailed CIFAR-10 (imbalance 100,
``benchmarks/imbalance.py``, fastcnn, 15 epochs): balanced accuracy 56.3 % with the plain loss,
**63.1 %** adjusted; weighting each image by n / (k n_c) instead gave 50.0 % (the common classes'
features are then learned from few effective images).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name

if TYPE_CHECKING:
    from sightline.train.mixing import Mixed


def logit_adjustment(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes,) float32: the log of each class's share of ``labels``, centred (a constant
    shift changes no softmax); a class without images gets the smallest share's log."""
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    prior = counts / counts.sum()
    logs = torch.log(prior.clamp(min=float(prior[prior > 0].min())))
    return (logs - logs.mean()).float()


def batch_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    label_smoothing: float,
    adjust: torch.Tensor | None,
    mixed: Mixed | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the mean loss to back-propagate, the summed loss of the network's own logits, which the
    metrics report) of a batch; ``adjust``: added to the logits in the loss; ``mixed``: the
    batch was mixed (train/mixing.py), the loss is too."""
    if adjust is None and mixed is None:
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        return loss, loss.detach() * y.numel()
    summed, plain = loss_sums(logits, y, label_smoothing, adjust, mixed)
    return summed / max(1, y.numel()), plain


def loss_sums(
    logits: torch.Tensor,
    y: torch.Tensor,
    label_smoothing: float,
    adjust: torch.Tensor | None,
    mixed: Mixed | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the sum to back-propagate, the summed loss the metrics report) of a process's rows
    (several processes: each sums, the world divides); 0 for no rows."""

    def ce(z: torch.Tensor) -> torch.Tensor:
        own = F.cross_entropy(z, y, label_smoothing=label_smoothing, reduction="sum")
        if mixed is None:
            return own
        other = F.cross_entropy(z, mixed.partner, label_smoothing=label_smoothing, reduction="sum")
        return own * mixed.lam + other * (1 - mixed.lam)

    plain = ce(logits.float())
    if adjust is None:
        return plain, plain.detach()
    return ce(logits.float() + adjust), plain.detach()
