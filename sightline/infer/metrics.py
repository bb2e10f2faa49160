"""Evaluation metrics: loss, accuracy, top-k, per-class precision/recall/F1, confusion matrix,
and how well the probabilities are calibrated (ECE, NLL, Brier: ``calibration.py``).

Everything is computed from one (N, K) logits tensor with vectorised torch ops. The per-sample
predictions, probabilities and losses are kept on the result (not serialised) for the plots
that come after evaluation: prediction grids, top losses, confusion heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from sightline.infer.calibration import Calibration, Calibrator, calibration

SAMPLE_ORDERS = ("confidence", "loss", "random")


@dataclass
class Metrics:
    classes: list[str]
    count: int
    loss: float
    accuracy: float
    top_k: dict[str, float]  # {"top3": 0.98, ...}
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]  # rows = true class, columns = predicted class
    calibration: Calibration | None = None  # of the probabilities as the model gives them
    calibrator: Calibrator = field(default_factory=Calibrator)  # the model's (identity: none)
    uncalibrated: Calibration | None = None  # of its network's own, before the calibrator
    unknown_rate: float | None = None  # share of the images answered "unknown" (infer/ood.py)
    predictions: torch.Tensor | None = field(default=None, repr=False)
    logits: torch.Tensor | None = field(default=None, repr=False)
    probabilities: torch.Tensor | None = field(default=None, repr=False)
    losses: torch.Tensor | None = field(default=None, repr=False)
    labels: torch.Tensor | None = field(default=None, repr=False)

    @property
    def present(self) -> list[int]:
        """Indices of the classes that occur in the evaluated data. Averages run over these
        only: a class with no images has no recall, not a recall of 0."""
        return [i for i, s in enumerate(self.support) if s > 0]

    @property
    def absent_classes(self) -> list[str]:
        return [c for c, s in zip(self.classes, self.support, strict=True) if s == 0]

    def _macro(self, values: list[float]) -> float:
        idx = self.present
        return sum(values[i] for i in idx) / len(idx) if idx else 0.0

    @property
    def macro_precision(self) -> float:
        return self._macro(self.precision)

    @property
    def macro_recall(self) -> float:
        return self._macro(self.recall)

    @property
    def balanced_accuracy(self) -> float:
        """The mean of the classes' recalls (= ``macro_recall``): what accuracy would be were
        every class as common; on imbalanced data, what says whether the rare classes are
        learned (accuracy can be 99 % with a class never recognised)."""
        return self.macro_recall

    @property
    def macro_f1(self) -> float:
        return self._macro(self.f1)

    @property
    def weighted_f1(self) -> float:
        n = sum(self.support)
        return sum(f * s for f, s in zip(self.f1, self.support, strict=True)) / n if n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "balanced_accuracy": round(self.balanced_accuracy, 6),
            **self.top_k,
            "macro_precision": round(self.macro_precision, 6),
            "macro_recall": round(self.macro_recall, 6),
            "macro_f1": round(self.macro_f1, 6),
            "weighted_f1": round(self.weighted_f1, 6),
            **(self.calibration.to_dict() if self.calibration else {}),
            "calibrator": self.calibrator.to_dict(),
            **({"uncalibrated": self.uncalibrated.to_dict()} if self.uncalibrated else {}),
            **({"unknown_rate": self.unknown_rate} if self.unknown_rate is not None else {}),
            "classes": self.classes,
            "absent_classes": self.absent_classes,
            "per_class": [
                {
                    "class": self.classes[i],
                    "precision": self.precision[i],
                    "recall": self.recall[i],
                    "f1": self.f1[i],
                    "support": self.support[i],
                }
                for i in self.present
            ],
            "confusion_matrix": self.confusion,
        }

    def samples(
        self,
        true: int | None = None,
        pred: int | None = None,
        order: str = "confidence",
        limit: int | None = None,
        seed: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """The evaluated images of one confusion-matrix cell, row or column (``true`` and/or
        ``pred`` class indices; neither: all), as (how many match, the first ``limit`` rows).

        ``order``: "confidence" (the surest predictions first: confident mistakes are the
        interesting ones), "loss" (the worst first) or "random" (seeded by ``seed``). A row is
        ``{"index", "true", "true_label", "pred", "pred_label", "confidence", "loss"}`` with
        ``index`` the image's position in the evaluated split; "confidence" is the probability
        of the predicted class. Needs the per-image results (a fresh or saved evaluation)."""
        if (
            self.labels is None
            or self.predictions is None
            or self.probabilities is None
            or self.losses is None
        ):
            raise ValueError(
                "these metrics have no per-image results (only their summary was kept)"
            )
        k = len(self.classes)
        for name, value in (("true", true), ("pred", pred)):
            if value is not None and not 0 <= value < k:
                raise ValueError(f"{name}={value} is not a class index: the classes are 0..{k - 1}")
        if order not in SAMPLE_ORDERS:
            raise ValueError(f"unknown order {order!r}: use {', '.join(SAMPLE_ORDERS)}")
        mask = torch.ones(len(self.labels), dtype=torch.bool)
        if true is not None:
            mask &= self.labels == true
        if pred is not None:
            mask &= self.predictions == pred
        index = mask.nonzero().flatten()
        confidence = self.probabilities.max(1).values if len(self.labels) else torch.zeros(0)
        if order == "random":
            index = index[torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))]
        else:
            key = confidence if order == "confidence" else self.losses
            index = index[key[index].argsort(descending=True, stable=True)]
        rows = []
        for i in index[:limit].tolist():
            t, p = int(self.labels[i]), int(self.predictions[i])
            rows.append(
                {
                    "index": i,
                    "true": t,
                    "true_label": self.classes[t],
                    "pred": p,
                    "pred_label": self.classes[p],
                    "confidence": round(float(confidence[i]), 6),
                    "loss": round(float(self.losses[i]), 6),
                }
            )
        return len(index), rows

    def format_table(self) -> str:
        topk = "".join(f"   {k}: {v:.4f}" for k, v in self.top_k.items())
        lines = [
            f"{self.count:,} images   loss: {self.loss:.4f}   accuracy: {self.accuracy:.4f}{topk}"
            f"   balanced accuracy: {self.balanced_accuracy:.4f}"
        ]
        if self.calibration is not None and self.count:
            c = self.calibration
            lines.append(
                f"calibration: ECE {c.ece:.2%} (0 is perfect; {c.ece_floor:.2%} from sampling alone "
                f"on {self.count:,} images)   NLL {c.nll:.4f}   Brier {c.brier:.4f}"
            )
            if self.uncalibrated is not None:
                u = self.uncalibrated
                lines.append(
                    f"  before its {self.calibrator.method} calibration: ECE {u.ece:.2%}   "
                    f"NLL {u.nll:.4f}   Brier {u.brier:.4f}"
                )
        if self.unknown_rate is not None:
            lines.append(
                f"answered unknown (unlike the training images): {self.unknown_rate:.2%} of these"
            )
        lines.append("")
        w = max(12, *(len(c) for c in self.classes))
        lines.append(f"{'class':<{w}}  precision  recall      f1  support")
        for i in self.present:
            c, p, r, f, s = (
                self.classes[i],
                self.precision[i],
                self.recall[i],
                self.f1[i],
                self.support[i],
            )
            lines.append(f"{c:<{w}}  {p:9.4f}  {r:6.4f}  {f:6.4f}  {s:7,}")
        lines.append(
            f"{'macro avg':<{w}}  {self.macro_precision:9.4f}  {self.macro_recall:6.4f}  "
            f"{self.macro_f1:6.4f}  {sum(self.support):7,}"
        )
        if self.absent_classes:
            lines.append(
                f"not in this data (left out of the averages): {', '.join(self.absent_classes)}"
            )
        lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
        short = [c[:6] for c in self.classes]
        cw = max(6, *(len(str(v)) for row in self.confusion for v in row))
        lines.append(" " * (w + 2) + " ".join(f"{s:>{cw}}" for s in short))
        for c, row in zip(self.classes, self.confusion, strict=True):
            lines.append(f"{c:<{w}}  " + " ".join(f"{v:>{cw}}" for v in row))
        return "\n".join(lines)


def compute_metrics(
    logits: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    top_k: Sequence[int] = (1, 5),
    calibrator: Calibrator | None = None,
) -> Metrics:
    """All metrics from logits (N, K) and integer labels (N,). ``calibrator``: the one the
    model's logits came through, so that the calibration before it is reported too."""
    calibrator = calibrator or Calibrator()
    logits, labels = logits.float().cpu(), labels.long().cpu()
    k = len(classes)
    n = len(labels)
    losses = F.cross_entropy(logits, labels, reduction="none") if n else torch.zeros(0)
    preds = logits.argmax(1) if n else torch.zeros(0, dtype=torch.long)
    confusion = torch.bincount(labels * k + preds, minlength=k * k).view(k, k)
    tp = confusion.diag().double()
    support = confusion.sum(1).double()
    predicted = confusion.sum(0).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(
        denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp)
    )
    topk = {}
    for kk in top_k:
        if 1 < kk < k and n:
            hit = (logits.topk(kk, dim=1).indices == labels[:, None]).any(1)
            topk[f"top{kk}"] = round(hit.double().mean().item(), 6)
    return Metrics(
        classes=list(classes),
        count=n,
        loss=round(losses.mean().item(), 6) if n else float("nan"),
        accuracy=round((tp.sum() / max(n, 1)).item(), 6),
        top_k=topk,
        precision=[round(v, 6) for v in precision.tolist()],
        recall=[round(v, 6) for v in recall.tolist()],
        f1=[round(v, 6) for v in f1.tolist()],
        support=[int(v) for v in support.tolist()],
        confusion=confusion.tolist(),
        calibration=calibration(logits, labels),
        calibrator=calibrator,
        uncalibrated=None
        if calibrator.identity
        else calibration(calibrator.invert(logits), labels),
        predictions=preds,
        logits=logits,
        probabilities=logits.softmax(1) if n else torch.zeros(0, k),
        losses=losses,
        labels=labels,
    )
