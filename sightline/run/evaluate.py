"""``Run.evaluate``: a run's model on one source of labelled images, measured and recorded.

The source (its own split, a dataset, an image folder: ``evaluation_source.py``) decides what
is evaluated and under which name the result is kept in ``evaluations/``, so another source
never replaces the run's test result. The record holds the metrics, what was evaluated, the
model file's hash (a saved result is reused only for the same model), and for test images
that copy training images the accuracy without them.
"""

from __future__ import annotations

from typing import Any

from sightline.fileio import file_sha256
from sightline.run import evaluations as store


def evaluate_run(
    run: Any,
    data: Any = None,
    split: str = "test",
    which: str = "best",
    device: str = "auto",
    batch_size: int = 1000,
    save: bool = True,
    logits: Any = None,
):
    """``Run.evaluate`` of ``run`` (a ``Run``; see its docstring): the ``Metrics``; the record
    is saved (``save``, for a source that says where it came from) and left on
    ``run.last_evaluation``. (``run`` is not typed ``Run``: run.py imports this module.)"""
    from sightline.run.copies import without_copies
    from sightline.run.evaluation_source import resolve_source

    src = resolve_source(run, data, split, which)
    if logits is None:
        metrics = evaluate_images(run, src.images, which, device, batch_size)
    else:
        from sightline.infer.metrics import compute_metrics

        metrics = compute_metrics(
            logits, src.images.labels, run.classes, calibrator=run.calibrator(which)
        )
    record = {
        **src.record(run, which),
        "model_sha256": file_sha256(run.model_file(which)),
        **metrics.to_dict(),
    }
    clean = without_copies(run.path, src.images.paths, metrics)
    if clean is not None:  # test images that copy training images: the honest accuracy too
        record["without_copies"] = clean
    if save and src.key is not None:
        store.save_evaluation(
            run.path,
            src.key,
            record,
            src.title + "\n" + metrics.format_table(),
            metrics.logits,
            metrics.labels,
        )
    run.last_evaluation = record  # what was evaluated, for the caller to show
    return metrics


def evaluate_images(run: Any, images: Any, which: str, device: str, batch_size: int):
    """The forward pass and metrics of labelled ``images`` (an ``ImageSet``)."""
    from sightline.devices import resolve_device
    from sightline.infer.metrics import evaluate_model

    dev = resolve_device(device)
    return evaluate_model(
        run.inference_model(which, dev),
        images.images,
        images.labels,
        run.preprocess,
        run.classes,
        device=dev,
        batch_size=batch_size,
    )
