"""Inference: what a trained model says about images.

    batched    logits of many images in batches, with the run's test-time augmentation
    predict    ``Predictor``: files, folders, uploads → predictions (bad files skipped and named)
    prepared   inputs → prepared images, probabilities → prediction rows
    metrics    accuracy, loss, top-k, per-class precision/recall/F1, the confusion matrix
    onnx       a run's ONNX export in ONNX Runtime, as a drop-in for its PyTorch model

Every image reaches a model through the run's saved ``Preprocess`` (``sightline.data``).
"""

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports

_EXPORTS = {
    "Predictor": "sightline.infer.predict",
    "expand_inputs": "sightline.infer.prepared",
    "Prediction": "sightline.infer.results",
    "PredictionReport": "sightline.infer.results",
    "save_seen": "sightline.infer.results",
    "require_packages": "sightline.infer.onnx",
    "runs_beside_torch": "sightline.infer.onnx",
    "PreparedImages": "sightline.infer.prepared",
    "prepare_groups": "sightline.infer.prepared",
    "Unknown": "sightline.infer.predict",
    "scored_logits": "sightline.infer.predict",
    "NO_OBJECT_NOTE": "sightline.infer.prepared",
}
if TYPE_CHECKING:
    from sightline.infer.onnx import require_packages, runs_beside_torch
    from sightline.infer.predict import Predictor, Unknown, scored_logits
    from sightline.infer.prepared import (
        NO_OBJECT_NOTE,
        PreparedImages,
        expand_inputs,
        prepare_groups,
    )
    from sightline.infer.results import Prediction, PredictionReport, save_seen
__all__ = [
    "expand_inputs",
    "NO_OBJECT_NOTE",
    "Prediction",
    "PredictionReport",
    "Predictor",
    "prepare_groups",
    "PreparedImages",
    "require_packages",
    "runs_beside_torch",
    "save_seen",
    "scored_logits",
    "Unknown",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
