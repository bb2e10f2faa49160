"""SyncBatchNorm for any device: BatchNorm whose training statistics are those of the global
batch over all ranks (PyTorch's own ``nn.SyncBatchNorm`` runs on GPUs only; the CPU ranks of CI
need it as much as anyone). ``convert_sync_batchnorm`` swaps it in for the distributed trainer,
``restore_batchnorm`` puts the plain layers back so the model works alone again."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from sightline.train.distributed import current


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks, differentiable: the gradient of a sum over the ranks' inputs is the
    sum of the ranks' gradients (what ``torch.distributed.nn.all_reduce`` did before it was
    deprecated, without a private API)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        t = t.clone()
        dist.all_reduce(t)
        return t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch, on any device.

    The mean and variance come from sums all-reduced over the ranks, differentiably (the
    backward pass all-reduces the gradients of those sums), so the
    forward and the backward pass equal one BatchNorm over all ranks' images: with
    DistributedDataParallel averaging the gradients, N ranks take the single-process step.
    One all-reduce per layer and pass, of sums shifted by the running mean. Evaluation
    uses the running statistics, as BatchNorm does. Parameters, buffers and state-dict keys are
    those of the BatchNorm it replaces (``convert_sync_batchnorm`` shares them)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not current().active:
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        c = x.shape[1]
        # One all-reduce of (sum, sum of squares, count) per layer, of the values shifted by the
        # running mean: the same on every rank and close to the batch mean, so E[d^2] - E[d]^2
        # keeps float32's precision (two passes would cost a second collective).
        shift = (
            self.running_mean.detach().float() if self.running_mean is not None else xf.new_zeros(c)
        )
        d = xf - shift.view(shape)
        count = torch.tensor([x.numel() // max(c, 1)], dtype=xf.dtype, device=x.device)
        total = _AllReduceSum.apply(torch.cat([d.sum(dims), d.square().sum(dims), count]))
        n = total[-1]
        m1, m2 = total[:c] / n, total[c : 2 * c] / n
        mean = shift + m1
        var = (m2 - m1.square()).clamp(min=0)
        centred = d - m1.view(shape)
        if (
            self.track_running_stats
            and self.running_mean is not None
            and self.running_var is not None
        ):
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(
                    var.detach() * (n / (n - 1).clamp(min=1)), alpha=m
                )
                self.num_batches_tracked.add_(1)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """Replace every BatchNorm in ``model`` by a ``SyncBatchNorm`` sharing its parameters and
    buffers; returns what ``restore_batchnorm`` needs to put the originals back."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, SyncBatchNorm
            ):
                sync = SyncBatchNorm(
                    child.num_features,
                    child.eps,
                    child.momentum,
                    child.affine,
                    child.track_running_stats,
                )
                for key in ("weight", "bias"):
                    setattr(sync, key, getattr(child, key))
                for key in ("running_mean", "running_var", "num_batches_tracked"):
                    setattr(sync, key, getattr(child, key))
                sync.train(child.training)
                setattr(parent, name, sync)
                swapped.append((parent, name, child))
    return swapped


def restore_batchnorm(swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    """Undo ``convert_sync_batchnorm``: the model works alone again, with the trained values."""
    for parent, name, original in swapped:
        sync = getattr(parent, name)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(original, key, getattr(sync, key))
        original.train(sync.training)
        setattr(parent, name, original)
