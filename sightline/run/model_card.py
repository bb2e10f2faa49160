"""``MODEL_CARD.md``: what a run's exported model is, how well it does and what was not tested,
for whoever receives the model without sightline (``sightline export --format package``).

Everything in it is read from the run (its config, its saved evaluations, the checkpoint's
preprocessing, calibration and "none of these" record) and from the export report; nothing is
estimated here, and what the run does not know is said as not measured.
"""

from __future__ import annotations

from typing import Any

# ``run``: a ``sightline.run.Run`` (not imported: Run.export calls into here)
Run = Any
Report = Any  # run/exports.py's ExportReport


def _pct(x: Any) -> str:
    return f"{100 * x:.2f} %" if isinstance(x, (int, float)) else "not measured"


def _options(options: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) if options else "default options"


def _numbers(values: Any) -> str:
    return ", ".join(f"{v:.4g}" for v in values) if values else "?"


def _data_name(name: Any) -> str:
    """A built-in dataset's name, or a folder's own name (never the path on this machine)."""
    text = str(name or "?")
    return (
        text
        if "/" not in text and "\\" not in text
        else text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    )


def _evaluation(run: Run) -> tuple[str, dict[str, Any] | None]:
    """(what it is, the record) of the run's test evaluation, else any it has."""
    records = run.evaluations()
    for key in ("test", *records):
        if key in records:
            return key, records[key]
    return "", None


def model_card(run: Run, report: Report, meta: dict[str, Any]) -> str:
    """The card's Markdown. ``meta``: the export's metadata (classes, preprocess, ood)."""
    config = run.config
    model, data, train = config.get("model", {}), config.get("data", {}), config.get("train", {})
    classes: list[str] = list(meta["classes"])
    p = meta["preprocess"]
    source, ev = _evaluation(run)
    ood = meta.get("ood") or {}
    lines = [
        f"# Model card: {run.name}",
        "",
        f"An image classifier of {len(classes)} classes trained with sightline "
        f"{config.get('sightline_version', '')} on {config.get('created', 'an unknown date')}.",
        "",
        "## Model",
        f"- Architecture: `{model.get('name', '?')}` ({_options(model.get('options'))}).",
        f"- Checkpoint: {report.which} (epoch {meta.get('epoch', '?')}), sha256 "
        f"`{meta.get('source_sha256', '?')[:16]}…`.",
        f"- Training: {train.get('epochs', '?')} epochs, batch {train.get('batch_size', '?')}, "
        f"{train.get('optimizer', '?')} at lr {train.get('lr', '?')}.",
        "",
        "## Data",
        f"- Trained on: `{_data_name(data.get('name_or_path'))}`.",
        "- Classes: " + ", ".join(f"`{c}`" for c in classes) + ".",
        "",
        "## Input: what the app does, what the model does",
        f"- The model takes uint8 images, N x {p['channels']} x {p['size'][0]} x {p['size'][1]} "
        f"({'gray' if p['channels'] == 1 else 'RGB'}), input `images`"
        + (
            f"; the LiteRT file (.tflite) takes them channels last, 1 x {p['size'][0]} x "
            f"{p['size'][1]} x {p['channels']}, one at a time."
            if any(e.format.startswith("litert") for e in report.exports)
            else "."
        ),
        f"- The app: decode the image upright (EXIF), make it {'gray' if p['channels'] == 1 else 'RGB'}, "
        f"resize it ({p.get('resize', 'pad')}, {p.get('interpolation', 'bilinear')}) to "
        f"{p['size'][1]} x {p['size'][0]} px. `predict.py` beside this card does exactly that.",
        f"- Framing: `{p.get('fit', 'frame')}`"
        + (
            " (the whole image)."
            if p.get("fit", "frame") == "frame" and not p.get("dark_background")
            else " — the training images were framed around one object"
            + (" on a dark background" if p.get("dark_background") else "")
            + "; photos need the same framing (sightline's `Preprocess`) for the same answers."
        ),
        f"- Inside the model: normalisation (mean {_numbers(p.get('mean'))}, std {_numbers(p.get('std'))}, on 0-1 pixels)"
        + (", the mean with the mirrored image (flip TTA)" if p.get("flip_tta") else "")
        + ", calibrated logits (output `logits`; softmax gives the probabilities)"
        + (', and the "none of these" score (output `ood_score`).' if ood else "."),
        "",
        "## How well it does",
    ]
    if ev is None:
        lines.append("- Not evaluated: the run has no saved evaluation.")
    else:
        lines += [
            f"- On {ev.get('count', '?')} images ({source}: {ev.get('dataset') or ev.get('path') or source}): "
            f"accuracy {_pct(ev.get('accuracy'))}, balanced accuracy {_pct(ev.get('balanced_accuracy'))}, "
            f"macro F1 {_pct(ev.get('macro_f1'))}.",
            "",
            "| class | precision | recall | images |",
            "| --- | --- | --- | --- |",
            *(
                f"| {c.get('class')} | {_pct(c.get('precision'))} | {_pct(c.get('recall'))} | {c.get('support', '?')} |"
                for c in ev.get("per_class", [])
            ),
            "",
            "## Calibration",
            f"- Probabilities are calibrated ({(ev.get('calibrator') or {}).get('method', 'none')}): "
            f"expected calibration error {_pct(ev.get('ece'))} "
            f"(the network's own: {_pct((ev.get('uncalibrated') or {}).get('ece'))}).",
        ]
    lines += ["", '## "None of these"']
    if ood:
        rate = ev.get("unknown_rate") if ev else None
        lines.append(
            f"- An image whose `ood_score` is over {ood.get('threshold')} is unlike the training "
            f'images: answer "none of these" (the nearest class beside it). The threshold keeps '
            f"{_pct(ood.get('keep'))} of the held-out images"
            + (
                f"; {_pct(rate)} of the test images were answered unknown."
                if rate is not None
                else "."
            )
        )
    else:
        lines.append('- This model has no "none of these" score: every image gets a class.')
    lines += ["", "## The exported files", "", "| file | format | size | checked on | top-1 agreement with PyTorch | accuracy (PyTorch's) |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for e in report.exports:
        q = e.parity
        checked = f"{q.images} {q.source}" if q else e.runtime
        agree = _pct(q.top1_agreement) if q else "not run"
        acc = (
            f"{_pct(q.accuracy)} ({_pct(q.reference_accuracy)})"
            if q and q.accuracy is not None
            else "no labels"
        )
        lines.append(
            f"| {e.path.name} | {e.format} | {e.size_bytes / 1e6:.1f} MB | {checked} | {agree} | {acc} |"
        )
    lines += [
        "",
        "## Intended use, and what was not tested",
        f"- Sorting images into these {len(classes)} classes, images like the training data. The "
        "probabilities are calibrated on held-out images of the same data; on other kinds of "
        "images they are not.",
        "- Not tested: images from other sources, cameras or conditions than the training data "
        'beyond the "none of these" score; fairness across any groups of people; any use where a '
        "wrong answer causes harm without a person checking it.",
        "- Each export was checked on this machine only, in "
        + "; ".join(sorted({e.runtime for e in report.exports}))
        + ". Phones, other runtimes and other devices were not run.",
    ]
    return "\n".join(lines) + "\n"
