"""The run report: every picture of a run as PNG files, and one self-contained HTML page.

``write_report(run)`` takes the run's saved evaluation of its test split (or validation split
when there is no test split) — evaluating only when none is saved for the current model file —
draws the figures of the registry (``report.figures``) into ``<run>/plots/`` and writes
``<run>/report.html`` (``report.html``) with the images embedded, so it opens anywhere with no
network. The figures are drawn again only when the run changed since (``FIGURE_CACHE``).
Nothing is read or written through a symbolic link inside the run folder (``fileio.inside``):
a linked PNG is drawn again rather than embedded, a linked plots/ folder is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from sightline.errors import PathRefusedError
from sightline.fileio import (
    is_file_inside,
    read_bytes_inside,
    read_json_inside,
)
from sightline.report.figures import (
    FIGURES,
    RunFigures,
    RunView,
    caption,
    order,
    schedule_figure,
)
from sightline.report.html import SECTIONS, render_html
from sightline.run import Run, RunWriter
from sightline.run import evaluations as store
from sightline.run.layout import RunLayout

__all__ = [
    "FIGURES",
    "FIGURE_CACHE",
    "SECTIONS",
    "RunFigures",
    "RunView",
    "cached_figures",
    "caption",
    "order",
    "render_html",
    "run_figures",
    "save_run_figures",
    "schedule_figure",
    "write_report",
]


def run_figures(
    run: Run,
    data=None,
    metrics=None,
    rows: int = 5,
    cols: int = 5,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> RunFigures:
    """Draw every figure of the registry that ``run`` has (needs its dataset; loaded again when
    not given). ``metrics`` from an evaluation of the same split just done (as ``sightline
    train`` does) saves evaluating twice."""
    view = RunView(run, data, metrics, rows=rows, cols=cols, seed=seed, on_progress=on_progress)
    metrics, images = view.results
    view.say("Drawing the figures ...")
    out = RunFigures(
        metrics=metrics, split=view.split, sizes={k: len(v) for k, v in view.data.splits().items()}
    )
    for name, spec in FIGURES.items():
        fig = spec.draw(view)
        if fig is not None:
            out.figures[name] = fig
    out.example = {
        "label": run.classes[int(images.labels[0])],
        "predicted": view.inspection.predicted,
        "stats": view.inspection.stats,
    }
    return out


def save_run_figures(
    run: Run, figs: RunFigures, folder: Path | None = None, fmt: str = "png"
) -> dict[str, Path]:
    from sightline.plots import figure_bytes, figure_format, save_figure

    names = {name: f"{name}.{fmt}" for name in figs.figures}
    if folder is None:  # the run's plots/: through its writer, never through a link
        writer = RunWriter(run.path)
        for file in names.values():
            figure_format(file)  # a format other than png/svg fails before anything is written
        paths = {
            name: writer.write_plot(names[name], figure_bytes(fig, fmt))
            for name, fig in figs.figures.items()
        }
    else:
        paths = {
            name: save_figure(fig, Path(folder) / names[name]) for name, fig in figs.figures.items()
        }
    if fmt == "png":
        figs.files.update(paths)
    return paths


# ----------------------------------------------------------------------------- figure cache
FIGURE_CACHE = "figures.json"  # in <run>/plots/: what the PNGs were drawn from


def _figure_state(run: Run, split: str) -> str:
    """A fingerprint of everything the figures show: evaluated model, history, status, config."""
    from sightline._version import __version__

    record = store.read_evaluation(run.path, store.source_key("split", split)) or {}
    metrics_csv = RunLayout(run.path).metrics
    parts = [
        __version__,
        split,
        record.get("model_sha256"),
        record.get("count"),
        run.status,
        run.config,
        read_bytes_inside(run.path, metrics_csv).decode()
        if is_file_inside(run.path, metrics_csv)
        else "",
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _file_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def remember_figures(run: Run, figs: RunFigures) -> None:
    RunWriter(run.path).write_plot_json(
        FIGURE_CACHE,
        {
            "state": _figure_state(run, figs.split),
            "split": figs.split,
            "sizes": figs.sizes,
            "example": figs.example,
            "files": {name: [p.name, *_file_stamp(p)] for name, p in figs.files.items()},
        },
    )


def cached_figures(run: Run) -> RunFigures | None:
    """The saved figures and the numbers the page needs, when they are of the run as it is now."""
    from sightline.infer.metrics import compute_metrics

    try:
        cache = read_json_inside(run.path, RunLayout(run.path).plot(FIGURE_CACHE))
        if cache["state"] != _figure_state(run, cache["split"]):
            return None
        files = {name: RunLayout(run.path).plot(f) for name, (f, *stamp) in cache["files"].items()}
        if not all(is_file_inside(run.path, p) for p in files.values()):
            return None  # a link (or a name leaving plots/) is drawn again, never embedded
        if any(_file_stamp(files[name]) != stamp for name, (_, *stamp) in cache["files"].items()):
            return None  # a PNG was drawn over (e.g. by `sightline plot`) since
        saved = store.load_logits(run.path, store.source_key("split", cache["split"]))
    except (OSError, ValueError, KeyError, TypeError, PathRefusedError):
        return None
    if saved is None:
        return None
    return RunFigures(
        metrics=compute_metrics(saved[0], saved[1], run.classes),
        split=cache["split"],
        example=cache["example"],
        files=files,
        sizes=cache["sizes"],
    )


def write_report(
    run: Run | str | Path,
    data=None,
    path: str | Path | None = None,
    metrics=None,
    on_progress: Callable[[str], None] | None = None,
    redraw: bool = False,
) -> Path:
    """Figures into ``<run>/plots/`` and a self-contained ``<run>/report.html``; returns its path.

    The figures are drawn again only when the run changed since they were drawn (model file,
    evaluation, history, status) or a PNG was replaced — or with ``redraw=True``.
    ``on_progress`` gets a line of text at each stage (loading, evaluating, drawing, writing).
    """
    say = on_progress or (lambda text: None)
    run = run if isinstance(run, Run) else Run(Path(run))
    figs = None if redraw else cached_figures(run)
    if figs is not None:
        say(
            f"Figures in {run.path / 'plots'} are current: reusing them (redraw=True draws them again)"
        )
    else:
        if data is None and run.data is None:
            say(f"Loading {run.config['data'].get('name_or_path')} ...")
        figs = run_figures(run, data, metrics, on_progress=say)
        say(f"Saving {len(figs.figures)} figures to {run.path / 'plots'} ...")
        save_run_figures(run, figs)
        remember_figures(run, figs)
    # the run's own report.html through its writer (no link there), or the caller's file
    return RunWriter(run.path).write_report(render_html(run, figs), path)
