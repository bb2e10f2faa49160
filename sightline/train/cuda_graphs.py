"""The training step's forward and backward replayed as CUDA graphs.

Why: a small network's eager step is mostly the host launching kernels one by one, while the
GPU waits on Python. A CUDA graph records the step's kernels once and replays them with one
launch, so the GPU runs at its own speed and the loop's host work (augmentation, metrics,
Lookahead) overlaps with it. Unlike ``torch.compile(mode="reduce-overhead")`` nothing is
compiled: capturing takes a few steps' time, not seconds, so it pays from the first epoch.
Measured on an H200 (2026-11-26, benchmarks/README.md): fashion-mnist-fast (fastcnn width 16,
batch 512) 7.6 s of training instead of 12.8; cifar10-airbench (batch 1024, where the GPU's own
work is most of the step) 2.5-2.9 s instead of 3.2; the same accuracies, seed for seed.

What it takes (``torch.cuda.make_graphed_callables``): the same input shape every step, so only
batches of the captured size replay the graph and any other (an epoch's short last batch) runs
eagerly through the same weights; autocast without its weight cache; no change to which
parameters train once captured (the loop turns graphs off for ``head_epochs``). Capturing runs a
few warm-up steps: the BatchNorm statistics and the CUDA random state they touch are put back,
so a graphed run trains exactly as many steps on its data as an eager one. A model that cannot
be captured (a host sync in its forward, say) trains eagerly, with a note saying why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from sightline.plan.config import TrainConfig

WARMUP_STEPS = 3  # make_graphed_callables' own default: lets cuDNN and the allocator settle first


def wanted(device_type: str, cfg: TrainConfig) -> bool:
    """Whether a one-process run on ``device_type`` trains through CUDA graphs: on a GPU unless
    turned off, and not while ``head_epochs`` change which parameters train, nor for a head on
    frozen features (a few milliseconds a step: nothing to win)."""
    return (
        device_type == "cuda"
        and cfg.cuda_graphs is not False
        and not (cfg.freeze or cfg.head_epochs)
    )


class _Forward(nn.Module):
    """A wrapper to graph, so the model's own ``forward`` stays as it is (make_graphed_callables
    replaces the forward of the module it is given)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class GraphedTraining:
    """``self(x, autocast)`` is the model's training forward, through a CUDA graph where ``x`` has
    the captured shape; ``None`` where it cannot be (the caller runs the model eagerly)."""

    def __init__(
        self,
        model: nn.Module,
        note: Callable[[str], None] = lambda msg: None,
        batch_size: int | None = None,
    ) -> None:
        """``batch_size``: capture only a batch of this many images (a run resumed at an epoch's
        short last batch would otherwise capture that one, and replay it never again)."""
        self.model = model
        self.note = note
        self.batch_size = batch_size
        self.graphed: nn.Module | None = None
        self.shape: tuple[int, ...] | None = None
        self.stride: tuple[int, ...] | None = None
        self.failed = False

    def __call__(self, x: torch.Tensor, autocast: Callable[[], object]) -> torch.Tensor | None:
        if self.failed or not self.model.training:
            return None
        if self.graphed is None:
            if self.batch_size is not None and x.shape[0] != self.batch_size:
                return None
            self._capture(x, autocast)
            if self.graphed is None:
                return None
        if tuple(x.shape) != self.shape or x.stride() != self.stride:
            return None
        with autocast():  # type: ignore[attr-defined]
            return self.graphed(x)

    def release(self) -> None:
        """Drop the recorded graph and its memory pool; a later call captures anew."""
        self.graphed = None
        self.shape = self.stride = None

    def _capture(self, x: torch.Tensor, autocast: Callable[[], object]) -> None:
        # The warm-up steps run on a side stream, so the first real backward finds the weights'
        # gradient accumulators made there, and PyTorch warns (once) that this may cost a sync;
        # and the warm-up's backward thread may be the first to use cuBLAS, which warns that it
        # set the CUDA context itself. Neither costs anything here, nor can a user act on it.
        warnings.filterwarnings("ignore", message="The AccumulateGrad node's stream does not match")
        warnings.filterwarnings(
            "ignore", message="Attempting to run cuBLAS, but there was no current CUDA context"
        )
        buffers = [b.detach().clone() for b in self.model.buffers()]
        rng = torch.cuda.get_rng_state(x.device)
        sample = x.detach().clone(memory_format=torch.preserve_format)
        try:
            with autocast():  # type: ignore[attr-defined]
                self.graphed = torch.cuda.make_graphed_callables(
                    _Forward(self.model), (sample,), num_warmup_iters=WARMUP_STEPS
                )
            self.shape, self.stride = tuple(x.shape), x.stride()
        except Exception as e:  # any failure to capture only costs the speed-up
            self.failed, self.graphed = True, None
            first_line = (str(e).splitlines() or [""])[0][:200]
            reason = f"{type(e).__name__}: {first_line}" if first_line else type(e).__name__
        finally:
            with torch.no_grad():  # the warm-up steps' BatchNorm updates are undone
                for b, saved in zip(self.model.buffers(), buffers, strict=True):
                    b.copy_(saved)
            torch.cuda.set_rng_state(rng, x.device)
        if self.failed:
            self.note(f"CUDA graphs off for this model ({reason}): eager steps")
        else:
            self.note(
                f"CUDA graphs: each training step of {x.shape[0]:,} images replays one recorded graph "
                "(--no-cuda-graphs: eager steps)"
            )
