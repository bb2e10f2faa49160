"""The two ends of a prediction around the forward pass: inputs → prepared images, and
probabilities → one ``Prediction`` row per image.

``expand_inputs`` turns files, folders and globs into files; ``prepare_named`` /
``prepare_groups`` decode and frame named images with the model's own ``Preprocess`` (an
unreadable one is skipped with its reason); ``prediction_rows`` turns probabilities (and "none
of these" scores) into the rows every face shows. ``Predictor`` (``infer/predict.py``) runs the
forward pass between them; a server's batcher prepares in each request's thread and runs one
forward pass for many requests.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from sightline.data.images import is_image_file
from sightline.data.preprocess import ImageInput, Preprocess
from sightline.errors import ImageError
from sightline.infer.ood import is_unknown
from sightline.infer.results import UNKNOWN, Prediction

NO_OBJECT_NOTE = "no object stood out from the background: the whole photo was used"


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
