"""Batched augmentation on tensors, on whatever device the batch lives.

One gather per batch instead of a Python loop per image: the random shifts for all N images are
drawn at once and applied with advanced indexing. A ``torch.Generator`` drives every random
choice, so a resumed run replays exactly the same augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Random translation by up to ``translate`` pixels (reflect-padded crop) and, if ``flip``,
    horizontal flips with probability 1/2. ``Augment()`` with defaults changes nothing."""

    translate: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.translate > 0 or self.flip

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a float batch (N, C, H, W); returns a new tensor."""
        if self.flip:
            x = random_flip(x, generator)
        if self.translate > 0:
            x = random_translate(x, self.translate, generator)
        return x


def _rand(shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None, high: int) -> torch.Tensor:
    # Draw on the generator's device, then move: a CPU generator can drive a GPU batch.
    dev = generator.device if generator is not None else x.device
    return torch.randint(0, high, shape, generator=generator, device=dev).to(x.device)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    mask = _rand((x.shape[0],), x, generator, 2).bool().view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


def random_translate(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by an independent random (dy, dx) in [-pad, pad], reflect-padded."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect" if pad < min(h, w) else "replicate")
    offsets = _rand((n, 2), x, generator, 2 * pad + 1)
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # padded[b, :, rows[b, i], cols[b, j]] for every (b, i, j) → (N, H, W, C)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()
