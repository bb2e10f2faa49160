"""Prediction on the user's own images: files, folders, globs or uploads → top-k labels.

Files are decoded in chunks with the model's own ``Preprocess`` (colour, size, background
polarity), so a big folder never sits in memory at once. A file that can't be read is listed
with its reason and the rest go on. The model is an ``nn.Module`` or any ``LogitsModel`` (an
exported model in ONNX Runtime): the same functions classify with either.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from sightline.data.images import is_image_file
from sightline.data.preprocess import ImageInput, Preprocess
from sightline.errors import ImageError
from sightline.infer.batched import batched_logits
from sightline.infer.ood import is_unknown
from sightline.infer.results import UNKNOWN as UNKNOWN
from sightline.infer.results import Prediction as Prediction
from sightline.infer.results import PredictionReport as PredictionReport
from sightline.infer.results import save_seen as save_seen

NO_OBJECT_NOTE = "no object stood out from the background: the whole photo was used"
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


def unknown_rule(model: Classifier, unknown: Unknown = "auto") -> tuple[Any, float | None]:
    """(the model's detector, ``unknown_threshold`` of ``unknown`` for it)."""
    from sightline.infer.ood import detector_of

    detector = detector_of(model)
    return detector, unknown_threshold(detector, unknown)


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


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (recursive, image files only) and glob patterns → files, problems."""
    found: dict[Path, None] = {}
    problems: list[tuple[str, str]] = []
    for item in inputs:
        text = str(item)
        p = Path(text).expanduser()
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and is_image_file(f) and not f.name.startswith(".")
            )
            if not files:
                problems.append(
                    (text, "folder contains no image files (.png .jpg .jpeg .bmp .gif .webp)")
                )
            found.update(dict.fromkeys(files))
        elif p.exists():
            found[p] = None
        elif glob.has_magic(text):
            files = sorted(
                Path(f)
                for f in glob.glob(os.path.expanduser(text), recursive=True)
                if Path(f).is_file()
            )
            if not files:
                problems.append((text, "pattern matched no files"))
            found.update(dict.fromkeys(files))
        else:
            problems.append((text, "file not found"))
    return list(found), problems


def predict_tensor(
    model: Classifier,
    preprocess: Preprocess,
    images: torch.Tensor | Sequence[ImageInput] | ImageInput,
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Probabilities (N, K) for a uint8 (N, C, H, W) tensor in the model's input size, or for
    any images (paths, PIL images, arrays), which are prepared like the training data."""
    if (
        isinstance(images, torch.Tensor)
        and images.ndim == 4
        and images.dtype == torch.uint8
        and tuple(images.shape[1:]) == preprocess.input_shape
    ):
        batch = images
    else:
        if (
            isinstance(images, (str, os.PathLike))
            or not isinstance(images, (list, tuple, torch.Tensor))
            or (isinstance(images, torch.Tensor) and images.ndim <= 3)
        ):
            images = [images]
        batch = preprocess.prepare(images)
    return model_logits(model, batch, preprocess, device, batch_size).softmax(1)


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
    """Classify files, folders and globs. ``keep_seen``: each prediction keeps the image the
    model saw (``Prediction.seen``, after framing and inversion) to show the user why."""
    files, skipped = expand_inputs(inputs)
    report = predict_images(
        model,
        preprocess,
        classes,
        [(str(f), f) for f in files],
        top_k=top_k,
        device=device,
        batch_size=batch_size,
        keep_seen=keep_seen,
        unknown=unknown,
    )
    return PredictionReport(report.predictions, skipped + report.skipped)


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
    """Classify ``(name, image)`` pairs — paths, the bytes of uploads, file objects, PIL
    images, arrays — each reported by its name. An image that can't be read is skipped with
    its reason and the rest go on; predictions and skips keep the input order. ``unknown``:
    when an image's ``ood_score`` is over the threshold ("auto": the run's own), its answer is
    "unknown", the closest class still given ("off": never; a number: that threshold)."""
    detector, threshold = unknown_rule(model, unknown)
    predictions: list[Prediction] = []
    skipped: list[tuple[str, str]] = []
    for start in range(
        0, len(images), batch_size
    ):  # chunks: a big folder never sits in memory at once
        prepared = prepare_named(preprocess, images[start : start + batch_size])
        skipped += prepared.skipped
        if prepared.names:
            logits, scores = scored_logits(
                model, prepared.images, preprocess, device, batch_size, detector
            )
            predictions += prediction_rows(
                prepared, logits.softmax(1), classes, top_k, keep_seen, scores, threshold
            )
    return PredictionReport(predictions, skipped)


@dataclass
class PreparedImages:
    """Named images after ``Preprocess.prepare_with_framing``: what ``prediction_rows`` needs
    besides the probabilities. The two halves of ``predict_images``, apart so that a server can
    prepare in each request's thread and run one forward pass for many requests' images."""

    names: list[str]  # of the images that could be read, in input order
    images: torch.Tensor  # uint8 (N, C, H, W), one per name
    notes: list[str | None]  # per name: e.g. no object stood out
    skipped: list[tuple[str, str]]  # (name, reason) of the images that could not be read


def prepare_named(
    preprocess: Preprocess, images: Sequence[tuple[str, ImageInput]]
) -> PreparedImages:
    """Prepare ``(name, image)`` pairs; an unreadable one is skipped with its reason."""
    return prepare_groups(preprocess, [images])[0]


def prepare_groups(
    preprocess: Preprocess, groups: Sequence[Sequence[tuple[str, ImageInput]]]
) -> list[PreparedImages]:
    """``prepare_named`` of each group (a server's requests), through one
    ``Preprocess.prepare_many``: small images of different groups are framed together."""
    results = preprocess.prepare_many([im for group in groups for _, im in group])
    out, start = [], 0
    for group in groups:
        names: list[str] = []
        tensors: list[torch.Tensor] = []
        notes: list[str | None] = []
        skipped: list[tuple[str, str]] = []
        for (name, _), result in zip(group, results[start : start + len(group)], strict=True):
            if isinstance(result, ImageError):
                skipped.append((name, result.reason))
                continue
            x, framing = result
            names.append(name)
            tensors.append(x)
            notes.append(None if framing is None or framing.found else NO_OBJECT_NOTE)
        start += len(group)
        batch = (
            torch.stack(tensors)
            if tensors
            else torch.empty((0, *preprocess.input_shape), dtype=torch.uint8)
        )
        out.append(PreparedImages(names, batch, notes, skipped))
    return out


def prediction_rows(
    prepared: PreparedImages,
    probs: torch.Tensor,
    classes: Sequence[str],
    top_k: int = 3,
    keep_seen: bool = False,
    scores: torch.Tensor | None = None,
    threshold: float | None = None,
) -> list[Prediction]:
    """One ``Prediction`` per prepared image from its probabilities (N, K), in order; with
    ``scores`` each gets its ``ood_score``, and one over ``threshold`` is "unknown"."""
    k = max(1, min(top_k, len(classes)))
    values, indices = probs.topk(k, dim=1)
    rows = zip(
        prepared.names,
        values.tolist(),
        indices.tolist(),
        probs.tolist(),
        prepared.images,
        prepared.notes,
        strict=True,
    )
    out = []
    ood = [None] * len(prepared.names) if scores is None else scores.tolist()
    for (name, pv, iv, row, x, note), score in zip(rows, ood, strict=True):
        top = [(classes[i], round(v, 6)) for v, i in zip(pv, iv, strict=True)]
        unknown = is_unknown(score, threshold)
        out.append(
            Prediction(
                name,
                iv[0],
                UNKNOWN if unknown else classes[iv[0]],
                round(pv[0], 6),
                top,
                row,
                x if keep_seen else None,
                note,
                None if score is None else round(score, 4),
                unknown,
                classes[iv[0]],
            )
        )
    return out
