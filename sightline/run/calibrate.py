"""Calibrating a run: a map of its logits fitted on its validation split, and what its training
images look like (the "none of these" score and its threshold), kept in its model file.

After training (``sightline.pipeline``), with ``sightline calibrate RUN`` for a run trained
before calibration existed, or ``Run.calibrate``: the network's logits on the validation
images, the calibrator that minimises their NLL (``infer.calibration.fit_calibrator``), and
the model file rewritten with it in its metadata (weights unchanged). ``checkpoint.load_model``
then gives the model whose logits go through it, so predict, evaluate, inspect, the server
and the ONNX export all report calibrated probabilities; the predicted classes never change.
"""

from __future__ import annotations

from typing import Any

import torch

from sightline.errors import RunError

OOD_FIT_IMAGES = 20_000  # training images whose features fit its Gaussians (a seeded sample)
# ... fewer for large inputs, whose every image costs a pass of a large network (224 px
# photos: 2,000, ~1 min on 2 cores, where 20,000 would add 10 min to a training).
OOD_FIT_PIXELS = 20_000 * 32 * 32
OOD_FIT_MIN = 2_000
# Fewer held-out images and no calibration is fitted (the run says so): a map fitted on 3
# validation images "calibrated" a run from ECE 26.6 % to 25.1 % (issue 51), noise either way.
CALIBRATION_MIN_IMAGES = 50


def ood_fit_images(input_shape: tuple[int, ...]) -> int:
    """How many training images fit a run's Gaussians, for its input size (C, H, W)."""
    pixels = int(input_shape[-1]) * int(input_shape[-2])
    return max(OOD_FIT_MIN, min(OOD_FIT_IMAGES, OOD_FIT_PIXELS // pixels))


def calibrate_run(
    run: Any, data: Any = None, which: str = "best", device: str = "auto"
) -> dict[str, Any]:
    """Fit and save ``run``'s calibrator on the validation split of ``data`` (default: the
    run's own dataset); returns the record saved in the model file. RunError when the data has
    no validation split or other classes."""
    from sightline.devices import resolve_device
    from sightline.infer.batched import batched_logits, feature_dims, inference_copy
    from sightline.infer.calibration import Calibrator, calibration, fit_calibrator
    from sightline.infer.ood import fit_detector, stage_taps, threshold_share
    from sightline.run import checkpoint as ckpt

    data = data if data is not None else run.load_data()
    # Its validation split, else the images kept aside to calibrate on (calibration_split).
    val = getattr(data, "held_out", getattr(data, "val", None))
    if val is None or len(val) == 0:
        raise RunError(
            f"run {run.name}: its data has no validation split to calibrate it on "
            "(train with one, e.g. --val-split 0.1, or pass data that has one)"
        )
    if list(data.classes) != list(run.classes):
        raise RunError(f"the data's classes {data.classes} differ from the model's {run.classes}")
    dev = resolve_device(device)
    path = run.model_file(which)
    raw, _ = ckpt.load_model(path, dev, calibrated=False)
    train = data.train
    count = ood_fit_images(run.preprocess.input_shape)
    # A pretrained backbone may run in ONNX Runtime here (infer/backbone.py).
    net = inference_copy(raw, run.preprocess, dev, images=len(val) + min(count, len(train)))
    # The "none of these" score reads the later stages of a convnet too (infer/ood.py).
    taps = stage_taps(raw)
    logits, val_features = batched_logits(net, val.images, run.preprocess, dev, features=taps)
    few = len(val) < CALIBRATION_MIN_IMAGES
    calibrator = Calibrator() if few else fit_calibrator(logits, val.labels)
    # A run that validates on its test split (val_split="test") is calibrated on it too: said,
    # since its test ECE is then not measured on held-out images.
    on_test = getattr(data, "test", None) is val
    fitted_on = "val" if val is getattr(data, "val", None) else "the calibration split"
    skipped = (
        {
            "method": "none",
            "skipped": f"only {len(val):,} held-out images; a calibration needs "
            f"{CALIBRATION_MIN_IMAGES} or more (a larger validation split, or more images): the "
            "probabilities are the network's own",
        }  # fmt: skip
        if few
        else {}
    )
    record = {
        **calibrator.to_dict(),
        **skipped,
        "fitted_on": "test (the run's validation split)" if on_test else fitted_on,
        "images": len(val),
        "before": calibration(logits, val.labels).to_dict(),
        "after": calibration(calibrator.apply(logits), val.labels).to_dict(),
    }  # no time stamp: two seeded runs keep byte-identical model files
    # What its training images look like, for the "none of these" answer (infer/ood.py).
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:count]
    _, features = batched_logits(net, train.images[pick], run.preprocess, dev, features=taps)
    dims = feature_dims(net, taps, val.images[:1], run.preprocess, dev)
    detector = fit_detector(
        features, train.labels[pick], len(run.classes), val_features, taps=taps, dims=dims
    )
    ckpt.set_fitted(path, calibration=record, detector=detector)  # one rewrite of the file
    share = {"validation_share": round(threshold_share(detector.keep, len(val)), 6),
             "validation_images": len(val)}  # fmt: skip
    record = {**record, "ood": {**detector.record(), "images": len(pick), **share}}
    return record
