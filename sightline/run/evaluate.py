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
    """The forward pass and metrics of labelled ``images`` (an ``ImageSet``), through the run's
    ``Predictor`` (the engine every face predicts with); with a "none of these" score, the
    share of the images it answers unknown too."""
    import dataclasses

    from sightline.infer.metrics import compute_metrics
    from sightline.infer.ood import is_unknown

    predictor = run.predictor(which, device=device, images=len(images))
    logits, scores = dataclasses.replace(predictor, batch_size=batch_size).scored_logits(
        images.images
    )
    metrics = compute_metrics(logits, images.labels, run.classes,
                              calibrator=run.calibrator(which))  # fmt: skip
    if scores is not None and len(images):
        unknown = is_unknown(scores, predictor.threshold())
        metrics.unknown_rate = round(float(unknown.float().mean()), 6)
    return metrics
