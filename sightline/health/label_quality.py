"""What the label search's probabilities are worth on this folder, and which images they flag.

The fold models (``health/labels.py``) give every image probabilities from models that never
saw it. Before any of them becomes a finding:

1. **Calibrated.** One temperature fitted on those out-of-fold probabilities against the given
   labels (``infer.calibration.fit_temperature``): "95 %" then means what it says on this
   folder, and a model that learned nothing is flattened to its chance level.
2. **Measured.** The fold models' held-out accuracy against the given labels, balanced (the
   mean recall of the classes: a model that calls everything the large class scores 1/K), and
   their calibration error before and after.
3. **Abstains** under ``JUDGE_ACCURACY``: the confident mistakes of weaker models are mostly
   their own errors, not the folder's (clean folders at 72-75 %: 6-19 images each at
   p(label) <= 5 %, every one filed right), so no label is judged and the note says how many
   more images per class would let it (a learning curve through 2- and 4-fold models). Under
   ``MIN_IMAGES`` in a class, no models are trained at all.
4. **Flags** the images whose calibrated probability of their own label is ``FLAG_OWN`` or less,
   lowest first (cleanlab's ranking by self-confidence).
5. **Moves** (``sightline check --fix``) only training images, only when the models are right
   on ``RELIABLE_ACCURACY`` of the held-out images, and only at calibrated odds of 95 to 1: the
   class they suggest ``FIX_CONFIDENCE`` or more, its own ``FIX_OWN`` or less. Validation and
   test images are never relabelled without a person.
6. **Sums up** the folder as cleanlab's ``health_summary`` does, from the confident joint
   (Northcutt et al., 2021: per-class thresholds, the mean probability a class's own images
   get): the estimated share of right labels, each class's estimated noise, the classes
   confused with each other. (Its list of label issues, the confident joint's off-diagonal,
   was measured as the rule for findings too: 0 findings on the clean folders, but 52 of the 60
   planted digit flips, whose true class the models give 0.4-0.84, under its threshold.)

The thresholds were measured on 14 folders (clean: 2 x 20 and 2 x 21 digits, 5 x 40 digits and
Fashion-MNIST items, 10 x 100 digits, 3, 5 and 10 classes of CIFAR-10 photos, digits with one
class of shoes, photos with one class of digits; planted: 1,497 digits with 60 flipped labels,
1,547 CIFAR-10 photos with 50): benchmarks/README.md, "The label check".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from sightline.health.problems import Problem
from sightline.health.scan import Inventory

# ----------------------------------------------------------------------- the bars
MIN_IMAGES = 20  # per class: fewer and no fold model can say which label is wrong
# Balanced held-out accuracy under which labels are not judged. Clean folders whose models
# reach 72-75 % would show 6-19 false findings; the planted photo folder (81 %) shows 45 of
# its 50 flips among 87 findings (cleanlab on the same probabilities: 40 among 115).
JUDGE_ACCURACY = 0.80
RELIABLE_ACCURACY = 0.90  # and over: --fix may move a training image to the class suggested
# Calibrated probability of its own label at or under which an image is flagged. The planted
# digits: 58 of 60 flips at 0.05 (57 with other fold draws), 59 at 0.08; clean folders of
# 200 images: 0-2 findings at 0.05, 0-3 at 0.08 (benchmarks/README.md).
FLAG_OWN = 0.08
# What --fix needs to move a training image by itself: odds of 95 to 1. Flipped digits sit at
# p(label) 0.001-0.05 and so do a few clean images the models get wrong (0.0014-0.044, 8 of
# 1,940 clean images, 6 of them with 93-99 % for another class): at 0.95 and 0.01, 1 of those
# 8 moves and 27 of the 60 flips; the rest are listed for a person.
FIX_CONFIDENCE = 0.95  # calibrated probability of the suggested class, at the least
FIX_OWN = 0.01  # calibrated probability of its own class, at the most
CONFUSED_PAIRS = 5  # the most confused pairs of classes the summary names


@dataclass
class LabelJudgement:
    """What the label search found it could say about this folder's labels."""

    judged: bool  # labels were judged (False: the search abstained, ``why`` says why)
    why: str  # one sentence for a person: how reliable the search is here, or why it abstained
    reliable: bool = False  # good enough for --fix to move a training image by itself
    judges: str = ""  # the fold models, in words
    images: int = 0
    accuracy: float = math.nan  # held-out, against the given labels
    balanced_accuracy: float = math.nan
    ece_raw: float = math.nan  # of the fold models' own probabilities
    ece: float = math.nan  # after the temperature
    temperature: float = math.nan
    more_per_class: int | None = None  # images per class that would let labels be judged
    health: dict[str, Any] | None = None  # ``label_health``
    probs: torch.Tensor | None = field(default=None, repr=False)  # calibrated (N, K)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"judged": self.judged, "reliable": self.reliable, "why": self.why}
        if self.judges:
            out |= {
                "judges": self.judges,
                "images": self.images,
                "accuracy": _round(self.accuracy),
                "balanced_accuracy": _round(self.balanced_accuracy),
                "ece_raw": _round(self.ece_raw),
                "ece": _round(self.ece),
                "temperature": _round(self.temperature),
                "bars": {
                    "judge": JUDGE_ACCURACY,
                    "reliable": RELIABLE_ACCURACY,
                    "flag_own": FLAG_OWN,
                    "fix_confidence": FIX_CONFIDENCE,
                    "fix_own": FIX_OWN,
                },  # fmt: skip
            }
        if self.more_per_class is not None:
            out["more_per_class"] = self.more_per_class
        if self.health is not None:
            out["health"] = self.health
        return out


def _round(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


# ----------------------------------------------------------------------- before any model
def too_few(inventory: Inventory) -> LabelJudgement | None:
    """An abstaining judgement when the folder is too small for fold models, else None."""
    classes = inventory.classes
    if len(classes) < 2:
        return LabelJudgement(False, "labels not judged: there is one class only")
    counts = torch.bincount(torch.tensor([i.label for i in inventory.items], dtype=torch.long),
                            minlength=len(classes))  # fmt: skip
    fewest = int(counts.min())
    if fewest >= MIN_IMAGES:
        return None
    small = [c for c, n in zip(classes, counts.tolist(), strict=True) if n == fewest]
    more = MIN_IMAGES - fewest
    return LabelJudgement(
        False,
        f"too few images to judge labels: {_names(small)} {'has' if len(small) == 1 else 'have'} "
        f"{fewest} {'image' if fewest == 1 else 'images'}; "
        f"{more} more per class would let it (at least {MIN_IMAGES} per class)",
        more_per_class=more,
    )


def _names(classes: list[str]) -> str:
    shown = ", ".join(classes[:3])
    return shown + (f" and {len(classes) - 3} more" if len(classes) > 3 else "")


# ----------------------------------------------------------------------- judging
def judge(
    probs: torch.Tensor,
    labels: torch.Tensor,
    classes: list[str],
    judges: str,
    share: float,
    smaller: Callable[[], tuple[torch.Tensor, float]] | None = None,
) -> LabelJudgement:
    """Calibrate and measure the fold models' out-of-fold ``probs`` (N, K) against the given
    ``labels``; abstain under ``JUDGE_ACCURACY``. ``share``: of the images each fold model
    trained on. ``smaller()``: (out-of-fold probabilities of models trained on a smaller share,
    that share), asked for only when the search abstains, for the learning curve behind "N more
    per class"."""
    from sightline.infer.calibration import expected_calibration_error, fit_temperature

    raw = probs.double().clamp(min=0)
    raw = raw / raw.sum(1, keepdim=True).clamp(min=1e-12)
    log = raw.clamp(min=1e-12).log()
    temperature = fit_temperature(log, labels)
    calibrated = (log / temperature).softmax(1)
    balanced = balanced_accuracy(calibrated, labels, len(classes))
    judgement = LabelJudgement(
        judged=balanced >= JUDGE_ACCURACY,
        why="",
        reliable=balanced >= RELIABLE_ACCURACY,
        judges=judges,
        images=len(labels),
        accuracy=float((calibrated.argmax(1) == labels).double().mean()),
        balanced_accuracy=balanced,
        ece_raw=expected_calibration_error(raw, labels),
        ece=expected_calibration_error(calibrated, labels),
        temperature=temperature,
        probs=calibrated.float(),
    )
    measured = (
        f"models that never saw an image ({judges}) get {balanced:.0%} of them right "
        f"(balanced, {len(labels):,} images)"
    )
    if judgement.judged:
        judgement.health = label_health(calibrated, labels, classes)
        judgement.why = (
            f"labels judged: {measured}; calibrated on them (ECE {judgement.ece_raw:.1%} -> "
            f"{judgement.ece:.1%}); an image is flagged at {FLAG_OWN:.0%} or less for its own "
            "class"
        )
        if not judgement.reliable:
            judgement.why += (
                f"; under {RELIABLE_ACCURACY:.0%} right, so --fix moves none of them: review them"
            )
        return judgement
    if smaller is not None:
        small_probs, small_share = smaller()
        small = balanced_accuracy(small_probs, labels, len(classes))
        judgement.more_per_class = more_per_class(
            [(small_share, 1 - small), (share, 1 - balanced)], len(labels), len(classes)
        )
    more = judgement.more_per_class
    judgement.why = (
        f"too few images to judge labels: {measured}, under the {JUDGE_ACCURACY:.0%} that "
        "makes their findings more than their own mistakes; "
        + (
            f"about {more:,} more per class would let it (the models' learning curve)"
            if more is not None
            else "more images per class should let it (the models' learning curve here was too "
            "flat to say how many)"
        )
    )
    return judgement


def balanced_accuracy(probs: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    """The mean over the classes present of the share of their images predicted as them."""
    right = (probs.argmax(1) == labels).double()
    count = torch.bincount(labels, minlength=classes).double()
    hits = torch.bincount(labels, weights=right, minlength=classes)
    present = count > 0
    return float((hits[present] / count[present]).mean())


def more_per_class(curve: list[tuple[float, float]], images: int, classes: int) -> int | None:
    """Images per class to add before the balanced error falls to ``1 - JUDGE_ACCURACY``, from
    two points (share of the folder trained on, error) of a power-law learning curve
    error = a * n^-b (Cortes et al., 1994; Hestness et al., 2017). None: the error did not fall
    with more images."""
    (n1, e1), (n2, e2) = sorted(curve)
    target = 1 - JUDGE_ACCURACY
    if e2 <= target:
        return 0
    if e1 <= e2 or e2 <= 0:
        return None
    slope = math.log(e1 / e2) / math.log(n2 / n1)
    if slope < 0.05:
        return None
    needed = n2 * (e2 / target) ** (1 / slope)  # the share of today's folder a model needs
    return max(1, math.ceil(images * (needed / n2 - 1) / classes))


# ----------------------------------------------------------------------- findings
def label_problems(inventory: Inventory, judgement: LabelJudgement) -> list[Problem]:
    """A ``label`` finding for each image whose calibrated probability of its own class is
    ``FLAG_OWN`` or less, by a judgement that judged; ``details["fixable"]`` says whether
    --fix may move it."""
    if not judgement.judged or judgement.probs is None:
        return []
    probs, classes = judgement.probs, inventory.classes
    y = torch.tensor([i.label for i in inventory.items])
    own = probs.gather(1, y[:, None])[:, 0]
    best, suggested = probs.scatter(1, y[:, None], -1.0).max(1)
    problems = []
    for i in torch.nonzero(own <= FLAG_OWN).flatten().tolist():
        item = inventory.items[i]
        label, better = classes[item.label], classes[int(suggested[i])]
        sure = float(best[i])
        fixable = (
            judgement.reliable
            and item.split == "train"
            and sure >= FIX_CONFIDENCE
            and float(own[i]) <= FIX_OWN
        )
        problems.append(
            Problem(
                "label",
                [item.path],
                f"filed as {label}, looks like {better} ({sure:.0%} against {float(own[i]):.0%} "
                f"for {label}, calibrated, by models that never saw it)",
                score=1.0 - float(own[i]),
                details={
                    "label": label,
                    "suggested": better,
                    "split": item.split,
                    "probability": round(sure, 4),
                    "own": round(float(own[i]), 4),
                    "fixable": fixable,
                },  # fmt: skip
            )
        )
    return problems


# ----------------------------------------------------------------------- the summary
def confident_counts(probs: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(K, K) Northcutt et al.'s confident joint, counts of (given label, true label): an image
    counts for class j when its probability of j reaches j's threshold (the mean probability
    j's own images get), for the most probable such class; an image under every threshold is
    not counted."""
    probs = probs.double()
    count = torch.bincount(labels, minlength=classes).double()
    sums = torch.zeros(classes, dtype=torch.float64).index_add_(
        0, labels, probs.gather(1, labels[:, None])[:, 0]
    )
    thresholds = torch.where(count > 0, sums / count.clamp(min=1), torch.ones_like(count))
    above = probs >= thresholds - 1e-6  # cleanlab's tolerance
    counted = above.any(1)
    guess = probs.masked_fill(~above, -1.0).argmax(1)
    joint = torch.zeros(classes, classes, dtype=torch.float64)
    ones = torch.ones(int(counted.sum()), dtype=torch.float64)
    return joint.index_put_((labels[counted], guess[counted]), ones, accumulate=True)


def confident_joint(probs: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """(K, K) the estimated joint distribution of (given label, true label): the confident
    counts with each row scaled to the images given that label (a row with none: all as
    labelled), the whole to sum to 1 (cleanlab's ``estimate_joint``, before its rounding to
    whole images)."""
    counts = confident_counts(probs, labels, classes)
    given = torch.bincount(labels, minlength=classes).double()
    rows = counts.sum(1, keepdim=True)
    scaled = torch.where(rows > 0, counts / rows.clamp(min=1) * given[:, None], torch.diag(given))
    return scaled / scaled.sum().clamp(min=1e-12)


def label_health(probs: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """What cleanlab's ``health_summary`` gives: the estimated share of right labels, each
    class's estimated noise (of the images filed under it, the share that are something else;
    of the images that are it, the share filed elsewhere), and the pairs of classes most
    confused with each other, with about how many images."""
    joint = confident_joint(probs, labels, len(classes))
    n = len(labels)
    diag = joint.diagonal()
    given, true = joint.sum(1), joint.sum(0)
    per_class = [
        {
            "class": name,
            "images": int((labels == c).sum()),
            "noise": round(float(1 - diag[c] / given[c]), 4) if given[c] > 0 else 0.0,
            "inverse_noise": round(float(1 - diag[c] / true[c]), 4) if true[c] > 0 else 0.0,
        }
        for c, name in enumerate(classes)
    ]
    pairs = []
    for a in range(len(classes)):
        for b in range(a + 1, len(classes)):
            share = float(joint[a, b] + joint[b, a])
            if share * n >= 1:
                pairs.append({"classes": [classes[a], classes[b]], "share": round(share, 4),
                              "images": round(share * n)})  # fmt: skip
    pairs.sort(key=lambda p: -p["share"])
    quality = float(diag.sum())
    return {
        "label_quality": round(quality, 4),
        "estimated_wrong": round((1 - quality) * n),
        "classes": sorted(per_class, key=lambda c: -c["noise"]),
        "confused": pairs[:CONFUSED_PAIRS],
    }
