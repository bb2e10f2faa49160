"""The labelling loop on one dataset folder: what waits, what to label next and what the model
suggests, labels set (moves through the data-health journal: one Undo puts back the last change
of either), "not any class", accepting the confident suggestions, and the estimated accuracy as
labels grow. Every face (``sightline label``, the API, the Label page) goes through
``Labeller``; the model is refit whenever the labels changed (``labelling/model.py``): when
asked, or with ``background`` on a thread of its own as soon as a change is made, so that the
next question finds it fit."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sightline.errors import DataError
from sightline.fileio import atomic_write_json, inside, read_json
from sightline.health.fix import last_fix, relocate, undo_fix
from sightline.labelling import model as loop_model
from sightline.labelling import ranking
from sightline.labelling.features import STATE, FeatureMemo, Featurizer
from sightline.labelling.pool import Pool

CONFIDENT = 0.98  # calibrated probability at which "label the rest" may label an image
MIN_TO_ACCEPT = 10  # labelled images per class before any suggestion is accepted unseen
ACCEPT_LOW = 0.90  # and the estimated accuracy's lower bound (95 %) at least this
HISTORY = "history.json"
KIND = "labelled"  # of a journal's moves (the health fixes: "label" for a finding moved)
APART = "not any class"


@dataclass
class Suggestion:
    path: str  # relative to the dataset folder
    suggestion: str | None  # the class the model would give it (None: no model yet)
    probability: float | None  # calibrated
    probabilities: dict[str, float] = field(default_factory=dict)
    unlike: bool = False  # unlike anything labelled yet
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "suggestion": self.suggestion,
            "probability": None if self.probability is None else round(self.probability, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "unlike": self.unlike,
            "why": self.why,
        }


@dataclass
class State:
    """One refit: the folder as read, the features, and the model's answers (None: no model)."""

    pool: Pool
    classes: list[str]
    known: torch.Tensor  # unit-length features of the labelled images
    labels: torch.Tensor
    waiting: list[str]  # the readable waiting images, in the rows of ``pool_x``
    pool_x: torch.Tensor
    answers: loop_model.Answers | None
    unreadable: list[str]


class UnsureError(DataError):
    """Accepting suggestions unseen refused: the model cannot be trusted with it yet."""


class Labeller:
    """The loop on ``folder`` (``sightline.label(folder)``)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        featurize: Featurizer | None = None,
        background: bool = False,
    ) -> None:
        self.pool = Pool.read(folder)
        self.root = self.pool.root
        self.memo = FeatureMemo(self.root, featurize)
        self.background = background  # refit on a thread of its own after each change
        self.background_error: str | None = None  # why the last background refit failed
        self._lock = threading.RLock()  # labels set one request at a time
        self._fitting = threading.Lock()  # one refit at a time; a label never waits for it
        self._kick = threading.Lock()  # guards the two below
        self._wanted = False
        self._worker: threading.Thread | None = None
        self._state: State | None = None
        self._seen: tuple | None = None

    # ------------------------------------------------------------------- the model
    def refresh(self) -> State:
        """The folder read again and the model refit where its labels changed (waits for a
        refit under way, which is then most often the one asked for)."""
        with self._fitting:
            pool = Pool.read(self.root)
            seen = (tuple(sorted((c, tuple(f)) for c, f in pool.labelled.items())),
                    tuple(pool.waiting))  # fmt: skip
            if self._state is not None and seen == self._seen:
                return self._state
            classes = pool.classes
            files = [f for c in classes for f in pool.labelled[c]]
            names = [c for c in classes for _ in pool.labelled[c]]
            x, bad = self.memo.features(files + pool.waiting)
            unreadable = [b.split(": ", 1)[0] for b in bad]
            kept = [f for f in files if f not in unreadable]
            labels = torch.tensor(
                [
                    classes.index(n)
                    for f, n in zip(files, names, strict=True)
                    if f not in unreadable
                ],
                dtype=torch.long,
            )
            waiting = [f for f in pool.waiting if f not in unreadable]
            x = F.normalize(x, dim=1) if len(x) else torch.zeros(0, 1)
            known, pool_x = x[: len(kept)], x[len(kept) :]
            answers = None
            if loop_model.can_fit(labels, len(classes)):
                answers = loop_model.fit(known, labels, len(classes), pool_x)
            self.pool, self._seen = pool, seen
            self._state = State(pool, classes, known, labels, waiting, pool_x, answers, bad)
            if answers is not None:
                self._record(answers.estimate)
            return self._state

    def refit_soon(self) -> None:
        """Refit on a thread of its own. Changes made while it fits are taken in one more
        refit after it, not one each: at most one refit runs, and one waits."""
        with self._kick:
            self._wanted = True
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._refit_while_wanted, name="sightline-label-refit", daemon=True
                )
                self._worker.start()

    def settled(self, timeout: float | None = None) -> bool:
        """Wait for the background refits to end; False if they still run after ``timeout``."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self._worker is None or not self._worker.is_alive()

    def _refit_while_wanted(self) -> None:
        while True:
            with self._kick:
                if not self._wanted:
                    self._worker = None
                    return
                self._wanted = False
            try:
                self.refresh()
                self.background_error = None
            except Exception as e:  # noqa: BLE001 - the next question refits and says why
                self.background_error = f"{type(e).__name__}: {e}"

    def _changed(self, journal: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.background and journal is not None and journal.get("moves"):
            self.refit_soon()
        return journal

    # ------------------------------------------------------------------- what to ask
    def next(self, n: int = 20, confident: bool = False) -> dict[str, list[Suggestion]]:
        """{"next": up to ``n`` images to label now, "unlike": waiting images unlike anything
        labelled (a class not made yet, or not any class)}. ``confident``: the images the model
        is surest of first instead (a page of suggestions to accept at a glance)."""
        if n < 1:
            raise DataError(f"--next {n}: ask for 1 image or more")
        s = self.refresh()
        if confident and s.answers is not None:
            sure = s.answers.probs.max(1).values.masked_fill(s.answers.unlike, -1.0)
            rows = sure.argsort(descending=True, stable=True)[: min(n, int((sure >= 0).sum()))]
            return {"next": [self._suggestion(s, int(i), "sure") for i in rows], "unlike": []}
        asked = ranking.ask(s.pool_x, s.known, n, len(s.classes), s.answers)
        if s.answers is None:
            why = "no model yet (2 classes of 2 labelled images make one): typical of the folder"
            return {"next": [Suggestion(s.waiting[i], None, None, why=why) for i, _ in asked],
                    "unlike": []}  # fmt: skip
        # Once every other image is labelled, the unlike ones are what is left to ask about:
        # "next" is never empty while an image waits.
        taken = {i for i, _ in asked}
        left = [i for i in ranking.unlike(s.answers) if i not in taken][:n]
        return {"next": [self._suggestion(s, i, why) for i, why in asked],
                "unlike": [self._suggestion(s, i, "unlike") for i in left]}  # fmt: skip

    def _suggestion(self, s: State, row: int, reason: str) -> Suggestion:
        p = s.answers.probs[row]
        best = int(p.argmax())
        second = int(p.index_fill(0, torch.tensor([best]), -1.0).argmax()) if len(p) > 1 else None
        # The suggestion and its probability are shown beside this: it says why it is asked.
        if reason == "unlike":
            why = "unlike every labelled image: a new class, or not any class?"
        elif reason == "typical":
            why = "typical of images little labelled yet"
        elif reason == "sure":
            why = "sure"
        elif second is not None:
            why = f"uncertain: or {s.classes[second]} ({float(p[second]):.0%})"
        else:
            why = "uncertain"
        return Suggestion(
            s.waiting[row], s.classes[best], float(p[best]),
            {c: float(v) for c, v in zip(s.classes, p.tolist(), strict=True)},
            bool(s.answers.unlike[row]), why,
        )  # fmt: skip

    # ------------------------------------------------------------------- labels
    def set(self, labels: dict[str, str | None]) -> dict[str, Any]:
        """Label waiting images: {path: class} (a new class name makes the class; None: not any
        class, kept apart). One journal: one Undo puts all of them back."""
        with self._lock:
            pool = Pool.read(self.root)
            moves = []
            for path, cls_name in labels.items():
                src = pool.waiting_file(path)
                if cls_name is None:
                    moves.append((src, pool.set_apart(src), KIND, APART))
                else:
                    moves.append(
                        (src, pool.destination(src, cls_name), KIND, f"labelled {cls_name}")
                    )
            if not moves:
                raise DataError("nothing to label: give one or more FILE=CLASS")
            return self._changed(relocate(self.root, moves))

    def accept_above(self, probability: float = CONFIDENT) -> dict[str, Any]:
        """Label every waiting image whose suggestion is at ``probability`` or more (and not
        unlike anything labelled); DataError, nothing moved, while the model cannot be trusted
        with it (``accept_refusal``)."""
        if not 0.5 <= probability <= 1:
            raise DataError(f"--accept-above {probability}: give a probability in 0.5..1")
        with self._lock:
            s = self.refresh()
            refusal = self.accept_refusal(s)
            if refusal:
                raise UnsureError(refusal)
            chosen = self._confident(s, probability)
            if not chosen:
                return {"id": None, "moves": [], "status": "nothing at that confidence"}
            best = s.answers.probs.argmax(1)
            return self.set({s.waiting[i]: s.classes[int(best[i])] for i in chosen})

    def accept_refusal(self, s: State) -> str | None:
        """Why the model's suggestions may not be accepted unseen yet (None: they may)."""
        if s.answers is None:
            return "no model yet: label 2 images of each of 2 classes first"
        counts = torch.bincount(s.labels, minlength=len(s.classes))
        short = [c for c, k in zip(s.classes, counts.tolist(), strict=True) if k < MIN_TO_ACCEPT]
        if short:
            return (
                f"too few labels to accept suggestions unseen: {', '.join(short[:5])} "
                f"{'has' if len(short) == 1 else 'have'} fewer than {MIN_TO_ACCEPT} labelled "
                "images; label more of them first"
            )
        e = s.answers.estimate
        if e.low < ACCEPT_LOW:
            return (
                f"the model is not sure enough of itself: its estimated accuracy is "
                f"{e.accuracy:.1%} ({e.low:.1%}-{e.high:.1%}, 95 %), its low end under the {ACCEPT_LOW:.0%} "
                "that accepting its suggestions needs; label more images first"
            )
        return None

    def _confident(self, s: State, probability: float) -> list[int]:
        a = s.answers
        ok = (a.probs.max(1).values >= probability) & ~a.unlike
        return torch.nonzero(ok).flatten().tolist()

    def undo(self) -> dict[str, Any] | None:
        """Put back the last change (a label, an accept, or a data-health fix)."""
        return self._changed(undo_fix(self.root))

    # ------------------------------------------------------------------- where it stands
    def status(self, probability: float = CONFIDENT) -> dict[str, Any]:
        s = self.refresh()
        out: dict[str, Any] = {
            "folder": str(self.root),
            "classes": s.pool.counts(),
            "waiting": len(s.pool.waiting),
            "unreadable": s.unreadable,
            "estimate": None,
            "confident": 0,
            "confidence": probability,
            "accept": None,
            "history": self.history(),
            "last_change": last_fix(self.root),
        }
        if s.answers is not None:
            out["estimate"] = s.answers.estimate.to_dict()
            out["confident"] = len(self._confident(s, probability))
            out["unlike"] = int(s.answers.unlike.sum())
        out["accept"] = self.accept_refusal(s)
        return out

    def history(self) -> list[dict[str, Any]]:
        path = inside(self.root, f"{STATE}/{HISTORY}")
        try:
            return list(read_json(path)["estimates"]) if path.is_file() else []
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def _record(self, estimate: loop_model.Estimate) -> None:
        """One point of the accuracy curve per number of labels (the latest wins)."""
        points = [p for p in self.history() if p.get("labelled") != estimate.labelled]
        points.append(estimate.to_dict() | {"at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        points.sort(key=lambda p: p["labelled"])
        path = inside(self.root, f"{STATE}/{HISTORY}")
        path.parent.mkdir(exist_ok=True)
        atomic_write_json(path, {"estimates": points}, root=self.root)


def label(
    folder: str | os.PathLike, featurize: Featurizer | None = None, background: bool = False
) -> Labeller:
    """The labelling loop on a dataset folder whose ``unlabelled/`` holds images to label::

    loop = sightline.label("shoes")
    loop.next(20)                       # what to label now, with suggestions
    loop.set({"unlabelled/a.jpg": "boot", "unlabelled/b.jpg": None})  # None: not any class
    loop.status()                       # counts, estimated accuracy, confident images
    loop.accept_above(0.98)             # label the confident rest (refused while unsure)
    loop.undo()

    ``background=True`` refits on a thread of its own after each change (a long-lived
    process: the server's Label page).
    """
    return Labeller(Path(folder), featurize, background)
