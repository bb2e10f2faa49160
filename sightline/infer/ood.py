"""How unlike its training data an image is: the score behind the "none of these" answer.

Every classifier answers with one of its classes, even for a photo of nothing it knows. The
network's penultimate features (the input of its last linear layer) know more than its top
probability: sightline fits a Gaussian per class on the features of its training images (one
shared covariance) and one Gaussian on all of them, and scores an image by its relative
Mahalanobis distance (Ren et al., 2021): the distance to the nearest class minus the distance
to the whole training set, which takes out what is merely unusual in every class alike.
Higher is less like the training data. A convnet's later stages know more again: for airnet
and fastcnn (``stage_taps``) each stage's output but the first's, pooled, gets a Gaussian per
class too, and the score adds their Mahalanobis distances, each part in standard deviations of
its validation scores (default runs, benchmarks/ood.py: noise 100 % answered unknown where
the penultimate features alone let 0.3-10 % through; photos of everyday objects 0.994 / 0.992
AUROC against 0.984 / 0.971). The threshold keeps ``keep`` (95 %) of real images with
95 % confidence: it is the validation scores' quantile at ``keep`` raised by a one-sided
binomial bound on that quantile (``threshold_share``), since the validation images are a sample
and the run's best epoch was chosen on them; above it the answer is "unknown", the nearest class
still shown.

Measured on the default Fashion-MNIST run (its 10,000 test images against others; AUROC, and
the share of the others that still pass the threshold, FPR@95):

| score | MNIST digits | CIFAR-10 photos, framed | uniform noise | bright squares |
| --- | --- | --- | --- | --- |
| top probability | 0.976 / 16 % | 0.921 / 40 % | 0.978 / 15 % | 0.972 / 22 % |
| energy | 0.995 / 2 % | 0.945 / 20 % | 0.992 / 1 % | 0.988 / 8 % |
| Mahalanobis | 0.987 / 5 % | 0.965 / 19 % | 0.965 / 20 % | 0.984 / 9 % |
| relative Mahalanobis | 0.997 / 1 % | 0.981 / 8 % | 0.994 / 0 % | 0.989 / 6 % |
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

METHOD = "relative-mahalanobis"
STAGES_METHOD = "relative-mahalanobis+stages"  # the same, plus each later stage's distance
KEEP = 0.95  # the share of real (validation) images the threshold lets through
SHRINK = 1e-3  # covariance shrinkage, in units of its mean variance: features can be degenerate
PREFIX = "ood."  # its tensors' names in the model file
CONFIDENCE_Z = 1.645  # one-sided 95 %: the threshold keeps ``keep`` of real images at least


def is_unknown(score: Any, threshold: float | None) -> Any:
    """The one rule of the "none of these" answer: an image is unknown when its score is over
    the threshold. ``score`` a float or a tensor of them; None (no score) or no threshold
    (unknown answers off) is never unknown."""
    if score is None or threshold is None:
        return False
    return score > threshold


def threshold_share(keep: float, images: int) -> float:
    """The quantile of ``images`` validation scores to put the threshold at so that, with 95 %
    confidence, it keeps at least ``keep`` of real images: ``keep`` plus the binomial standard
    error times 1.645, capped at 1 (few images: the largest validation score). 6,000 validation
    images: 95 % -> 95.46 % (measured on the default MNIST run: 5.8 % of its test images unknown
    at 95 %, 5.2 % at 95.46 %)."""
    return min(1.0, keep + CONFIDENCE_Z * math.sqrt(keep * (1 - keep) / max(1, images)))


def penultimate(model: nn.Module) -> nn.Linear:
    """The model's last linear layer, whose input are the features scored here."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear layer to take features from")
    return linears[-1]


def stage_taps(model: nn.Module) -> tuple[str, ...]:
    """The modules whose inputs are the outputs of a convnet's stages after the first, by name
    (``ood_taps``, set by the model's family: airnet, fastcnn); () for any other model. A name,
    not a hook on the stage itself: a folded inference copy (``models/fold.py``) calls its leaf
    modules directly, under the same names."""
    return tuple(getattr(model, "ood_taps", ()))


def feature_modules(model: nn.Module, taps: tuple[str, ...] = ()) -> list[tuple[str, nn.Module]]:
    """The modules whose inputs, ``pooled``, are the features the score reads, by name: the
    penultimate layer ("") first, then each tap. ValueError for a tap the model lacks."""
    out: list[tuple[str, nn.Module]] = [("", penultimate(model))]
    for tap in taps:
        try:
            out.append((tap, model.get_submodule(tap)))
        except AttributeError:
            raise ValueError(
                f"{type(model).__name__} has no module {tap!r} to take features from"
            ) from None
    return out


def pooled(x: torch.Tensor) -> torch.Tensor:
    """A stage's output (N, C, H, W) as features (N, 2C): its maximum and mean per channel;
    the penultimate features (N, D) as they are."""
    if x.dim() != 4:
        return x.flatten(1).float()
    return torch.cat([x.amax((2, 3)), x.mean((2, 3))], 1).float()


@dataclass
class Detector:
    """The Gaussians of a run's training features and the threshold on their score.

    With ``taps`` (a convnet's later stages: ``stage_taps``) the features an image is scored on
    are its penultimate features followed by each tap's ``pooled`` output (``dims`` long each),
    and the score is the sum of the relative Mahalanobis distance and each tap's Mahalanobis
    distance to its nearest class, each in standard deviations of its validation scores
    (``zstats``: mean and std per part)."""

    means: torch.Tensor  # (K, D) per class
    precision: torch.Tensor  # (D, D) inverse of the shared covariance
    mean0: torch.Tensor  # (D,) of all the training features
    precision0: torch.Tensor  # (D, D) inverse of their covariance
    threshold: float
    keep: float = KEEP
    taps: tuple[str, ...] = ()
    tap_means: list[torch.Tensor] = field(default_factory=list)  # per tap (K, D_t)
    tap_precisions: list[torch.Tensor] = field(default_factory=list)  # per tap (D_t, D_t)
    zstats: torch.Tensor | None = None  # (1 + taps, 2): each part's validation mean and std
    _cache: Any = field(default=None, repr=False, compare=False)

    @property
    def dims(self) -> list[int]:
        return [len(self.mean0)] + [len(m[0]) for m in self.tap_means]

    def parts(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Each part's distance (N,): the relative Mahalanobis distance on the penultimate
        features, then each tap's Mahalanobis distance to its nearest class."""
        f = features.float().cpu()
        if f.shape[1] != sum(self.dims):
            raise ValueError(
                f"features of {f.shape[1]} values, the detector scores {sum(self.dims)}"
            )
        return part_distances(f.split(self.dims, 1), self.gaussians())

    def gaussians(self) -> list[tuple[torch.Tensor, ...]]:
        """Per set of Gaussians, what ``part_distances`` needs, in float32, made once.

        The penultimate features' two Gaussians share one projection: with P = L L^T (Cholesky)
        and L^-1 P0 L^-T = U diag(w) U^T, B = L U gives P = B B^T and P0 = B diag(w) B^T, so
        g = (f - centre) B serves the class distances (|g - means B|^2) and the all-data one
        (sum w g^2, with the centre at its mean): (centre, B, the class means less the centre
        times B, their squared norms), then (w,). Each tap: (a centre near the data, the
        Cholesky factor L of its precision, its means less the centre times L, their squared
        norms). Whitened from a centre near the data, the distances are computed to ~1e-5 in
        float32, at half the cost of float64 (the plain f^T P f loses digits to an
        ill-conditioned P); one D x D matrix for the two Gaussians, not two, halves the score's
        share of an export (13.1 of 32.6 MB for EfficientNet-Lite2's) and its multiply."""
        if self._cache is None:
            pen = self.mean0.double()
            lower = torch.linalg.cholesky(self.precision.double())
            inv_p0 = torch.linalg.solve_triangular(lower, self.precision0.double(), upper=False)
            inv_p0 = torch.linalg.solve_triangular(lower, inv_p0.T, upper=False)
            weights, rotation = torch.linalg.eigh((inv_p0 + inv_p0.T) / 2)
            joint = lower @ rotation
            white = (self.means.double() - pen) @ joint
            self._cache = [(pen.float(), joint.float(), white.float(), white.pow(2).sum(1).float()),
                           (weights.float(),)]  # fmt: skip
            for m, p in zip(self.tap_means, self.tap_precisions, strict=True):
                centre = m.double().mean(0)
                lower = torch.linalg.cholesky(p.double())
                white = (m.double() - centre) @ lower
                self._cache.append((centre.float(), lower.float(), white.float(),
                                    white.pow(2).sum(1).float()))  # fmt: skip
        return self._cache

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) float32: higher is less like the training data."""
        return combined(self.parts(features), self.zstats)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {PREFIX + k: getattr(self, k).float().contiguous() for k in _TENSORS}
        for i, (m, p) in enumerate(zip(self.tap_means, self.tap_precisions, strict=True)):
            out[f"{PREFIX}tap{i}.means"] = m.float().contiguous()
            out[f"{PREFIX}tap{i}.precision"] = p.float().contiguous()
        if self.zstats is not None:
            out[PREFIX + "zstats"] = self.zstats.double().contiguous()
        return out

    def record(self) -> dict[str, Any]:
        record = {"method": STAGES_METHOD if self.taps else METHOD,
                  "threshold": round(self.threshold, 6), "keep": self.keep}  # fmt: skip
        if self.taps:
            record["taps"] = list(self.taps)
        return record

    @classmethod
    def from_file(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Detector | None:
        """From a model file's tensors and metadata (None: it has none)."""
        record = meta.get("ood") or {}
        taps = tuple(record.get("taps") or ())
        names = [PREFIX + k for k in _TENSORS]
        if taps:
            names += [
                f"{PREFIX}tap{i}.{k}" for i in range(len(taps)) for k in ("means", "precision")
            ]
            names.append(PREFIX + "zstats")
        if record.get("method") not in (METHOD, STAGES_METHOD) or any(
            n not in tensors for n in names
        ):
            return None
        return cls(*(tensors[PREFIX + k] for k in _TENSORS), float(record["threshold"]),
                   float(record.get("keep", KEEP)), taps,
                   [tensors[f"{PREFIX}tap{i}.means"] for i in range(len(taps))],
                   [tensors[f"{PREFIX}tap{i}.precision"] for i in range(len(taps))],
                   tensors[PREFIX + "zstats"] if taps else None)  # fmt: skip


_TENSORS = ("means", "precision", "mean0", "precision0")


def _mahalanobis(
    f: torch.Tensor,
    centre: torch.Tensor,
    lower: torch.Tensor,
    white: torch.Tensor,
    norms: torch.Tensor,
) -> torch.Tensor:
    """(N, M) squared Mahalanobis distances of features (N, D) to M means, given as
    ``Detector.gaussians`` keeps them: |(f - centre) L - white|^2 expanded."""
    g = (f - centre) @ lower
    return g.pow(2).sum(1, keepdim=True) - 2 * g @ white.T + norms


def part_distances(
    chunks: Sequence[torch.Tensor], gaussians: Sequence[Sequence[torch.Tensor]]
) -> list[torch.Tensor]:
    """``Detector.parts`` of features already split into their parts, given the Gaussians as
    ``Detector.gaussians`` keeps them: written once for PyTorch and the ONNX graph."""
    centre, joint, white, norms = gaussians[0]
    (weights,) = gaussians[1]
    g = (chunks[0] - centre) @ joint
    square = g.pow(2)
    nearest = (square.sum(1, keepdim=True) - 2 * g @ white.T + norms).min(1).values
    out = [nearest - (square * weights).sum(1)]
    for chunk, gaussian in zip(chunks[1:], gaussians[2:], strict=True):
        out.append(_mahalanobis(chunk, *gaussian).min(1).values)
    return out


def combined(parts: Sequence[torch.Tensor], zstats: torch.Tensor | None) -> torch.Tensor:
    """The score from the parts' distances: the first alone without ``zstats``, else the sum of
    each in standard deviations of its validation scores."""
    if zstats is None:
        return parts[0]
    z = zstats.float()
    score = (parts[0] - z[0, 0]) / z[0, 1]
    for i in range(1, len(parts)):
        score = score + (parts[i] - z[i, 0]) / z[i, 1]
    return score


def _precision(centred: torch.Tensor) -> torch.Tensor:
    cov = centred.T @ centred / max(1, len(centred))
    ridge = SHRINK * float(cov.diagonal().mean().clamp(min=1e-12))
    return torch.linalg.inv(cov + ridge * torch.eye(len(cov), dtype=cov.dtype))


def _class_gaussians(
    f: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(class means of the classes with images, the precision of their shared covariance)."""
    counts = torch.bincount(labels, minlength=num_classes)
    means = torch.zeros(num_classes, f.shape[1], dtype=torch.float64)
    means.index_add_(0, labels, f)
    means = means / counts.clamp(min=1)[:, None]
    # a class with no training images has no Gaussian
    return means[counts > 0], _precision(f - means[labels])


def detector_of(model: Any) -> Detector | None:
    """The detector of a model loaded from a run's model file (None: it has none)."""
    return getattr(model, "sightline_ood", None)


def fit_detector(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    val_features: torch.Tensor,
    keep: float = KEEP,
    taps: tuple[str, ...] = (),
    dims: list[int] | None = None,
) -> Detector:
    """The Gaussians of training ``features`` (N, D) with integer ``labels``, and the threshold
    that keeps ``keep`` of real images, chosen on ``val_features`` (held-out images of the same
    classes) by ``threshold_share``. With ``taps``, the features are the penultimate ones
    followed by each tap's, ``dims`` long each (``batched_logits(features=taps)``)."""
    if not 0 < keep < 1:
        raise ValueError(f"keep is the share of real images to keep, in (0, 1), not {keep!r}")
    f, labels = features.double().cpu(), labels.long().cpu()
    dims = list(dims) if dims else [f.shape[1]]
    if len(dims) != 1 + len(taps) or sum(dims) != f.shape[1]:
        raise ValueError(f"features of {f.shape[1]} values do not split as {dims} for {taps}")
    chunks = f.split(dims, 1)
    means, precision = _class_gaussians(chunks[0], labels, num_classes)
    mean0 = chunks[0].mean(0)
    tap_fits = [_class_gaussians(c, labels, num_classes) for c in chunks[1:]]
    detector = Detector(means, precision, mean0, _precision(chunks[0] - mean0),
                        threshold=float("inf"), keep=keep, taps=tuple(taps),
                        tap_means=[m for m, _ in tap_fits],
                        tap_precisions=[p for _, p in tap_fits])  # fmt: skip
    if taps:  # each part in standard deviations of its validation scores
        parts = detector.parts(val_features)
        detector.zstats = torch.tensor(
            [[float(p.mean()), max(float(p.std()), 1e-12)] for p in parts], dtype=torch.float64
        )
    val_scores = detector.scores(val_features).double()
    share = threshold_share(keep, len(val_scores))
    detector.threshold = float(torch.quantile(val_scores, share))
    return detector
