"""The report's page: one self-contained HTML file (images embedded as base64, inline CSS, no
external assets), results first, then the data and how the run was configured. Its figures and
their captions come from the registry (``report.figures``)."""

from __future__ import annotations

import base64
import html
import io
import time
from typing import Any

from sightline.report.figures import RunFigures, caption
from sightline.run import Run

SECTIONS = (
    "curves",
    "metrics",
    "confusion",
    "calibration",
    "predictions",
    "top-losses",
    "activations",
    "data",
    "config",
    "summary",
)


def _png(figs: RunFigures, name: str) -> str:
    """The figure as a data: URI, from its saved PNG when there is one (rendering is the slow part)."""
    if name in figs.files:
        data = figs.files[name].read_bytes()
    else:
        buf = io.BytesIO()
        figs.figures[name].savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(figs: RunFigures, name: str) -> str:
    """The figure ``name`` with its caption from the registry; nothing when the run has none."""
    if name not in figs.figures and name not in figs.files:
        return ""
    alt = html.escape(caption(name))
    return (
        f'<figure><img src="{_png(figs, name)}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'
    )


def _table(rows: list[list[Any]], header: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    table = f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class='scroll'>{table}</div>"  # a wide table scrolls in its box on a phone


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
details summary{cursor:pointer;color:#1f77b4;margin:.5em 0}nav a{margin-right:1em}
.scroll{overflow-x:auto;max-width:100%}
@media(max-width:600px){body{padding:0 .8em}.row>*{flex-basis:100%}.kpi{min-width:0;flex:1 1 40%}}"""


def _calibration_text(m: Any, skipped: str | None = None) -> str:
    """``skipped``: why training left the run uncalibrated (its calibration record says)."""
    c = m.calibration
    if c is None or not m.count:
        return "No images to measure the calibration on."
    text = (f"How far the probabilities can be trusted: expected calibration error {c.ece:.2%} "
            f"(0 is perfect; perfectly calibrated probabilities would still show "
            f"{c.ece_floor:.2%} on {m.count:,} images, from sampling alone), NLL {c.nll:.4f}, "
            f"Brier score {c.brier:.4f}.")  # fmt: skip
    if m.uncalibrated is not None:
        u = m.uncalibrated
        return text + (f" The run's {m.calibrator.method} calibration, fitted on its validation "
                       f"images, brought them from ECE {u.ece:.2%}, NLL {u.nll:.4f}, Brier "
                       f"{u.brier:.4f}.")  # fmt: skip
    if skipped:
        return text + f" Not calibrated: calibration was skipped ({skipped})."
    return text + " Not calibrated: `sightline calibrate RUN` fits its calibration."


def _kpis(run: Run, figs: RunFigures) -> str:
    m, status, history = figs.metrics, run.status, run.history
    cards = [
        (f"{m.accuracy:.2%}", f"{figs.split} accuracy"),
        (f"{m.loss:.4f}", f"{figs.split} loss"),
    ]
    cards.append((f"{m.balanced_accuracy:.2%}", f"{figs.split} balanced accuracy"))
    cards += [(f"{v:.2%}", f"{k.replace('top', 'top-')} accuracy") for k, v in m.top_k.items()]
    cards.append((f"{m.macro_f1:.4f}", "macro F1"))
    if m.calibration is not None and m.count:
        cards.append((f"{m.calibration.ece:.2%}", "calibration error (ECE)"))
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


# ----------------------------------------------------------------------------- the page
def _data_check(run: Run, shown: int = 10) -> str:
    """The data check made before training (``sightline check``, less the label search)."""
    from sightline.run.copies import data_check

    record = data_check(run.path)
    if record is None:
        return ""
    out = ['<h3 id="data-check">Data check before training</h3>']
    summary = record.get("summary", {})
    if not summary:
        return out[0] + f"<p>No copies, leaks or odd images among {record['images']:,} images.</p>"
    out.append(_table([[k, f"{n:,}"] for k, n in summary.items()], ["finding", "count"]))
    clean = (run.evaluation or {}).get("without_copies")
    if clean:
        out.append(f"<p>Test accuracy on the {clean['count']:,} test images that are not copies "
                   f"of training images: {clean['accuracy']:.2%}.</p>")  # fmt: skip
    rows = [[p["kind"], " = ".join(p.get("paths") or [p["path"]]), p["message"]]
            for kind in summary for p in [q for q in record["problems"] if q["kind"] == kind][:shown]]  # fmt: skip
    out.append(_table(rows, ["finding", "files", "what"]))
    out.append(f"<p>All of them: <code>sightline check {html.escape(str(record['source']))}</code> "
               "(it also looks for images filed in the wrong class; <code>--fix</code> to fix).</p>")  # fmt: skip
    return "".join(out)


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
    parts.append(_img(figs, "curves"))
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
    parts.append("</div><div>" + _img(figs, "per-class-accuracy") + "</div></div>")
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
        + _img(figs, "confusion")
        + _img(figs, "confusion-normalized")
        + "</div>"
    )
    parts.append('<h2 id="calibration">Calibration</h2>')
    skipped = (run.metadata().get("calibration") or {}).get("skipped")
    parts.append(f"<p>{html.escape(_calibration_text(m, skipped))}</p>")
    parts.append(_img(figs, "reliability"))
    parts.append('<h2 id="predictions">Predictions</h2>')
    parts.append(
        "<div class='row'>" + _img(figs, "predictions") + _img(figs, "mistakes") + "</div>"
    )
    parts.append(_img(figs, "probabilities"))
    parts.append('<h2 id="top-losses">Top losses</h2>')
    parts.append(_img(figs, "top-losses"))
    parts.append('<h2 id="activations">Inside the network</h2>')
    parts.append(
        f"<p>The first {figs.split} image: true {html.escape(str(ex.get('label')))}, predicted "
        f"{html.escape(str(ex.get('predicted')))}.</p>"
    )
    parts.append(
        "<div class='row'>"
        + _img(figs, "saliency")
        + _img(figs, "filters")
        + _img(figs, "dense-weights")
        + "</div>"
    )
    parts.append(_img(figs, "activations"))
    parts.append('<h2 id="data">Data</h2>')
    sizes = ", ".join(f"{k} {v:,}" for k, v in figs.sizes.items())
    parts.append(
        f"<p>{html.escape(str(cfg['data'].get('name_or_path')))}: {len(run.classes)} classes, {html.escape(sizes)}.</p>"
    )
    parts.append(_img(figs, "samples"))
    parts.append(_data_check(run))
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
    parts.append(_img(figs, "schedule"))
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
