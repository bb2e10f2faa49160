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
}
if TYPE_CHECKING:
    from sightline.infer.predict import Predictor
    from sightline.infer.prepared import expand_inputs
    from sightline.infer.results import Prediction, PredictionReport, save_seen
__all__ = ["Prediction", "PredictionReport", "Predictor", "expand_inputs", "save_seen"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
