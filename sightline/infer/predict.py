"""Prediction on the user's own images: files, folders, globs or uploads → top-k labels.

``Predictor`` is the one home of prediction: a model ready to run (an ``nn.Module`` or any
``LogitsModel``, e.g. an export in ONNX Runtime), its ``Preprocess``, classes and device, and
which engine runs it and why. Every face predicts through one (``Run.predictor`` chooses the
engine for a run, once: ``sightline.run.predictor``). Files are decoded in chunks with the
model's own ``Preprocess`` (colour, size, background polarity), so a big folder never sits in
memory at once; a file that can't be read is listed with its reason and the rest go on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from sightline.data.preprocess import ImageInput, Preprocess
from sightline.infer.batched import batched_logits
from sightline.infer.prepared import NO_OBJECT_NOTE as NO_OBJECT_NOTE
from sightline.infer.prepared import PreparedImages as PreparedImages
from sightline.infer.prepared import expand_inputs as expand_inputs
from sightline.infer.prepared import prediction_rows as prediction_rows
from sightline.infer.prepared import prepare_groups as prepare_groups
from sightline.infer.prepared import prepare_named as prepare_named
from sightline.infer.results import UNKNOWN as UNKNOWN
from sightline.infer.results import Prediction as Prediction
from sightline.infer.results import PredictionReport as PredictionReport
from sightline.infer.results import save_seen as save_seen

Unknown = str | float  # "auto" (the run's threshold), "off", or a threshold of one's own


class LogitsModel(Protocol):
    """What prediction needs besides an ``nn.Module``: prepared uint8 images (N, C, H, W) →
    logits (N, K) on the CPU, normalised and flip-averaged as ``batched_logits`` does. An
    exported model in ONNX Runtime (``sightline.infer.onnx.OnnxModel``) is one."""

    def logits(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor: ...


Classifier = nn.Module | LogitsModel


def model_logits(
    model: Classifier,
    images: torch.Tensor,
    preprocess: Preprocess,
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Logits of either kind of model: the one place the prediction functions run one."""
    if isinstance(model, nn.Module):
        return batched_logits(model, images, preprocess, device, batch_size)
    return model.logits(images, batch_size=batch_size)


def parse_unknown(text: Unknown) -> Unknown:
    """ "auto", "off" or a finite threshold (a number, or its text); ConfigError otherwise."""
    from sightline.errors import ConfigError

    if text in ("auto", "off"):
        return text
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value):
        raise ConfigError(f"unknown is 'auto', 'off' or a threshold (a number), not {text!r}")
    return value


def unknown_threshold(detector: Any, unknown: Unknown = "auto") -> float | None:
    """The threshold over which an image is "unknown": "auto" is the detector's own (no
    detector: none), "off" none, a number that threshold. ConfigError for anything else, or
    for a number where there is no detector (no ``ood_score`` to compare it with)."""
    from sightline.errors import ConfigError

    rule = parse_unknown(unknown)
    if rule == "off":
        return None
    if rule == "auto":
        return None if detector is None else detector.threshold
    if detector is None:
        raise ConfigError(
            f"unknown={unknown!r}: this model has no 'none of these' score "
            "(`sightline calibrate RUN` fits it)"
        )
    return float(rule)


def scored_logits(
    model: Classifier,
    images: torch.Tensor,
    preprocess: Preprocess,
    device: torch.device | str | None,
    batch_size: int,
    detector: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits, ood scores or None): the scores where ``detector`` is given and the model is
    one whose features sightline can read (a PyTorch model)."""
    if detector is None:
        return model_logits(model, images, preprocess, device, batch_size), None
    if not isinstance(model, nn.Module):  # an export: its graph gives the scores
        return model.scored_logits(images, batch_size=batch_size)
    logits, features = batched_logits(model, images, preprocess, device, batch_size, True)
    return logits, detector.scores(features)


# A forward pass for ``Predictor.predict_images``: prepared uint8 images → (probabilities,
# "none of these" scores or None). A server's batcher passes its own (one pass, many requests).
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass
class Predictor:
    """A model ready to predict, and what every face needs with it: prepare images, run the
    forward pass, turn probabilities into rows (calibrated, with the "none of these" answer).

    ``engine`` says what runs the forward passes ("torch" or "onnx") and ``note`` why (the
    faces say it once). ``device``: where a PyTorch model runs (None: where it is).
    ``Run.predictor()`` makes one for a run (the engine chosen once, by one rule:
    ``sightline.run.predictor``); ``Predictor(model, preprocess, classes)`` wraps any other.

    >>> p = run.predictor()
    >>> p.predict_files(["photos/"]).to_table()
    >>> p.probabilities(["boot.jpg"])          # (N, K)
    """

    model: Classifier
    preprocess: Preprocess
    classes: list[str]
    device: torch.device | None = None
    engine: str = "torch"
    note: str | None = None
    name: str | None = None  # the run's, for the answers that name it
    batch_size: int = 256  # images prepared (and held) at a time
    _detector: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        from sightline.infer.ood import detector_of

        self.classes = list(self.classes)
        self._detector = detector_of(self.model)

    @property
    def detector(self) -> Any:
        """The model's "none of these" detector (None: it has none)."""
        return self._detector

    def threshold(self, unknown: Unknown = "auto") -> float | None:
        """The ``ood_score`` over which an answer is "unknown" (``unknown_threshold``)."""
        return unknown_threshold(self._detector, unknown)

    # ------------------------------------------------------------------ the three steps
    def prepare(self, images: Sequence[tuple[str, ImageInput]]) -> PreparedImages:
        """Decode and frame named images as in training; an unreadable one is skipped."""
        return prepare_named(self.preprocess, images)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) of prepared uint8 images (N, C, H, W), on the CPU."""
        return model_logits(self.model, images, self.preprocess, self.device, self.batch_size)

    def scored_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, "none of these" scores or None without a detector) of prepared images."""
        return scored_logits(
            self.model, images, self.preprocess, self.device, self.batch_size, self._detector
        )

    def scored(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(probabilities, "none of these" scores or None) of prepared uint8 images (a
        calibrated model's logits are calibrated already)."""
        logits, scores = self.scored_logits(images)
        return logits.softmax(1), scores

    def rows(
        self,
        prepared: PreparedImages,
        probs: torch.Tensor,
        scores: torch.Tensor | None = None,
        top_k: int = 3,
        keep_seen: bool = False,
        unknown: Unknown = "auto",
    ) -> list[Prediction]:
        """One ``Prediction`` per prepared image, "unknown" where its score is over the
        threshold of ``unknown``."""
        return prediction_rows(
            prepared, probs, self.classes, top_k, keep_seen, scores, self.threshold(unknown)
        )

    # ------------------------------------------------------------------ whole jobs
    def probabilities(
        self, images: torch.Tensor | Sequence[ImageInput] | ImageInput
    ) -> torch.Tensor:
        """Probabilities (N, K) for a uint8 (N, C, H, W) tensor in the model's input size, or
        for any images (paths, PIL images, arrays), prepared like the training data."""
        pre = self.preprocess
        if not (
            isinstance(images, torch.Tensor)
            and images.ndim == 4
            and images.dtype == torch.uint8
            and tuple(images.shape[1:]) == pre.input_shape
        ):
            if (
                isinstance(images, (str, os.PathLike))
                or not isinstance(images, (list, tuple, torch.Tensor))
                or (isinstance(images, torch.Tensor) and images.ndim <= 3)
            ):
                images = [images]
            images = pre.prepare(images)
        return self.logits(images).softmax(1)

    def predict_images(
        self,
        images: Sequence[tuple[str, ImageInput]],
        top_k: int = 3,
        keep_seen: bool = False,
        unknown: Unknown = "auto",
        forward: Forward | None = None,
    ) -> PredictionReport:
        """Classify ``(name, image)`` pairs — paths, the bytes of uploads, file objects, PIL
        images, arrays — each reported by its name. An image that can't be read is skipped with
        its reason and the rest go on; predictions and skips keep the input order. ``unknown``:
        when an image's ``ood_score`` is over the threshold ("auto": the run's own), its answer
        is "unknown", the closest class still given ("off": never; a number: that threshold).
        ``forward``: what runs the forward pass (default ``scored``)."""
        self.threshold(unknown)  # a bad rule fails before any image is decoded
        run = forward or self.scored
        report = PredictionReport([], [])
        for start in range(0, len(images), self.batch_size):  # a folder never sits in memory
            prepared = self.prepare(images[start : start + self.batch_size])
            report.skipped += prepared.skipped
            if prepared.names:
                probs, scores = run(prepared.images)
                report.predictions += self.rows(prepared, probs, scores, top_k, keep_seen, unknown)
        return report

    def predict_files(
        self,
        inputs: Sequence[str | os.PathLike],
        top_k: int = 3,
        keep_seen: bool = False,
        unknown: Unknown = "auto",
    ) -> PredictionReport:
        """Classify files, folders (recursive) and globs. ``keep_seen``: each prediction keeps
        the image the model saw (``Prediction.seen``, after framing and inversion)."""
        files, skipped = expand_inputs(inputs)
        report = self.predict_images(
            [(str(f), f) for f in files], top_k=top_k, keep_seen=keep_seen, unknown=unknown
        )
        return PredictionReport(report.predictions, skipped + report.skipped)


def _predictor(
    model: Classifier, preprocess: Preprocess, classes: Sequence[str], device: Any, batch_size: int
) -> Predictor:
    dev = None if device is None else torch.device(device)
    return Predictor(model, preprocess, list(classes), dev, batch_size=batch_size)


def predict_tensor(
    model: Classifier,
    preprocess: Preprocess,
    images: torch.Tensor | Sequence[ImageInput] | ImageInput,
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """``Predictor(model, ...).probabilities(images)``: probabilities (N, K)."""
    return _predictor(model, preprocess, [], device, batch_size).probabilities(images)


def predict_files(
    model: Classifier,
    preprocess: Preprocess,
    classes: Sequence[str],
    inputs: Sequence[str | os.PathLike],
    top_k: int = 3,
    device: torch.device | str | None = None,
    batch_size: int = 256,
    keep_seen: bool = False,
    unknown: Unknown = "auto",
) -> PredictionReport:
    """``Predictor(model, ...).predict_files(inputs, ...)``."""
    predictor = _predictor(model, preprocess, classes, device, batch_size)
    return predictor.predict_files(inputs, top_k, keep_seen, unknown)


def predict_images(
    model: Classifier,
    preprocess: Preprocess,
    classes: Sequence[str],
    images: Sequence[tuple[str, ImageInput]],
    top_k: int = 3,
    device: torch.device | str | None = None,
    batch_size: int = 256,
    keep_seen: bool = False,
    unknown: Unknown = "auto",
) -> PredictionReport:
    """``Predictor(model, ...).predict_images(images, ...)``."""
    predictor = _predictor(model, preprocess, classes, device, batch_size)
    return predictor.predict_images(images, top_k, keep_seen, unknown)
