"""Saved evaluations of a run: one set of files per source, so one result never replaces another.

```
runs/<name>/evaluations/
  test.json                  metrics + what was evaluated: source, split or folder, checkpoint,
                             image count, skipped files, the model file's sha256
  test.txt                   the printed report
  test.logits.safetensors    the (N, K) logits and (N,) labels: the report and the plots reuse
                             them instead of evaluating the whole split again
  val.json, test-last.json, folder-photos-1a2b3c4d.json, mnist-test.json, ...
```

The key of a source is built by ``source_key``: the run's own split (``test``, ``val``), with
``-last`` for the last checkpoint, a folder (``folder-<name>-<hash of its absolute path>``) or
another dataset (``<dataset>-<split>``). Only the run's own test split with its best checkpoint
(key ``test``) is "the run's test result" that listings show.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from sightline.errors import PathRefusedError
from sightline.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    entries_inside,
    read_bytes_inside,
    read_json_inside,
)
from sightline.run.layout import EVALUATIONS, RunLayout

FOLDER = EVALUATIONS
LOGITS = ".logits.safetensors"  # an evaluation's saved logits and labels, beside its JSON
TEST_KEY = "test"


def source_key(
    kind: str,
    split: str,
    checkpoint: str = "best",
    *,
    path: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> str:
    """The file stem of one evaluation source (see the module docstring)."""
    if kind == "split":
        key = split
    elif kind == "folder":
        resolved = str(Path(path or ".").resolve())
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(resolved).name).strip("-.")[:40] or "folder"
        digest = hashlib.sha256(resolved.encode()).hexdigest()[:8]
        key = f"folder-{slug}-{digest}" + (f"-{split}" if split != "all" else "")
    elif kind == "dataset":
        key = f"{re.sub(r'[^A-Za-z0-9._-]+', '-', dataset or 'data')}-{split}"
    else:
        raise ValueError(f"unknown evaluation source kind {kind!r}")
    return key if checkpoint == "best" else f"{key}-{checkpoint}"


def save_evaluation(
    run_dir: Path, key: str, record: dict[str, Any], table: str, logits=None, labels=None
) -> Path:
    """Write ``<key>.json`` (+ ``.txt`` and the logits) atomically; returns the JSON path."""
    files = RunLayout(run_dir)
    if logits is not None and labels is not None:
        from safetensors.torch import save as st_save

        blob = st_save(
            {"logits": logits.float().contiguous(), "labels": labels.long().contiguous()}
        )
        atomic_write_bytes(files.evaluation(key, LOGITS), blob, root=run_dir)
    atomic_write_bytes(files.evaluation(key, ".txt"), (table + "\n").encode("utf-8"), root=run_dir)
    path = files.evaluation(key)
    atomic_write_json(path, record, root=run_dir)  # last: its companions are complete
    return path


def read_evaluation(run_dir: Path, key: str) -> dict[str, Any] | None:
    """The record of evaluation ``key``, or None: a damaged file counts as no evaluation (it
    is simply done again), and so does a symbolic link (refused, never read)."""
    try:
        return read_json_inside(run_dir, RunLayout(run_dir).evaluation(key))
    except (OSError, ValueError, PathRefusedError):
        return None


def read_test_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """The run's own test result (test split, best checkpoint), or None; a run of sightline
    < 0.2 kept it as ``evaluation.json``."""
    found = read_evaluation(run_dir, TEST_KEY)
    if found is None and os.path.lexists(run_dir / "evaluation.json"):
        try:
            legacy = read_json_inside(run_dir, "evaluation.json")
        except (OSError, ValueError, PathRefusedError):
            return None
        if (
            isinstance(legacy, dict)
            and legacy.get("split", "test") == "test"
            and legacy.get("checkpoint", "best") == "best"
        ):
            return legacy
    return found


def list_evaluations(run_dir: Path) -> dict[str, dict[str, Any]]:
    try:
        entries = entries_inside(run_dir, EVALUATIONS)
    except PathRefusedError:  # a linked evaluations/ folder: none of it is read
        return {}
    found = {}
    for name, kind in entries.items():
        stem = name[: -len(".json")]
        if kind == "file" and name.endswith(".json"):
            record = read_evaluation(run_dir, stem)
            if record is not None:
                found[stem] = record
    return found


def load_logits(run_dir: Path, key: str):
    """(logits, labels) saved with an evaluation, or None (a symbolic link too: refused)."""
    path = RunLayout(run_dir).evaluation(key, LOGITS)
    if not os.path.lexists(path):
        return None
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        tensors = st_load(read_bytes_inside(run_dir, path))
        return tensors["logits"], tensors["labels"]
    except (SafetensorError, KeyError, OSError, ValueError, PathRefusedError):
        return None
