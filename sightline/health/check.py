"""``check``: read a dataset once and report what is wrong with it, worst first."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch

from sightline.data.folder_choices import FEW_IMAGES, UNBALANCED
from sightline.data.folders import find_splits
from sightline.health.decisions import apply_decisions
from sightline.health.duplicates import NEAR, copy_groups, copy_problems, near_pairs
from sightline.health.label_quality import judge, label_problems, too_few
from sightline.health.labels import FOLDS, add_neighbours, out_of_fold, outlier_problems
from sightline.health.problems import HealthReport, Problem, ordered
from sightline.health.scan import Inventory, Item, scan_dataset, scan_folder

# ----------------------------------------------------------------------- what is odd
ODD_ASPECT = 2.0  # an aspect ratio this many times wider or taller than the usual one
ODD_SCALE = 4.0  # a side this many times smaller or larger than the usual one
RARE_MODE = 0.05  # a colour mode held by under this share of the images, not the usual one


def check(
    source: str | os.PathLike,
    *,
    near: float | None = NEAR,
    labels: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    read: Inventory | None = None,
) -> HealthReport:
    """Check an image folder (any layout ``sightline train`` reads) or a built-in dataset by
    name: unreadable files, copies (within and across classes), near copies, validation or
    test images copied from training, class counts, and sizes or modes unlike the rest.
    ``near``: the similarity over which two images are near copies (None: exact copies only).
    ``labels``: also look for images filed under the wrong class (``health/labels.py``: small
    models trained on all but a fold of the images). ``progress(stage, done, total)``.
    ``read``: the source already read (``FolderReader.inventory``: as training decoded it)."""
    start = time.perf_counter()
    inventory = read if read is not None else _scan(source, _stage(progress, "reading images"))
    notes = []
    problems = [
        Problem("corrupt", [path], reason, details={"split": split})
        for path, split, reason in inventory.corrupt
    ]
    pairs = near_pairs(inventory.items, near) if near is not None else []  # searched once
    problems += copy_problems(inventory, near, pairs)
    judgement = None
    if labels:
        judgement = too_few(inventory)
        if judgement is None:
            groups = copy_groups(inventory.items, near, pairs)
            judgement, found = _judge_labels(inventory, groups, progress)
            add_neighbours(inventory, found)
            problems += found
        notes.append(judgement.why)
    problems += class_problems(inventory)
    problems += odd_problems(inventory.items)
    report = HealthReport(
        inventory.source,
        inventory.classes,
        inventory.counts(),
        ordered(problems),
        notes=inventory.notes + notes,
        labels=None if judgement is None else judgement.to_dict(),
        digests={item.path: item.digest.hex() for item in inventory.items},
    )
    if inventory.root is not None:
        apply_decisions(report, inventory.root)
        _note_kept(report, before=0)
    report.seconds = time.perf_counter() - start
    return report


def recheck(previous: HealthReport, root: str | os.PathLike) -> HealthReport:
    """The report of a folder after a fix or an undo: the quick part of the check again
    (files, copies, leaks, classes, sizes: what a move can change), and the label search's
    findings carried over for the images still where they were (a moved copy that became a
    same-class duplicate is shown at once, not at the next check)."""
    root = Path(root)
    fresh = check(root, labels=False)
    label_kinds = ("label", "outlier")
    carried = [
        p
        for p in previous.problems + previous.kept
        if p.kind in label_kinds and all((root / q).is_file() for q in p.paths)
    ]
    fresh.problems = ordered(fresh.problems + carried)
    before = len(fresh.kept)
    apply_decisions(fresh, root)  # a carried finding a person kept stays apart
    fresh.labels = previous.labels
    judged = [n for n in previous.notes if previous.labels and n == previous.labels.get("why")]
    fresh.notes = judged + fresh.notes
    _note_kept(fresh, before)
    return fresh


def _kept_note(count: int) -> str:
    return f"{count:,} findings kept as they are by a person (listed apart; revocable)"


def _note_kept(report: HealthReport, before: int) -> None:
    """The report's note on its kept findings, for their count now (replacing the one written
    when ``before`` were kept)."""
    if before:
        report.notes = [n for n in report.notes if n != _kept_note(before)]
    if report.kept:
        report.notes.append(_kept_note(len(report.kept)))


def _judge_labels(inventory: Inventory, groups: list[list[int]], progress):
    """(the label search's judgement, its label and outlier findings)."""
    y = torch.tensor([i.label for i in inventory.items])
    oof = out_of_fold(inventory, groups, progress=_stage(progress, "checking labels"))

    def smaller() -> tuple[torch.Tensor, float]:  # models on half the images: a learning curve
        half = out_of_fold(inventory, groups, 2, _stage(progress, "measuring the learning curve"))
        return half.probs, 0.5

    judgement = judge(oof.probs, y, inventory.classes, oof.judges, (FOLDS - 1) / FOLDS, smaller)
    found = label_problems(inventory, judgement) + outlier_problems(inventory, oof.outlier)
    return judgement, found


def _stage(progress, stage: str):
    return None if progress is None else (lambda done, total: progress(stage, done, total))


def _scan(source: str | os.PathLike, progress) -> Inventory:
    path = Path(source)
    if path.is_dir():
        return scan_folder(path, progress)
    from sightline.data import load_dataset
    from sightline.data.labels_file import is_labels_file

    # A labels file (its images named as its rows name them), else a built-in dataset (its
    # error lists them, and says when a folder of that name does not exist).
    labels_file = path.resolve() if is_labels_file(path) else None
    data = load_dataset(str(source), val_split=0, progress=False)
    return scan_dataset(data, progress, labels_file)


# ----------------------------------------------------------------------- classes
def class_problems(inventory: Inventory) -> list[Problem]:
    """``small-class`` for each class with under FEW_IMAGES training images, ``imbalance`` when
    the largest class has UNBALANCED times the images of the smallest (the rules training's
    notes use)."""
    counts = inventory.counts().get("train", dict.fromkeys(inventory.classes, 0))
    split_layout = (
        inventory.root is not None and find_splits(inventory.root)["train"] != inventory.root
    )
    prefix = "train/" if split_layout else ""
    problems = []
    for name, n in counts.items():
        if n < FEW_IMAGES:
            problems.append(
                Problem(
                    "small-class",
                    [f"{prefix}{name}"],
                    f"class {name} has {'no' if n == 0 else f'only {n}'} training images: "
                    f"a model cannot learn it from under {FEW_IMAGES}; add some",
                    score=float(FEW_IMAGES - n),
                    details={"class": name, "images": n},
                )
            )
    present = {c: n for c, n in counts.items() if n > 0}
    if len(present) > 1:
        large, small = max(present, key=present.get), min(present, key=present.get)
        ratio = present[large] / present[small]
        if ratio >= UNBALANCED:
            problems.append(
                Problem(
                    "imbalance",
                    [f"{prefix}{large}", f"{prefix}{small}"],
                    f"{large} has {present[large]:,} training images, {small} only "
                    f"{present[small]:,} ({ratio:.0f}x): the model will favour the large classes",
                    score=ratio,
                    details={"largest": large, "smallest": small, "ratio": round(ratio, 2)},
                )
            )
    return problems


# ----------------------------------------------------------------------- sizes and modes
def odd_problems(items: list[Item]) -> list[Problem]:
    """``odd-size`` for an image whose shape, size or colour mode is unlike the rest."""
    if len(items) < 5:
        return []
    aspects = sorted(math.log(w / h) for w, h in (i.size for i in items))
    sides = sorted(math.log(min(i.size)) for i in items)
    usual_aspect, usual_side = aspects[len(aspects) // 2], sides[len(sides) // 2]
    modes = Counter(i.mode for i in items)
    usual_mode = modes.most_common(1)[0][0]
    problems = []
    for item in items:
        w, h = item.size
        reasons, score = [], 0.0
        off = abs(math.log(w / h) - usual_aspect)
        if off > math.log(ODD_ASPECT):
            reasons.append(f"shape {w}x{h} (most are about {math.exp(usual_aspect):.2g}:1)")
            score += off
        scale = math.log(min(w, h)) - usual_side
        if abs(scale) > math.log(ODD_SCALE):
            side = round(math.exp(usual_side))
            reasons.append(
                f"{'small' if scale < 0 else 'large'}: {w}x{h} (most have a shorter side of about {side})"
            )
            score += abs(scale)
        if item.mode != usual_mode and modes[item.mode] < RARE_MODE * len(items):
            reasons.append(f"colour mode {item.mode} (most are {usual_mode}); it is converted")
            score += 0.5
        if reasons:
            problems.append(Problem("odd-size", [item.path], "; ".join(reasons), score=score,
                                    details={"size": [w, h], "mode": item.mode}))  # fmt: skip
    return problems
