"""A study's trials as a table, its best, and its figures: the optimisation history and the
parameters' importance (Optuna's own matplotlib plots, saved as the run report's figures are)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from sightline.fileio import atomic_write_bytes, atomic_write_json

FIGURES = {"history.png": "plot_optimization_history", "importance.png": "plot_param_importances"}


def trial_row(t: Any) -> dict[str, Any]:
    """One trial as the faces show it."""
    seconds = t.user_attrs.get("seconds")
    if seconds is None and t.datetime_start and t.datetime_complete:
        seconds = round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
    return {"number": t.number, "state": t.state.name, "value": t.value,
            "params": dict(t.params), "run": t.user_attrs.get("run"), "seconds": seconds}  # fmt: skip


def summary(study: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(every trial, the best finished one or None)."""
    trials = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    done = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    best = max(done, key=lambda t: (t["value"], -t["number"])) if done else None
    return trials, best


def table(trials: list[dict[str, Any]]) -> str:
    """The trials as aligned text lines (``sightline tune --show``)."""
    names = sorted({k for t in trials for k in t["params"]})
    head = ["trial", "state", "val_acc", "seconds", *names]
    rows = [head]
    for t in trials:
        value = "" if t["value"] is None else f"{t['value']:.4f}"
        seconds = "" if t["seconds"] is None else f"{t['seconds']:.0f}"
        rows.append([str(t["number"]), t["state"].lower(), value, seconds,
                     *(_short(t["params"].get(n)) for n in names)])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)  # fmt: skip


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "" if v is None else str(v)


def write_figures(study: Any, folder: Path) -> Path:
    """``history.png`` and ``importance.png`` (when two trials or more finished) and
    ``study.json`` (the trials and best) into ``folder``; returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    folder.mkdir(parents=True, exist_ok=True)
    trials, best = summary(study)
    finished = sum(1 for t in trials if t["state"] == "COMPLETE")
    for name, plot in FIGURES.items():
        if finished < (2 if name == "importance.png" else 1):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
            try:
                axes = getattr(optuna_plots, plot)(study)
            except (ValueError, RuntimeError):  # e.g. importance with one value per parameter
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(7, 4)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        plt.close(figure)
        atomic_write_bytes(folder / name, buffer.getvalue())
    atomic_write_json(folder / "study.json", {"study": study.study_name, "trials": trials,
                                              "best": best})  # fmt: skip
    return folder
