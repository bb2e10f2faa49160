"""A run's evaluation as a tracker's metrics: the same names in MLflow and TensorBoard."""

from __future__ import annotations

import re
from typing import Any

EVALUATION_METRICS = ("accuracy", "balanced_accuracy", "loss", "macro_f1", "weighted_f1",
                      "ece", "nll", "brier", "unknown_rate")  # fmt: skip
PER_CLASS = ("precision", "recall", "f1")


def evaluation_metrics(evaluation: dict[str, Any], prefix: str = "test") -> dict[str, float]:
    """An evaluation's numbers as MLflow metrics (class names made valid metric names)."""
    out = {
        f"{prefix}/{k}": float(evaluation[k])
        for k in EVALUATION_METRICS
        if isinstance(evaluation.get(k), (int, float))
    }
    for row in evaluation.get("per_class") or []:
        name = re.sub(r"[^\w\-. /]", "_", str(row.get("class")))[:200]
        for k in PER_CLASS:
            if isinstance(row.get(k), (int, float)):
                out[f"{prefix}/{name}/{k}"] = float(row[k])
    return out
