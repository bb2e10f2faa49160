"""The loop's model: the label check's judges (``health.features.head_and_vote``: a linear head
and a nearest-neighbour vote on unit-length pretrained features), refit on every change of the
labels in well under a second. Its probabilities are calibrated on the labelled images' own
out-of-fold answers (a temperature, as the label check calibrates), which also give the estimated
accuracy with its 95 % interval: what a person needs to know when to stop.

How unlike the labelled images a waiting image is (its "unknown" score): one minus its cosine
similarity to the nearest labelled image, against the same for each labelled image to its
nearest other one: over the bar that keeps ``UNLIKE_KEEP`` of those with 95 % confidence (the
"none of these" answer's own rule, ``infer.ood.threshold_share``), it is unlike anything
labelled."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FOLDS = 5  # at most: fewer where a class has fewer labelled images
MIN_PER_CLASS = 2  # labelled images in each of 2 classes before there is a model at all
UNLIKE_KEEP = 0.95  # of the labelled images' own distances to their nearest other one
UNLIKE_MIN = 10  # labelled images before "unlike anything" is said at all
Z95 = 1.96


@dataclass
class Estimate:
    """How well the model labels: its out-of-fold accuracy on the labelled images."""

    labelled: int
    accuracy: float
    low: float  # Wilson 95 % interval
    high: float
    ece: float  # calibration error of the calibrated out-of-fold probabilities
    temperature: float

    def to_dict(self) -> dict[str, float | int]:
        return {
            "labelled": self.labelled,
            "accuracy": round(self.accuracy, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "ece": round(self.ece, 4),
            "temperature": round(self.temperature, 4),
        }


@dataclass
class Answers:
    """The model's answers for the waiting images."""

    probs: torch.Tensor  # (N, K) calibrated
    unlike: torch.Tensor  # (N,) bool: unlike anything labelled
    distance: torch.Tensor  # (N,) to the nearest labelled image (1 - cosine similarity)
    estimate: Estimate


def wilson(right: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a share ``right / n``."""
    if n == 0:
        return 0.0, 1.0
    p = right / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def can_fit(labels: torch.Tensor, classes: int) -> bool:
    counts = torch.bincount(labels, minlength=classes)
    return int((counts >= MIN_PER_CLASS).sum()) >= 2


def stratified_folds(labels: torch.Tensor, folds: int, seed: int = 0) -> torch.Tensor:
    """A fold per image, each class spread evenly over the folds (a fixed shuffle)."""
    g = torch.Generator().manual_seed(seed)
    fold = torch.empty(len(labels), dtype=torch.long)
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        fold[members] = torch.arange(len(members)) % folds
    return fold


def fit(known: torch.Tensor, labels: torch.Tensor, classes: int,
        query: torch.Tensor) -> Answers:  # fmt: skip
    """The model on ``known`` features with their ``labels``, answering for ``query``."""
    from sightline.health.features import fold_jobs, gather, head_and_vote, side_by_side
    from sightline.health.labels import HEAD_DECAY, fold_threads
    from sightline.infer.calibration import expected_calibration_error, fit_temperature

    with fold_threads():  # the same answers on every machine and face
        # Held out and judged: the images of classes with 2 labels or more. A class of one
        # image is still learnt from, but no fold model could ever get it right: counted, it
        # would make the estimate lower and the temperature flatten every probability.
        counts = torch.bincount(labels, minlength=classes)
        judged = counts[labels] >= MIN_PER_CLASS
        y = labels[judged]
        folds = int(min(FOLDS, int(counts[counts >= MIN_PER_CLASS].min())))
        fold = torch.full((len(labels),), -1, dtype=torch.long)
        fold[judged] = stratified_folds(y, folds)
        k, q = F.normalize(known, dim=1), F.normalize(query, dim=1)

        # The fold models and the model that answers, fit side by side (one job a core).
        def answering() -> torch.Tensor:
            if not len(q):
                return torch.zeros(0, classes)
            return head_and_vote(k, labels, q, classes, HEAD_DECAY)

        *folded, probs = side_by_side([*fold_jobs(known, labels, classes, fold, HEAD_DECAY),
                                       answering])  # fmt: skip
        oof = gather(folded, len(labels), classes)[judged]
        log = oof.double().clamp(min=1e-12).log()
        temperature = fit_temperature(log, y)
        calibrated = (log / temperature).softmax(1)
        right = int((calibrated.argmax(1) == y).sum())
        low, high = wilson(right, len(y))
        estimate = Estimate(
            len(y), right / max(1, len(y)), low, high,
            expected_calibration_error(calibrated, y), temperature,
        )  # fmt: skip
        probs = (probs.double().clamp(min=1e-12).log() / temperature).softmax(1).float()
    distance, unlike = unlike_scores(k, q)
    return Answers(probs, unlike, distance, estimate)


def unlike_scores(known: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(each query's distance to its nearest known row, whether it is further than the known
    rows' own spread allows); rows unit-length."""
    from sightline.infer.ood import threshold_share

    if len(query) == 0 or len(known) == 0:
        return torch.zeros(len(query)), torch.zeros(len(query), dtype=torch.bool)
    distance = 1 - (query @ known.T).max(1).values
    if len(known) < UNLIKE_MIN:
        return distance, torch.zeros(len(query), dtype=torch.bool)
    own = known @ known.T
    own.fill_diagonal_(-2.0)
    spread = 1 - own.max(1).values
    bar = float(torch.quantile(spread, threshold_share(UNLIKE_KEEP, len(spread))))
    return distance, distance > bar
