"""Copies in a dataset: the same pixels (a digest of the decoded image), and near copies (the
same picture resized, re-encoded as JPEG or recoloured), found by the correlation of small gray
thumbnails, or cropped by a few percent too (``crops.py``: the best of its crops). A pair in
the training split and another split is a leak: the evaluation then scores the model on images
it trained on."""

from __future__ import annotations

from collections import defaultdict

import torch

from sightline.health.crops import cropped_pairs
from sightline.health.problems import Problem
from sightline.health.scan import Inventory, Item, thumbnails

# Correlation of two 32x32 gray thumbnails over which they are the same picture. Measured on
# 5,000 images each of MNIST, Fashion-MNIST and CIFAR-10: a near copy (resized x1.7, JPEG at
# quality 70, brightness and contrast changed) scores 0.986-0.999 (1st percentile); distinct
# images pass 0.99 at 0, 2.2 (Fashion-MNIST, which holds near copies of its own) and 0 pairs
# per 1,000 images.
NEAR = 0.99
_BLOCK = 2048  # rows of the similarity matrix at a time: 2048 x N float32


def exact_groups(items: list[Item]) -> list[list[int]]:
    """Indices of items with the same decoded pixels, groups of two or more."""
    by_digest: dict[bytes, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_digest[item.digest].append(i)
    return [group for group in by_digest.values() if len(group) > 1]


def near_pairs(items: list[Item], threshold: float = NEAR) -> list[tuple[int, int, float]]:
    """(i, j, similarity), i < j, for thumbnails correlated at ``threshold`` or more whose
    pixels differ (exact copies are ``exact_groups``'), and for pairs of which one is a crop of
    the other (``crops.cropped_pairs``, held to ``crop_threshold(threshold)``)."""
    found = {(i, j): s for i, j, s in _aligned_pairs(items, threshold)}
    for i, j, s in cropped_pairs(items, crop_threshold(threshold)):
        found.setdefault((i, j), s)
    return sorted((i, j, s) for (i, j), s in found.items())


def crop_threshold(near: float) -> float:
    """The bar for a cropped copy: a fifth of the way from ``near`` to 1 (0.99 -> 0.992). The best
    of 225 x 81 crops of one image fits another image better than one comparison does; on 5,000
    images of each built-in dataset with 200 copies cropped 3-8 %, this bar kept the false pairs
    at or below the plain search's own (which meets Fashion-MNIST's near copies of its own)."""
    return near + 0.2 * (1.0 - near)


def _aligned_pairs(items: list[Item], threshold: float) -> list[tuple[int, int, float]]:
    """Pairs whose whole thumbnails correlate at ``threshold`` or more (pixels differing)."""
    t = thumbnails(items)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(t), _BLOCK):
        sim = t[start : start + _BLOCK] @ t[start:].T  # the upper triangle, a block at a time
        rows, cols = torch.nonzero(sim >= threshold, as_tuple=True)
        keep = cols > rows  # j > i: each pair once, no image with itself
        for r, c in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
            i, j = start + r, start + c
            if items[i].digest != items[j].digest:
                pairs.append((i, j, float(sim[r, c])))
    return pairs


def copy_groups(
    items: list[Item], near: float | None = NEAR, pairs: list[tuple[int, int, float]] | None = None
) -> list[list[int]]:
    """Groups of indices that are copies of each other: exact groups, and near pairs (``pairs``:
    ``near_pairs``' answer when it is known already; the search is the check's costliest read)."""
    groups = exact_groups(items)
    if near is not None:
        pairs = near_pairs(items, near) if pairs is None else pairs
        groups += [[i, j] for i, j, _ in pairs]
    return groups


def copy_problems(
    inventory: Inventory,
    near: float | None = NEAR,
    pairs: list[tuple[int, int, float]] | None = None,
) -> list[Problem]:
    """``duplicate``, ``near-duplicate`` and ``leak`` findings (``near`` None: exact only;
    ``pairs``: ``near_pairs``' answer when it is known already)."""
    items, classes = inventory.items, inventory.classes
    problems: list[Problem] = []
    for group in exact_groups(items):
        by_split: dict[str, list[int]] = defaultdict(list)
        for i in group:
            by_split[items[i].split].append(i)
        train = by_split.get("train", [])
        for split, members in by_split.items():
            if len(members) > 1:
                problems.append(_duplicate(items, classes, members))
            if split != "train" and train:
                problems.extend(_leak(items, classes, i, train[0], 1.0) for i in members)
        others = [s for s in by_split if s != "train"]
        if len(others) > 1:  # the same image in validation and test, none in train
            problems.append(_duplicate(items, classes, [by_split[s][0] for s in others]))
    if near is not None:
        for i, j, sim in near_pairs(items, near) if pairs is None else pairs:
            a, b = items[i], items[j]
            if "train" in (a.split, b.split) and a.split != b.split:
                outside, inside = (i, j) if b.split == "train" else (j, i)
                problems.append(_leak(items, classes, outside, inside, sim))
            else:
                problems.append(_near(items, classes, i, j, sim))
    return problems


def _labels(items: list[Item], classes: list[str], members: list[int]) -> list[str]:
    return [classes[items[i].label] for i in members]


def _duplicate(items: list[Item], classes: list[str], members: list[int]) -> Problem:
    labels = _labels(items, classes, members)
    conflict = len(set(labels)) > 1
    message = (
        f"the same image {len(members)} times under different classes ({', '.join(sorted(set(labels)))}): "
        "keep the right one"
        if conflict
        else f"the same image {len(members)} times: it weighs {len(members)}x in training"
    )
    return Problem("duplicate", [items[i].path for i in members], message,
                   score=2.0 if conflict else 1.0,
                   details={"labels": labels, "conflict": conflict})  # fmt: skip


def _near(items: list[Item], classes: list[str], i: int, j: int, sim: float) -> Problem:
    labels = _labels(items, classes, [i, j])
    conflict = labels[0] != labels[1]
    message = f"the same picture, resized, re-encoded or cropped (similarity {sim:.3f})" + (
        f", filed as {labels[0]} and as {labels[1]}" if conflict else ""
    )
    return Problem("near-duplicate", [items[i].path, items[j].path], message,
                   score=sim + (1.0 if conflict else 0.0),
                   details={"labels": labels, "conflict": conflict, "similarity": round(sim, 4)})  # fmt: skip


def _leak(items: list[Item], classes: list[str], outside: int, train: int, sim: float) -> Problem:
    a, b = items[outside], items[train]
    exact = sim >= 1.0 and a.digest == b.digest
    what = "a copy" if exact else f"a near copy (similarity {sim:.3f})"
    message = f"this {a.split} image is {what} of a training image: its score is not earned"
    if a.label != b.label:
        message += f" (filed as {classes[a.label]} there, {classes[b.label]} in train)"
    return Problem("leak", [a.path, b.path], message, score=sim,
                   details={"split": a.split, "exact": exact, "similarity": round(sim, 4),
                            "labels": _labels(items, classes, [outside, train])})  # fmt: skip
