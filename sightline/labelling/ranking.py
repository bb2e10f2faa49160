"""Which waiting images to ask about next.

Before there is a model: a spread of the pool (greedy k-center on the features: each next image
the one furthest from everything labelled or chosen), so the first labels cover what the folder
holds. With a model: the most uncertain (smallest margin between the two most probable classes,
calibrated), spread the same way among the ``CANDIDATES`` x as many most uncertain ones, so a
batch holds no run of near copies (the cluster-margin idea, Citovsky et al. 2021): a near copy
of an image chosen is the least distant, so it comes only when nothing else is left. Images unlike anything labelled are kept out of it and
shown as their own group: they may be a class not made yet, or "not any class"."""

from __future__ import annotations

import torch

CANDIDATES = 4  # x the batch: the most uncertain images the batch is spread over


def spread(pool: torch.Tensor, known: torch.Tensor, n: int,
           among: torch.Tensor | None = None) -> list[int]:  # fmt: skip
    """Greedy k-center: up to ``n`` rows of ``pool`` (unit-length; only rows in ``among`` when
    given), each the one furthest from ``known`` and those chosen before it. The first, with
    nothing known, is the most central (the highest mean similarity)."""
    rows = torch.arange(len(pool)) if among is None else among
    if len(rows) == 0 or n <= 0:
        return []
    x = pool[rows]
    nearest = (x @ known.T).max(1).values if len(known) else torch.full((len(rows),), -2.0)
    chosen: list[int] = []
    taken = torch.zeros(len(rows), dtype=torch.bool)
    for _ in range(min(n, len(rows))):
        if not chosen and not len(known):
            pick = int((x @ x.mean(0)).argmax())
        else:
            pick = int(nearest.masked_fill(taken, 3.0).argmin())  # least similar = furthest
        taken[pick] = True
        nearest = torch.maximum(nearest, x @ x[pick])
        chosen.append(int(rows[pick]))
    return chosen


def margins(probs: torch.Tensor) -> torch.Tensor:
    """The most probable class's probability minus the second's (1: no doubt)."""
    if probs.shape[1] < 2:
        return torch.ones(len(probs))
    top = probs.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def uncertain(probs: torch.Tensor, pool: torch.Tensor, known: torch.Tensor, n: int,
              eligible: torch.Tensor) -> list[int]:  # fmt: skip
    """Up to ``n`` ``eligible`` rows: the most uncertain, spread (module doc), in order of
    their margin."""
    margin = margins(probs)
    rows = torch.nonzero(eligible).flatten()
    if len(rows) == 0:
        return []
    order = rows[margin[rows].argsort(stable=True)]
    candidates = order[: CANDIDATES * n]
    chosen = spread(pool, known, n, among=candidates)
    return sorted(chosen, key=lambda i: (float(margin[i]), i))
