"""Mixup and CutMix: each batch's images blended with (or pasted into) another's, and the loss
mixed as the images were.

Mixup (Zhang et al., 2018) blends every image with a partner from the same batch by a share
``lam`` drawn from Beta(alpha, alpha); CutMix (Yun et al., 2019) pastes a box of the partner
covering ``1 - lam`` of the image. The loss is then ``lam`` of the loss on the image's own label
and ``1 - lam`` on its partner's (``train/loss.py``); accuracy is still counted on the own label.
With both on, each batch takes one, half the time each (timm's switch). Every draw comes from
the trainer's generator, so a resumed run mixes the same pairs. One ``lam`` per batch, as in
both papers: the whole batch is one blend, one pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sightline.devices import to_device


@dataclass(frozen=True)
class Mixed:
    """How a batch was mixed: each row's partner label and the share of its own."""

    partner: torch.Tensor  # (N,) int64, the labels of the images mixed in
    lam: float

    def rows(self, keep: torch.Tensor | slice) -> Mixed:
        """The same, for the rows ``keep`` of the batch (one process's share under torchrun)."""
        return Mixed(self.partner[keep], self.lam)


class Mixer:
    """``mixup`` and ``cutmix``: Beta alphas (0: off). ``last`` is the current batch's
    ``Mixed`` (None: not mixed), which the loss reads."""

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0) -> None:
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.last: Mixed | None = None

    @property
    def active(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """The batch ``x`` (N, C, H, W images, or N, D features: mixup only) mixed; sets
        ``last`` for the labels ``y``."""
        self.last = None
        n = len(x)
        if not self.active or n < 2:
            return x
        dev = generator.device if generator is not None else torch.device("cpu")
        perm = to_device(torch.randperm(n, generator=generator, device=dev), x.device)
        # Beta draws and the box from numpy, seeded from the generator: torch's Beta takes none.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=dev))
        rng = np.random.default_rng(seed)
        cut = self.cutmix > 0 and x.ndim == 4 and (self.mixup == 0 or rng.random() < 0.5)
        alpha = self.cutmix if cut else self.mixup
        lam = float(rng.beta(alpha, alpha))
        if cut:
            x, lam = _paste_box(x, perm, lam, rng)
        else:
            x = x * lam + x[perm] * (1 - lam)
        self.last = Mixed(to_device(y, x.device)[perm], lam)
        return x


def _paste_box(
    x: torch.Tensor, perm: torch.Tensor, lam: float, rng: np.random.Generator
) -> tuple[torch.Tensor, float]:
    """CutMix's box: ``1 - lam`` of the area at a uniform centre, clipped to the image; the
    returned share is the area actually left to each image."""
    h, w = x.shape[-2:]
    side = math.sqrt(1 - lam)
    ch, cw = int(h * side), int(w * side)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
    out = x.clone()
    out[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
    return out, 1 - (y1 - y0) * (x1 - x0) / (h * w)
