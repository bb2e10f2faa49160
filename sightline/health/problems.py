"""What a check found: one ``Problem`` per finding, in one ``HealthReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Every kind of finding, most serious first: the order of the report's groups.
KINDS = (
    "corrupt",  # cannot be decoded: never trained on
    "leak",  # a validation/test image that is a copy of a training image: the score flatters
    "duplicate",  # the same pixels twice (across classes: one image, two labels)
    "near-duplicate",  # the same picture resized, re-encoded or recoloured
    "label",  # another class is strongly preferred by models that never saw the image
    "small-class",  # too few images to learn or validate a class
    "imbalance",  # one class far larger than another
    "odd-size",  # a size, shape or colour mode unlike the rest
    "outlier",  # like none of the classes
)


@dataclass
class Problem:
    """One finding. ``paths`` are relative to the checked folder (built-in datasets:
    ``split/index``); ``score`` ranks problems of one kind, higher first."""

    kind: str
    paths: list[str]
    message: str
    score: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        where: dict[str, Any] = (
            {"path": self.paths[0]} if len(self.paths) == 1 else {"paths": self.paths}
        )
        return {"kind": self.kind, **where, "message": self.message,
                "score": round(self.score, 6), **self.details}  # fmt: skip


@dataclass
class HealthReport:
    """A check's findings for one dataset (a folder, or a built-in dataset by name)."""

    source: str
    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> readable images
    problems: list[Problem]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    labels: dict[str, Any] | None = None  # the label search's judgement (label_quality.py)
    kept: list[Problem] = field(default_factory=list)  # findings a person kept as they are
    digests: dict[str, str] = field(default_factory=dict, repr=False)  # path -> pixels' digest

    @property
    def images(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def of_kind(self, kind: str) -> list[Problem]:
        return [p for p in self.problems if p.kind == kind]

    def summary(self) -> dict[str, int]:
        """kind -> number of findings, for the kinds found, in ``KINDS`` order."""
        found = {k: len(self.of_kind(k)) for k in KINDS}
        return {k: n for k, n in found.items() if n}

    def kept_paths(self) -> set[str]:
        return {p for problem in self.kept for p in problem.paths}

    def flagged_paths(self, kinds: tuple[str, ...] = KINDS) -> set[str]:
        return {p for problem in self.problems if problem.kind in kinds for p in problem.paths}

    def brief(self) -> list[str]:
        """A few lines for the start of a training: what was found, and what it costs."""
        summary = self.summary()
        where = f"`sightline check {self.source}`"
        if not summary:
            return [f"data check: no copies, leaks or odd images among {self.images:,} images "
                    f"({where} also looks for images filed in the wrong class)"]  # fmt: skip
        found = []
        for kind, n in summary.items():
            conflicts = sum(bool(p.details.get("conflict")) for p in self.of_kind(kind))
            found.append(
                f"{n:,} {kind}" + (f" ({conflicts:,} under two classes)" if conflicts else "")
            )
        lines = [f"data check of {self.images:,} images: {', '.join(found)}"]
        leaks = self.of_kind("leak")
        if leaks:
            splits = sorted({p.details.get("split", "test") for p in leaks})
            lines.append(f"warning: {len(leaks):,} {'/'.join(splits)} images are copies of training "
                         "images: their accuracy flatters the model")  # fmt: skip
        lines.append(f"{where} lists them (and looks for images filed in the wrong class)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "images": self.images,
            "classes": self.classes,
            "counts": self.counts,
            "summary": self.summary(),
            "problems": [p.to_dict() for p in self.problems],
            "notes": self.notes,
            "labels": self.labels,
            "kept": [p.to_dict() for p in self.kept],
            "seconds": round(self.seconds, 3),
        }


def ordered(problems: list[Problem]) -> list[Problem]:
    """Grouped by kind in ``KINDS`` order, the highest score first within a kind."""
    rank = {k: i for i, k in enumerate(KINDS)}
    return sorted(problems, key=lambda p: (rank[p.kind], -p.score, p.paths))
