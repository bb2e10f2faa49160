"""The run report: every picture of a run as PNG files, and one self-contained HTML page.

``write_report(run)`` takes the run's saved evaluation of its test split (or validation split
when there is no test split) — evaluating only when none is saved for the current model file —
renders the figures into ``<run>/plots/`` and writes
``<run>/report.html`` with the images embedded (base64), inline CSS, and no external assets, so it
opens anywhere with no network.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sightline.fileio import atomic_write_bytes, atomic_write_json, read_json
from sightline.run import Run
from sightline.run import evaluations as store
from sightline.run.layout import RunLayout

SECTIONS = (
    "curves",
    "metrics",
    "confusion",
    "predictions",
    "top-losses",
    "activations",
    "data",
    "config",
    "summary",
)


@dataclass
class RunFigures:
    """Figures of one run, by file stem, plus the numbers the report prints."""

    figures: dict[str, Any] = field(default_factory=dict)
    metrics: Any = None
    split: str = "test"
    example: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # name → PNG on disk, once saved
    sizes: dict[str, int] = field(default_factory=dict)  # images per split


def _eval_split(data) -> str:
    splits = data.splits()
    for name in ("test", "val"):
        if name in splits:
            return name
    from sightline.errors import RunError

    raise RunError(
        f"{data.name} has no test or validation split to report on (it has: {', '.join(splits)})"
    )


def run_figures(
    run: Run,
    data=None,
    metrics=None,
    rows: int = 5,
    cols: int = 5,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> RunFigures:
    """Render every figure of ``run`` (needs its dataset; loaded again when not given).

    ``metrics`` from an evaluation of the same split just done (as ``sightline train`` does)
    saves evaluating twice.
    """
    from sightline import inspect as insp
    from sightline import plots

    data = data if data is not None else run.load_data()
    pre = run.preprocess
    classes = run.classes
    dark = pre.dark_background
    split = _eval_split(data)
    images = data.splits()[split]
    if metrics is None or metrics.count != len(images) or metrics.logits is None:
        if on_progress:
            on_progress(
                f"Reading the {split} predictions (evaluating only if none are saved for this model) ..."
            )
        metrics, images = run.split_results(split, data=data)
    if on_progress:
        on_progress("Drawing the figures ...")
    out = RunFigures(
        metrics=metrics, split=split, sizes={k: len(v) for k, v in data.splits().items()}
    )
    status = run.status
    history = run.history
    if history:
        stopped = status.get("epochs_done") if status.get("status") == "early_stopped" else None
        out.figures["curves"] = plots.plot_curves(
            history, best_epoch=status.get("best_epoch"), stopped_epoch=stopped
        )
    train = data.train
    out.figures["samples"] = plots.plot_samples(
        train.images,
        train.labels,
        classes,
        rows,
        cols,
        random=True,
        seed=seed,
        dark_background=dark,
    )
    out.figures["confusion"] = plots.plot_confusion(metrics.confusion, classes)
    out.figures["confusion-normalized"] = plots.plot_confusion(
        metrics.confusion, classes, normalize=True
    )
    out.figures["per-class-accuracy"] = plots.plot_per_class_accuracy(metrics.confusion, classes)
    probs, labels = metrics.probabilities, images.labels
    out.figures["predictions"] = plots.plot_predictions(
        images.images, labels, probs, classes, rows, cols, dark_background=dark
    )
    out.figures["mistakes"] = plots.plot_predictions(
        images.images, labels, probs, classes, rows, cols, only_mistakes=True, dark_background=dark
    )
    out.figures["probabilities"] = plots.plot_probability_grid(
        images.images, labels, probs, classes, rows=5, cols=3, dark_background=dark
    )
    out.figures["top-losses"] = plots.plot_top_losses(
        images.images, labels, probs, metrics.losses, classes, k=16, dark_background=dark
    )
    out.figures["schedule"] = schedule_figure(run, len(train))
    # Looking inside: the first test image, every layer, the first conv filters, saliency.
    model = run.load_model()
    first = images.images[0]
    inspection = insp.inspect_image(model, pre, first, classes=classes)
    out.example = {
        "label": classes[int(labels[0])],
        "predicted": inspection.predicted,
        "stats": inspection.stats,
    }
    out.figures["activations"] = insp.plot_activations(inspection.outputs, max_channels=16)
    out.figures["saliency"] = insp.plot_saliency(
        first, inspection.saliency, title=f"true {classes[int(labels[0])]}"
    )
    if insp.conv_layers(model):
        out.figures["filters"] = insp.plot_filters(model)
    elif any(isinstance(m, torch.nn.Linear) for m in model.modules()):
        out.figures["dense-weights"] = insp.plot_dense_weights(model, pre.input_shape)
    return out


def schedule_figure(run: Run, train_size: int):
    """The run's learning-rate schedule, from the step plan training used (config.plan_steps)."""
    from sightline import plots
    from sightline.plan.config import TrainConfig, plan_steps

    cfg = TrainConfig.from_dict(run.config["train"])
    plan = plan_steps(run.status.get("train_size") or train_size, cfg)
    return plots.plot_lr_schedule(
        cfg.lr,
        cfg.schedule,
        cfg.warmup,
        cfg.epochs,
        plan.steps_per_epoch,
        stop_step=plan.stop_step if plan.stop_step < plan.total_steps else None,
    )


def save_run_figures(
    run: Run, figs: RunFigures, folder: Path | None = None, fmt: str = "png"
) -> dict[str, Path]:
    from sightline.plots import save_figure

    folder = folder or RunLayout(run.path).plots
    paths = {name: save_figure(fig, folder / f"{name}.{fmt}") for name, fig in figs.figures.items()}
    if fmt == "png":
        figs.files.update(paths)
    return paths


def _png(figs: RunFigures, name: str) -> str:
    """The figure as a data: URI, from its saved PNG when there is one (rendering is the slow part)."""
    if name in figs.files:
        data = figs.files[name].read_bytes()
    else:
        buf = io.BytesIO()
        figs.figures[name].savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(figs: RunFigures, name: str, alt: str) -> str:
    if name not in figs.figures and name not in figs.files:
        return ""
    return f'<figure><img src="{_png(figs, name)}" alt="{html.escape(alt)}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(rows: list[list[Any]], header: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _value(v: Any) -> str:
    """A config value as a person reads it: no JSON quotes, no null."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value(x) for x in v) if v else "—"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_value(x)}" for k, x in v.items()) if v else "—"
    return str(v)


def _options(d: dict[str, Any], skip: tuple[str, ...] = ()) -> list[list[str]]:
    return [[k.replace("_", " "), _value(v)] for k, v in d.items() if k not in skip]


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em auto;padding:0 2em;color:#222;max-width:1600px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.sub{color:#555;margin-top:0}.kpis{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;min-width:9em}.kpi b{display:block;font-size:1.5em}
.kpi span{color:#666;font-size:.85em}.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.row>*{flex:1 1 420px;min-width:0}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{color:#666;font-size:.9em}
details summary{cursor:pointer;color:#1f77b4;margin:.5em 0}nav a{margin-right:1em}"""
LEGEND = (
    "blue = right (or the true class), red = wrong"  # the one colour convention of every caption
)


def _kpis(run: Run, figs: RunFigures) -> str:
    m, status, history = figs.metrics, run.status, run.history
    cards = [
        (f"{m.accuracy:.2%}", f"{figs.split} accuracy"),
        (f"{m.loss:.4f}", f"{figs.split} loss"),
    ]
    cards += [(f"{v:.2%}", f"{k.replace('top', 'top-')} accuracy") for k, v in m.top_k.items()]
    cards.append((f"{m.macro_f1:.4f}", "macro F1"))
    if status.get("best_value") is not None:
        cards.append(
            (
                f"{status['best_value']:.4f}",
                f"best {status.get('monitor')} (epoch {status.get('best_epoch')})",
            )
        )
    seconds = sum(r.get("time") or 0 for r in history)
    cards.append((f"{len(history)}", f"epochs ({seconds:.0f} s of training)"))
    cards.append((f"{m.count:,}", f"{figs.split} images"))
    return (
        "<div class='kpis'>"
        + "".join(
            f"<div class='kpi'><b>{html.escape(v)}</b><span>{html.escape(t)}</span></div>"
            for v, t in cards
        )
        + "</div>"
    )


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
        metrics_csv.read_text() if metrics_csv.is_file() else "",
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _file_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def remember_figures(run: Run, figs: RunFigures) -> None:
    atomic_write_json(
        RunLayout(run.path).plot(FIGURE_CACHE),
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
        cache = read_json(RunLayout(run.path).plot(FIGURE_CACHE))
        if cache["state"] != _figure_state(run, cache["split"]):
            return None
        files = {name: RunLayout(run.path).plot(f) for name, (f, *stamp) in cache["files"].items()}
        if any(_file_stamp(files[name]) != stamp for name, (_, *stamp) in cache["files"].items()):
            return None  # a PNG was drawn over (e.g. by `sightline plot`) since
        saved = store.load_logits(run.path, store.source_key("split", cache["split"]))
    except (OSError, ValueError, KeyError, TypeError):
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


# ----------------------------------------------------------------------------- the page
def render_html(run: Run, figs: RunFigures) -> str:
    """Results first (headline numbers, curves, per-class metrics, confusion, predictions, top
    losses, the inside of the network), then the data and how the run was configured."""
    from sightline.models.summary import summary
    from sightline.plots import most_confused
    from sightline.run import status_words

    m, cfg, ex = figs.metrics, run.config, figs.example
    nav = " ".join(f"<a href='#{s}'>{s.replace('-', ' ')}</a>" for s in SECTIONS)
    parts = [
        f"<h1>{html.escape(run.name)}</h1>",
        f"<p class='sub'>{html.escape(cfg['model']['name'])} on {html.escape(str(cfg['data'].get('name_or_path')))} · "
        f"{html.escape(status_words(run.status))} · created {html.escape(cfg.get('created', ''))}</p>",
        _kpis(run, figs),
        f"<nav>{nav}</nav>",
    ]
    parts.append('<h2 id="curves">Training curves</h2>')
    parts.append(
        _img(figs, "curves", "loss and accuracy per epoch: train (blue) vs validation (orange)")
    )
    hist = [
        [
            r["epoch"],
            f"{r['loss']:.4f}",
            f"{r['accuracy']:.4f}",
            _value(r.get("val_loss")),
            _value(r.get("val_accuracy")),
            f"{r['time']:.0f}",
        ]
        for r in run.history
    ]
    parts.append(
        "<details><summary>per-epoch numbers</summary>"
        + _table(hist, ["epoch", "loss", "accuracy", "val loss", "val accuracy", "seconds"])
        + "</details>"
    )
    parts.append(f'<h2 id="metrics">Metrics on the {figs.split} split</h2><div class="row"><div>')
    per_class = [
        [
            m.classes[i],
            f"{m.precision[i]:.4f}",
            f"{m.recall[i]:.4f}",
            f"{m.f1[i]:.4f}",
            f"{m.support[i]:,}",
        ]
        for i in m.present
    ]
    per_class.append(
        [
            "macro average",
            f"{m.macro_precision:.4f}",
            f"{m.macro_recall:.4f}",
            f"{m.macro_f1:.4f}",
            f"{sum(m.support):,}",
        ]
    )
    parts.append(_table(per_class, ["class", "precision", "recall", "F1", "images"]))
    if m.absent_classes:
        parts.append(
            f"<p>Not in this split (left out of the averages): {html.escape(', '.join(m.absent_classes))}</p>"
        )
    parts.append(
        "</div><div>"
        + _img(figs, "per-class-accuracy", "accuracy (recall) per class")
        + "</div></div>"
    )
    parts.append('<h2 id="confusion">Confusion matrix</h2>')
    pairs = most_confused(m.confusion, m.classes, k=5)
    if pairs:
        parts.append(
            "<p>Most confused: "
            + "; ".join(html.escape(f"{t} → {p} ({n})") for t, p, n in pairs)
            + "</p>"
        )
    parts.append(
        "<div class='row'>"
        + _img(figs, "confusion", "counts: rows true class, columns predicted")
        + _img(figs, "confusion-normalized", "share of each true class")
        + "</div>"
    )
    parts.append('<h2 id="predictions">Predictions</h2>')
    parts.append(
        "<div class='row'>"
        + _img(figs, "predictions", f"predicted (confidence) (true): {LEGEND}")
        + _img(figs, "mistakes", f"mistakes only: {LEGEND}")
        + "</div>"
    )
    parts.append(_img(figs, "probabilities", f"class probabilities: {LEGEND}"))
    parts.append('<h2 id="top-losses">Top losses</h2>')
    parts.append(
        _img(figs, "top-losses", f"the images the model got most confidently wrong: {LEGEND}")
    )
    parts.append('<h2 id="activations">Inside the network</h2>')
    parts.append(
        f"<p>The first {figs.split} image: true {html.escape(str(ex.get('label')))}, predicted "
        f"{html.escape(str(ex.get('predicted')))}.</p>"
    )
    parts.append(
        "<div class='row'>"
        + _img(figs, "saliency", "saliency: where the evidence for the prediction is")
        + _img(figs, "filters", "the first convolutional layer's filters")
        + _img(figs, "dense-weights", "the first dense layer's weights as images")
        + "</div>"
    )
    parts.append(_img(figs, "activations", "the output of every layer for this image"))
    parts.append('<h2 id="data">Data</h2>')
    sizes = ", ".join(f"{k} {v:,}" for k, v in figs.sizes.items())
    parts.append(
        f"<p>{html.escape(str(cfg['data'].get('name_or_path')))}: {len(run.classes)} classes, {html.escape(sizes)}.</p>"
    )
    parts.append(_img(figs, "samples", "training images with their labels"))
    parts.append('<h2 id="config">Configuration</h2><div class="row">')
    parts.append(
        "<div><h3>Training</h3>"
        + _table(_options(cfg["train"], ("extra",)), ["option", "value"])
        + "</div>"
    )
    parts.append(
        "<div><h3>Data</h3>"
        + _table(_options(cfg["data"]), ["option", "value"])
        + "<h3>Preprocessing</h3>"
        + _table(_options(run.preprocess.to_dict()), ["step", "value"])
        + "<h3>Model</h3>"
        + _table(
            _options({"name": cfg["model"]["name"], **cfg["model"].get("options", {})}),
            ["option", "value"],
        )
        + "</div></div>"
    )
    parts.append(_img(figs, "schedule", "the learning-rate schedule"))
    parts.append('<h2 id="summary">Model summary</h2>')
    parts.append(f"<pre>{html.escape(str(summary(run.load_model())))}</pre>")
    parts.append(
        f"<p style='color:#888'>Written by sightline on {time.strftime('%Y-%m-%d %H:%M')}.</p>"
    )
    body = "\n".join(p for p in parts if p)
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{html.escape(run.name)} · sightline report</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
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
    out = Path(path) if path else RunLayout(run.path).report
    atomic_write_bytes(out, render_html(run, figs).encode("utf-8"))
    return out
