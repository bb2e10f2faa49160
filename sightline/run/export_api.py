"""The export functions of the public API (``sightline.export_onnx``, ``sightline.run.export``):
a run, or its folder or name opened here, then ``run/export.py`` / ``run/exports.py``, which
take an open run (``Run.export`` calls into them, so they cannot import ``Run``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sightline.run.listing import load_run
from sightline.run.run import Run


def _open(run: Run | str | os.PathLike) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def export_onnx(run: Run | str | os.PathLike, *args: Any, **kwargs: Any):
    """A run (or its folder or name) as one ONNX file, checked against PyTorch: ``export_onnx``
    of ``run/export.py`` (its arguments: path, which, opset, check, images)."""
    from sightline.run.export import export_onnx as _export_onnx

    return _export_onnx(_open(run), *args, **kwargs)


def export(
    run: Run | str | os.PathLike,
    formats: str | Sequence[str] = "onnx",
    which: str = "best",
    accept_drop: float | None = None,
    **kwargs: Any,
):
    """``Run.export`` of a run or its folder: each format written, checked beside PyTorch and
    reported in ``export/report.json`` (``run/exports.py``)."""
    return _open(run).export(formats, which, accept_drop, **kwargs)
