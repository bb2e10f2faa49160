"""What prediction answers: a ``Prediction`` per image and the ``PredictionReport`` of a batch,
written as the CLI's table, JSON or CSV; and ``save_seen``, the images the model saw.

Every face shows the same answer from these: the CLI prints them, ``Run.predict_files`` returns
them, the server turns them into its JSON rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

UNKNOWN = "unknown"  # the answer for an image unlike every class (infer/ood.py)


@dataclass
class Prediction:
    path: str
    index: int
    label: str
    confidence: float
    top: list[tuple[str, float]]
    probabilities: list[float] = field(repr=False)
    seen: torch.Tensor | None = field(default=None, repr=False)  # uint8 (C,H,W): what the model saw
    note: str | None = None  # e.g. no object stood out, so the whole photo was used
    ood_score: float | None = None  # higher: less like the training data (infer/ood.py)
    unknown: bool = False  # over the threshold: ``label`` is "unknown", ``closest`` the class
    closest: str | None = None  # the most probable class, whether or not it is the answer

    @property
    def shown_label(self) -> str:
        return f"{UNKNOWN} (closest: {self.closest})" if self.unknown else self.label


@dataclass
class PredictionReport:
    predictions: list[Prediction]
    skipped: list[tuple[str, str]]  # (input, reason)

    def to_table(self) -> str:
        if not self.predictions:
            return "(no predictions)"
        w = max(4, *(len(p.path) for p in self.predictions))
        lw = max(5, *(len(p.shown_label) for p in self.predictions))
        lines = [f"{'file':<{w}}  {'label':<{lw}}  confidence  next"]
        for p in self.predictions:
            rest = ", ".join(f"{lab} {prob:.1%}" for lab, prob in p.top[1:])
            note = f"  ({p.note})" if p.note else ""
            line = f"{p.path:<{w}}  {p.shown_label:<{lw}}  {p.confidence:10.1%}  {rest}{note}"
            lines.append(line)
        if any(p.unknown for p in self.predictions):
            lines.append(
                f"{UNKNOWN}: unlike every class the model was trained on (its score over the "
                "threshold); the confidence is the closest class's"
            )
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "predictions": [
                    {
                        "path": p.path,
                        "label": p.label,
                        "index": p.index,
                        "confidence": p.confidence,
                        "top": [{"label": lab, "probability": prob} for lab, prob in p.top],
                        **({"note": p.note} if p.note else {}),
                        **(
                            {"ood_score": p.ood_score, "unknown": p.unknown, "closest": p.closest}
                            if p.ood_score is not None
                            else {}
                        ),
                    }
                    for p in self.predictions
                ],
                "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            },
            indent=2,
        )

    def to_csv(self) -> str:
        """One row per predicted file; skipped files are not rows (they go to stderr / JSON)."""
        k = max((len(p.top) for p in self.predictions), default=1)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["path", "label", "confidence"]
        for i in range(2, k + 1):
            header += [f"label{i}", f"p{i}"]
        scored = any(p.ood_score is not None for p in self.predictions)
        writer.writerow(header + (["closest", "ood_score"] if scored else []))
        for p in self.predictions:
            row: list[object] = [p.path, p.label, f"{p.confidence:.6f}"]
            for lab, prob in p.top[1:]:
                row += [lab, f"{prob:.6f}"]
            row += [""] * (len(header) - len(row))
            if scored:
                row += [p.closest, "" if p.ood_score is None else f"{p.ood_score:.4f}"]
            writer.writerow(row)
        return buf.getvalue().rstrip("\n")


def save_seen(report: PredictionReport, folder: str | os.PathLike, scale: int = 8) -> list[Path]:
    """Write each prediction's "what the model saw" image (enlarged ``scale`` times, pixels kept
    sharp) as ``<folder>/<n>-<file stem>.png``; returns the paths, in prediction order."""
    from PIL import Image

    from sightline.fileio import atomic_write_bytes

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n, p in enumerate(report.predictions, 1):
        if p.seen is None:
            raise ValueError("predict_files(..., keep_seen=True) keeps the images save_seen writes")
        a = p.seen.permute(1, 2, 0).numpy()
        img = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        path = out / f"{n:04d}-{Path(p.path).stem}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written
