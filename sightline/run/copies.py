"""The accuracy an evaluation would have without the copies of training images among its
images (the leaks the data check found before training, ``check.json``): when a test folder
holds copies of training images, the plain accuracy flatters the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sightline.fileio import read_json_inside
from sightline.run.layout import RunLayout


def data_check(run_path: str | Path) -> dict[str, Any] | None:
    """The data check made before the run trained (``check.json``; None: there was none;
    ``LinkRefusedError`` when it is a symbolic link)."""
    file = RunLayout(run_path).check
    return read_json_inside(run_path, file) if os.path.lexists(file) else None


def leaked_files(run_path: str | Path) -> set[Path]:
    """The files the run's data check found to be copies of its training images."""
    record = data_check(run_path)
    if record is None:
        return set()
    root = Path(record["source"])
    leaks = (p for p in record.get("problems", []) if p["kind"] == "leak")
    return {(root / p["paths"][0]).resolve() for p in leaks}


def without_copies(
    run_path: str | Path, paths: list[str] | None, metrics: Any
) -> dict[str, Any] | None:
    """{accuracy, count, copies} on the images that are not copies of training images (None:
    no copy among them, or no file names to tell)."""
    leaked = leaked_files(run_path)
    if not leaked or not paths or metrics.logits is None:
        return None
    keep = torch.tensor([Path(p).resolve() not in leaked for p in paths])
    copies = int((~keep).sum())
    if copies == 0 or not keep.any():
        return None
    right = metrics.logits.cpu()[keep].argmax(1) == metrics.labels.cpu()[keep]
    return {
        "accuracy": round(float(right.float().mean()), 6),
        "count": int(keep.sum()),
        "copies": copies,
    }
