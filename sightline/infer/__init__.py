"""Inference: what a trained model says about images.

    batched    logits of many images in batches, with the run's test-time augmentation
    predict    files, folders, uploads → predictions (bad files skipped and named)
    metrics    accuracy, loss, top-k, per-class precision/recall/F1, the confusion matrix
    onnx       a run's ONNX export in ONNX Runtime, as a drop-in for its PyTorch model

Every image reaches a model through the run's saved ``Preprocess`` (``sightline.data``).
"""
