"""Which waiting images to ask about next (``ask``).

Before there is a model, and until there are ``TYPICAL_PER_CLASS`` labels a class: the typical
images of the pool (``typical``: one from each of as many clusters of the features, the largest
clusters first), so the first labels cover what the folder holds with images like most of it.
k-center alone (each next image the furthest from the rest) asks about the odd ones first: on
600 CIFAR photos its first 20 labels gave 85 % where 20 random ones gave 92 %
(benchmarks/labelling.py); picking typical images first is TypiClust's finding (Hacohen et al.
2022) for small budgets. Then: the most uncertain (smallest margin between the two most
probable classes, calibrated), spread by k-center among the ``CANDIDATES`` x as many most
uncertain ones, so a batch holds no run of near copies (the cluster-margin idea, Citovsky et
al. 2021): a near copy of an image chosen is the least distant, so it comes only when nothing
else is left. Images unlike anything labelled are kept out of it and shown as their own group:
they may be a class not made yet, or "not any class"."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from sightline.labelling.model import Answers

CANDIDATES = 4  # x the batch: the most uncertain images the batch is spread over
# Labels a class (on average) before the most uncertain lead: with fewer, a model's doubts say
# little, and asking about them learnt slower than random order (benchmarks/labelling.py).
TYPICAL_PER_CLASS = 3
KMEANS_STEPS = 20  # of the clustering behind ``typical``: it settles in fewer on these features


def ask(pool: torch.Tensor, known: torch.Tensor, n: int, classes: int,
        answers: Answers | None) -> list[tuple[int, str]]:  # fmt: skip
    """Up to ``n`` rows of ``pool`` to label next, each with why: "typical" (no model yet, or
    too few labels for its doubts to say much), else "uncertain", and once nothing else waits,
    "unlike" (unlike anything labelled, the least like it first)."""
    if answers is None or len(known) < TYPICAL_PER_CLASS * classes:
        return [(i, "typical") for i in typical(pool, known, n)]
    rows = uncertain(answers.probs, pool, known, n, ~answers.unlike)
    return [(i, "uncertain") for i in rows] + [
        (i, "unlike") for i in unlike(answers)[: n - len(rows)]
    ]


def unlike(answers: Answers) -> list[int]:
    """The rows unlike anything labelled, the least like it first."""
    rows = torch.nonzero(answers.unlike).flatten()
    return rows[answers.distance[rows].argsort(descending=True, stable=True)].tolist()


def typical(pool: torch.Tensor, known: torch.Tensor, n: int) -> list[int]:
    """Up to ``n`` rows of ``pool`` (unit-length): the pool in clusters (spherical k-means,
    k-means++ start, a fixed seed: the same answer every time), the row nearest each centre,
    the largest clusters first; with labelled rows ``known``, the clusters they cover least."""
    if len(pool) == 0 or n <= 0:
        return []
    k = min(len(pool), n + len(known))
    g = torch.Generator().manual_seed(0)
    centres = pool[[int((pool @ pool.mean(0)).argmax())]]
    while len(centres) < k:  # k-means++: each next centre likelier the further it is
        far = (1 - (pool @ centres.T).max(1).values).clamp(min=0) ** 2
        if float(far.sum()) <= 0:
            break
        centres = torch.cat([centres, pool[torch.multinomial(far, 1, generator=g)]])
    for _ in range(KMEANS_STEPS):
        member = (pool @ centres.T).argmax(1)
        sums = torch.zeros_like(centres).index_add_(0, member, pool)
        centres = torch.nn.functional.normalize(sums, dim=1).where(
            sums.norm(dim=1, keepdim=True) > 0, centres
        )
    member = (pool @ centres.T).argmax(1)
    sizes = torch.bincount(member, minlength=len(centres))
    covered = (centres @ known.T).max(1).values if len(known) else torch.zeros(len(centres))
    order = sorted(range(len(centres)), key=lambda c: (float(covered[c]), -int(sizes[c]), c))
    chosen = []
    for c in order:
        if sizes[c] == 0:
            continue
        rows = torch.nonzero(member == c).flatten()
        chosen.append(int(rows[(pool[rows] @ centres[c]).argmax()]))
        if len(chosen) == n:
            break
    return chosen


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
