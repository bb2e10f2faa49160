"""The one writer of a run folder: every file a run holds is written here, atomically, inside it.

The trainer, its callbacks, the report and the job server hand what they made to a
``RunWriter`` and never name a run file themselves (``run/layout.py`` names them), so where a
file goes and how it is written (atomic, links refused: ``fileio``) is decided once.
``status.json`` has one shape whoever writes it (``RunStatus``): a run that failed before its
first step says so in the same keys as one that trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightline.fileio import atomic_write_bytes, atomic_write_json, inside
from sightline.run.layout import RunLayout

METRIC_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "time",
    "images_per_sec",
    "best",
]


@dataclass
class RunStatus:
    """``status.json``: where a run stands. Every writer fills these keys (None: not known)."""

    status: str  # created, running, finished, early_stopped, max_steps, interrupted, failed
    epochs_done: int = 0
    epochs: int | None = None
    global_step: int = 0
    monitor: str | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    stop_step: int | None = None
    train_size: int | None = None
    warmup_seconds: float | None = None  # the untimed warm-up's (train/warmup.py)
    last: dict[str, Any] | None = None  # the last epoch's metrics row
    error: str | None = None
    # Who trains it, while it trains (a listing shows a killed trainer's run as interrupted).
    process: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["process"] is None:
            del out["process"]  # only while running
        return out


KEYS_OF_STATUS = tuple(f.name for f in dataclasses.fields(RunStatus))


class RunWriter:
    """Writes the files of the run folder ``path`` (created when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files = RunLayout(self.path)

    # ------------------------------------------------------------------ progress
    def write_status(self, status: RunStatus | dict[str, Any]) -> None:
        """``status.json``, in ``RunStatus``'s shape (a dict is checked against its keys)."""
        record = status.to_dict() if isinstance(status, RunStatus) else dict(status)
        unknown = set(record) - set(KEYS_OF_STATUS)
        if unknown:
            raise ValueError(
                f"status.json has no key(s) {sorted(unknown)}; it has {KEYS_OF_STATUS}"
            )
        full = RunStatus(**record).to_dict()  # every key, in one order
        atomic_write_json(self.files.status, full, root=self.path)

    def mark(self, **changes: Any) -> None:
        """Change keys of the status as it is on disk (e.g. ``status="interrupted"``)."""
        from sightline.fileio import read_json_inside

        try:
            current = read_json_inside(self.path, self.files.status)
        except (OSError, ValueError):
            current = {"status": "created"}
        known = (
            {k: v for k, v in current.items() if k in KEYS_OF_STATUS}
            if isinstance(current, dict)
            else {}
        )
        self.write_status({**known, **changes})

    def write_metrics(self, rows: Iterable[dict[str, Any]]) -> None:
        """``metrics.csv``: one row an epoch, in ``METRIC_COLUMNS``."""
        lines = [",".join(METRIC_COLUMNS)]
        for row in rows:
            lines.append(
                ",".join("" if row.get(c) is None else str(row[c]) for c in METRIC_COLUMNS)
            )
        atomic_write_bytes(self.files.metrics, ("\n".join(lines) + "\n").encode(), self.path)

    # ------------------------------------------------------------------ checkpoints
    def save_model(self, which: str, model: Any, meta: dict[str, Any]) -> None:
        """``<which>.safetensors``: weights and metadata (``run/checkpoint.py``'s format)."""
        from sightline.run.checkpoint import save_model

        save_model(self.files.model(which), model, meta)

    def save_resume(self, state: dict[str, Any]) -> None:
        """``resume.pt``: the whole training state, for an exact resume."""
        from sightline.run.checkpoint import save_state

        save_state(self.files.resume, state)

    def write_check(self, record: dict[str, Any]) -> None:
        """``check.json``: the data check made before training (``sightline.health``)."""
        atomic_write_json(self.files.check, record, root=self.path)

    def write_tracking(self, tracker: str, record: dict[str, Any]) -> None:
        """``tracking.json``: where ``tracker`` ("mlflow", "tensorboard") logs the run, beside
        the other trackers' records."""
        from sightline.run.tracking import read_tracking  # unreadable or a link: made anew

        records = read_tracking(self.path)
        atomic_write_json(self.files.tracking, {**records, tracker: record}, root=self.path)

    # ------------------------------------------------------------------ views
    def write_plot(self, name: str, image: bytes) -> Path:
        """``plots/<name>`` (a PNG or SVG file's bytes); returns its path."""
        path = self.files.plot(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, image, self.path)
        return path

    def write_inspection(self, image: str, name: str, figure: bytes) -> Path:
        """``inspect/<image>/<name>``: a figure of ``sightline inspect``; returns its path."""
        path = inside(self.path, self.files.inspection(image, name))  # no "..", no link
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, figure, self.path)
        return path

    def write_plot_json(self, name: str, record: Any) -> Path:
        path = self.files.plot(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, record, root=self.path)
        return path

    def write_report(self, html: str, path: str | Path | None = None) -> Path:
        """``report.html`` (or ``path``, a file of the caller's choosing)."""
        out = Path(path) if path else self.files.report
        atomic_write_bytes(out, html.encode("utf-8"), self.path if path is None else None)
        return out
