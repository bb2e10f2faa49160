"""Near copies that were cropped: the same picture with a few percent cut off its edges.

A crop moves every pixel of a thumbnail, so the plain thumbnail correlation of
``duplicates.near_pairs`` misses it (a 6 % crop of a 32 px image: 0.45-0.90). Here each image
is cropped the ways a copy could have been — 0 to 8 % off each edge, at most 9 % off an axis,
in steps of 2 % (225 boxes) — and each crop compared with the other image's thumbnail; the
best correlation is the pair's similarity. Comparing every crop of every image with every
image would cost 225x the plain search, so it runs in three passes, each on fewer pairs:

1. candidates: the ``PRESELECT`` images most like each one at 8x8 px, then 9 coarse crops of
   it (0 or 6 % off a side) against those; each image keeps its ``CANDIDATES`` most similar
   (either way round);
2. screening: 36 crops (0/4/8 % a side) at 16x16 px, on the candidate pairs only;
3. the verdict: the 225 crops at 32x32 px on the pairs that passed, against ``NEAR``.

All crops are resampled from a 48 px gray thumbnail (``scan.DETAIL``) by separable linear
interpolation: two small matrix products per image instead of an image resize per box.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from sightline.health.scan import Item, unit_rows

# ---- the search, in one place -------------------------------------------------------------
STEPS = (0.0, 0.02, 0.04, 0.06, 0.08)  # off one edge
MAX_AXIS = 0.09  # off both edges of an axis together
COARSE_AXIS = [(0.0, 0.0), (0.0, 0.06), (0.06, 0.0)]  # the coarse pass's crops of an axis
PRESELECT = 128  # per image, by the whole images at 8x8 px: 98-99 % of cropped copies among them
CANDIDATES = 16  # per image, from the coarse pass
COARSE_AT = 0.6  # coarse similarity below which a pair is no candidate
SCREEN_STEPS = (0.0, 0.04, 0.08)  # the screening's crops (36 boxes): 2 % out of line at most
SCREEN_AT = 0.95  # 16 px similarity of those a pair needs to be looked at closely
REFINE_AT = 0.98  # 32 px similarity from which a pair's best crop is refined to 1 % steps
_CHUNK = 512  # images per block of the coarse pass: 512 x N float32


def _axis_crops(steps: tuple[float, ...]) -> list[tuple[float, float]]:
    return [(a, b) for a in steps for b in steps if a + b <= MAX_AXIS + 1e-9]


def _interpolation(n_in: int, n_out: int, crops: torch.Tensor | list) -> torch.Tensor:
    """(*crops.shape[:-1], n_out, n_in): rows sampling [a, 1 - b] of a line of n_in pixels,
    linearly, at n_out pixel centres, for each crop (a, b) of ``crops`` (..., 2)."""
    crops = torch.as_tensor(crops, dtype=torch.float32)
    a, b = crops[..., :1], crops[..., 1:]
    centres = (torch.arange(n_out) + 0.5) / n_out
    pos = ((a + centres * (1 - a - b)) * n_in - 0.5).clamp(0, n_in - 1)  # (..., n_out)
    lo = pos.floor()
    w = (pos - lo).unsqueeze(-1)
    grid = torch.arange(n_in, dtype=torch.float32)
    near = (grid == lo.unsqueeze(-1)).float()
    after = (grid == (lo + 1).clamp(max=n_in - 1).unsqueeze(-1)).float()
    return near * (1 - w) + after * w


def _crops(
    detail: torch.Tensor, side: int, axis: list[tuple[float, float]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each (n, D, D) thumbnail cropped by every pair of ``axis`` crops (rows, columns) and
    resampled to side px: ``_resampled``'s (n, A*A, side*side) pixels and factors."""
    m = _interpolation(detail.shape[-1], side, axis).flatten(0, 1)  # (A*side, D)
    return _resampled(detail, m, m, len(axis), side)


def _resampled(
    detail: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, a: int, side: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The thumbnails (n, D, D) through ``a`` row and ``a`` column interpolations ((A*side, D),
    shared, or (n, A*side, D), one set per thumbnail): every (row, column) pair's crop as raw
    pixels (n, A*A, side*side), and the factor (n, A*A) that makes a dot product of a crop with
    a ``unit_rows`` row their correlation: 1 / the crop's centred norm (0 for a flat crop). The
    centring itself can be left out, since the other row sums to 0; making 225 crops of every
    image unit rows cost more than comparing them."""
    n = len(detail)
    both = rows @ (detail @ cols.transpose(-1, -2))  # columns cropped, then rows
    both = both.view(n, a, side, a, side).permute(0, 1, 3, 2, 4).reshape(n, a * a, side * side)
    total, squares = both.sum(-1), both.square().sum(-1)
    norm = (squares - total.square() / (side * side)).clamp(min=0).sqrt()
    return both, torch.where(norm > 1e-3, 1.0 / norm.clamp(min=1e-12), torch.zeros_like(norm))


def _whole(detail: torch.Tensor, side: int) -> torch.Tensor:
    """(n, side*side): each thumbnail uncropped, resampled as the crops are."""
    return unit_rows(_crops(detail, side, [(0.0, 0.0)])[0][:, 0])


def cropped_pairs(items: list[Item], threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, similarity), i < j, for images of which one is a crop of the other (or the same
    picture resized) at ``threshold`` or more, exact copies left out (``exact_groups``')."""
    have = [i for i, item in enumerate(items) if item.detail is not None]
    if len(have) < 2:
        return []
    if len(have) < len(items):  # an item made without its detail thumbnail: not searched
        found = cropped_pairs([items[i] for i in have], threshold)
        return [(have[i], have[j], s) for i, j, s in found]
    detail = torch.from_numpy(np.stack([item.detail for item in items])).float()
    pairs = _candidates(detail)
    screened, _ = _best_crop(detail, pairs, 16, SCREEN_STEPS)
    pairs = [p for p, s in zip(pairs, screened, strict=True) if s >= SCREEN_AT]
    final, which = _best_crop(detail, pairs, 32)
    close = [a for a, s in enumerate(final) if REFINE_AT <= s < threshold]
    for a, s in zip(
        close,
        _refined(detail, [pairs[a] for a in close], [which[a] for a in close], 32),
        strict=True,
    ):
        final[a] = max(final[a], s)
    best: dict[tuple[int, int], float] = {}
    for (i, j), s in zip(pairs, final, strict=True):
        key = (min(i, j), max(i, j))
        if s >= threshold and s > best.get(key, -2.0) and items[i].digest != items[j].digest:
            best[key] = s
    return sorted((i, j, s) for (i, j), s in best.items())


def _candidates(detail: torch.Tensor) -> list[tuple[int, int]]:
    """Directed pairs (i, j): j may be a crop of i. Both ways round for each image's nearest."""
    base = unit_rows(F.adaptive_avg_pool2d(detail[:, None], 8).flatten(1))  # (N, 64)
    base_t = base.T.contiguous()
    n, k = len(detail), min(CANDIDATES, len(detail) - 1)
    found = []
    for start in range(0, n, _CHUNK):
        sim = base[start : start + _CHUNK] @ base_t  # (c, N): the whole images, one product
        sim[torch.arange(len(sim)), torch.arange(start, start + len(sim))] = -2.0
        near = sim.topk(min(PRESELECT, n - 1), dim=1).indices  # (c, P)
        raw, scale = _crops(detail[start : start + _CHUNK], 8, COARSE_AXIS)  # (c, 9, 64)
        # the best of the 9 crops against each preselected image
        best = torch.einsum("cvd,cpd->cpv", raw * scale[..., None], base[near]).amax(2)
        values, at = best.topk(k, dim=1)
        indices = near.gather(1, at)
        rows = torch.arange(start, start + len(sim))[:, None].expand_as(indices)
        keep = values >= COARSE_AT
        found.append(torch.stack([rows[keep], indices[keep]], 1))
    pairs = torch.cat(found)
    pairs = torch.unique(torch.cat([pairs, pairs.flip(1)]), dim=0)  # both ways round, once
    return [(i, j) for i, j in pairs.tolist()]


def _best_crop(
    detail: torch.Tensor,
    pairs: list[tuple[int, int]],
    side: int,
    steps: tuple[float, ...] = STEPS,
) -> tuple[list[float], list[int]]:
    """Per directed pair (i, j): the best correlation of a crop of i with the whole of j, and
    which crop (an index into ``_axis_crops(steps)`` squared: rows, then columns)."""
    if not pairs:
        return [], []
    whole = _whole(detail, side)
    by_source: dict[int, list[int]] = {}
    for at, (i, _) in enumerate(pairs):
        by_source.setdefault(i, []).append(at)
    scores, which = torch.zeros(len(pairs)), torch.zeros(len(pairs), dtype=torch.long)
    # by how many pairs each has: a block's sources then pad their pairs to about the same number
    sources = sorted(by_source, key=lambda i: len(by_source[i]))
    axis = _axis_crops(steps)
    chunk = max(1, 2**22 // (len(axis) ** 2 * side * side))  # ~16 MB of crops
    targets = torch.tensor([j for _, j in pairs])
    for start in range(0, len(sources), chunk):
        block = sources[start : start + chunk]
        crops, scale = _crops(detail[block], side, axis)  # (b, boxes, side*side)
        # each source's pairs side by side, padded to the longest: one batched product
        ats = [torch.tensor(by_source[i]) for i in block]
        at = torch.nn.utils.rnn.pad_sequence(ats, batch_first=True, padding_value=-1)  # (b, m)
        sims = whole[targets[at.clamp(min=0)]] @ crops.transpose(1, 2) * scale[:, None]
        best, arg = sims.max(2)
        real = at >= 0
        scores[at[real]], which[at[real]] = best[real], arg[real]
    return scores.tolist(), which.tolist()


def _refined(
    detail: torch.Tensor, pairs: list[tuple[int, int]], which: list[int], side: int
) -> list[float]:
    """``_best_crop`` again around each pair's best crop, each edge moved by -1, 0 or +1 % (81
    crops): the 2 % grid leaves a true copy up to 1 % of an edge out of line."""
    if not pairs:
        return []
    axis = torch.tensor(_axis_crops(STEPS))  # (A, 2)
    moves = torch.tensor([(da, db) for da in (-0.01, 0, 0.01) for db in (-0.01, 0, 0.01)])
    whole = _whole(detail, side)
    out: list[float] = []
    for start in range(0, len(pairs), 256):
        part = pairs[start : start + 256]
        k = torch.tensor(which[start : start + 256])
        row_crop, col_crop = axis[k // len(axis)], axis[k % len(axis)]  # the best crop's (a, b)
        my = _interpolation(detail.shape[-1], side, (row_crop[:, None] + moves).clamp(min=0))
        mx = _interpolation(detail.shape[-1], side, (col_crop[:, None] + moves).clamp(min=0))
        p, d = len(part), detail.shape[-1]
        raw, scale = _resampled(  # (p, 81, side*side): 9 row crops x 9 column crops a pair
            detail[[i for i, _ in part]], my.reshape(p, -1, d), mx.reshape(p, -1, d), 9, side
        )
        target = whole[[j for _, j in part]]
        out += (torch.einsum("pvd,pd->pv", raw, target) * scale).amax(1).tolist()
    return out
