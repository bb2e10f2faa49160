"""Fixing a dataset folder without losing anything: every fix is a list of moves (to another
class folder, or into ``.sightline-quarantine/`` inside the dataset), written to a journal
before the first file moves, so an interrupted fix is completed (or undone) by the next
``fix``/``undo``; ``undo`` puts the files of the last fix back. Nothing is ever deleted, and a
move never replaces a file. What each quarantined file was and why is in the quarantine's
``manifest.json``. The hidden folder is invisible to training and to ``check``. The Build
page's "remove" (``set_aside``) goes through the same journal: one Undo, wherever it is pressed,
puts back the last change of either page. No move goes through a symbolic link inside the
dataset (``fileio.inside``)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sightline.errors import DataError
from sightline.fileio import atomic_write_json, inside, read_json
from sightline.health.decisions import (
    add_decisions,
    decision_key,
    load_decisions,
    remove_decisions,
)
from sightline.health.problems import HealthReport, Problem

QUARANTINE = ".sightline-quarantine"
REMOVED = "removed"  # the kind of a move the Build page made (set_aside)
# One change at a time in this process: the server makes fixes, keeps and removals on worker
# threads, and two at once would take the same journal number (one journal lost, its Undo too).
_CHANGING = threading.RLock()


@dataclass
class Move:
    src: str  # relative to the dataset folder
    dst: str
    kind: str  # the finding that moved it
    reason: str


# ----------------------------------------------------------------------- what to move
def plan_fix(report: HealthReport, root: str | os.PathLike) -> tuple[list[Move], list[str]]:
    """(the moves that fix ``report``'s findings, the findings left for a person to review).

    corrupt: quarantined. A copy or near copy in one class: the later one quarantined (the
    first, by path, kept). A copy under two classes: the one whose class the label check
    prefers kept, else all quarantined. A leak: the validation/test copy quarantined, so the
    evaluation scores only images the model never saw. A label finding the label search marked
    fixable (a training image, reliable models, a calibrated probability of the class it moves
    to of ``label_quality.FIX_CONFIDENCE`` or more): moved to that class. Everything else is
    for review."""
    root = Path(root)
    flat = _is_flat(root)
    label_score = {p.paths[0]: p for p in report.of_kind("label")}
    moves: dict[str, Move] = {}
    review: list[str] = []

    def quarantine(path: str, kind: str, reason: str) -> None:
        moves.setdefault(path, Move(path, f"{QUARANTINE}/{path}", kind, reason))

    for problem in report.problems:
        kind, paths = problem.kind, problem.paths
        if kind == "corrupt":
            quarantine(paths[0], kind, problem.message)
        elif kind == "leak":
            quarantine(paths[0], kind, f"a copy of {paths[1]}")
        elif kind in ("duplicate", "near-duplicate"):
            if problem.details.get("conflict"):
                trusted = [p for p in paths if p not in label_score]
                keep = trusted[0] if len(trusted) == 1 else None
                for path in paths:
                    if path != keep:
                        quarantine(
                            path,
                            kind,
                            f"the same image as {_others(paths, path)} under another class",
                        )
            else:
                for path in sorted(paths)[1:]:
                    quarantine(path, kind, f"a copy of {sorted(paths)[0]}")
        elif kind == "label" and problem.details.get("fixable") and paths[0] not in moves:
            suggested = problem.details["suggested"]
            dst = _in_class(paths[0], suggested, flat)
            moves[paths[0]] = Move(
                paths[0], dst, kind, f"looked like {suggested} ({problem.message})"
            )
        else:
            review.append(f"{kind}: {', '.join(paths) or problem.message}")
    return _unique(root, list(moves.values())), review


def recommended(report: HealthReport, root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """What ``plan_fix`` would do about each finding (the action a page offers first), by
    ``decisions.decision_key``: {"action": "quarantine" or "move", "path": the file, "to": the
    class a move goes to}. A finding it leaves for review is not in it: no action is
    recommended over another there."""
    moves, _ = plan_fix(report, root)
    by_src = {m.src: m for m in moves}
    out: dict[str, dict[str, Any]] = {}
    for problem in report.problems:
        acts = [by_src[p] for p in problem.paths if p in by_src and by_src[p].kind == problem.kind]
        if acts:
            move = acts[0]
            away = move.dst.startswith(QUARANTINE + "/")
            out[decision_key(problem)] = {
                "action": "quarantine" if away else "move",
                "path": move.src,
                "to": None if away else problem.details.get("suggested"),
            }
    return out


def _others(paths: list[str], path: str) -> str:
    return ", ".join(p for p in paths if p != path)


def _is_flat(root: Path) -> bool:
    from sightline.data.folders import find_splits

    return find_splits(root)["train"] == root


def _in_class(path: str, cls: str, flat: bool) -> str:
    parts = path.split("/")
    parts[0 if flat else 1] = cls
    return "/".join(parts)


def _unique(root: Path, moves: list[Move]) -> list[Move]:
    """Destinations that exist nowhere yet (a -1, -2... before the suffix): never replace."""
    taken: set[str] = set()
    for move in moves:
        dst, n = move.dst, 0
        while (root / dst).exists() or dst in taken:
            n += 1
            stem, dot, ext = move.dst.rpartition(".")
            dst = f"{stem}-{n}.{ext}" if dot else f"{move.dst}-{n}"
        move.dst = dst
        taken.add(dst)
    return moves


def review_move(root: str | os.PathLike, path: str, classes: list[str], to: str | None,
                kind: str, reason: str) -> Move:  # fmt: skip
    """One reviewer's move of ``path``: to class ``to`` (one of ``classes``), or into the
    quarantine (``to`` None); DataError for a class the dataset does not have."""
    root = Path(root)
    if to is None:
        dst = f"{QUARANTINE}/{path}"
    elif to in classes:
        dst = _in_class(path, to, _is_flat(root))
    else:
        raise DataError(
            f"no class {to[:80]!r} in this dataset; its classes are: {', '.join(classes)}"
        )
    return _unique(root, [Move(path, dst, kind, reason)])[0]


# ----------------------------------------------------------------------- the journal
def _journal_dir(root: Path) -> Path:
    return root / QUARANTINE / "fixes"


def _journals(root: Path) -> list[Path]:
    folder = _journal_dir(root)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def last_journal(root: str | os.PathLike) -> dict[str, Any] | None:
    """The journal of the fix ``undo_fix`` would put back (None: none)."""
    done = [read_json(p) for p in _journals(Path(root))]
    return next((j for j in reversed(done) if j["status"] in ("done", "pending")), None)


def last_fix(root: str | os.PathLike) -> int | None:
    """The id of the fix ``undo_fix`` would put back (None: none)."""
    journal = last_journal(root)
    return None if journal is None else journal["id"]


def moved_to(root: str | os.PathLike, src: str) -> str | None:
    """Where the latest change that moved ``src`` put it, while it is still there (None: no
    change moved it, or it has moved on)."""
    root = Path(root)
    for path in reversed(_journals(root)):
        journal = read_json(path)
        if journal["status"] != "done":
            continue
        for m in journal["moves"]:
            if m["src"] == src and (root / m["dst"]).exists():
                return m["dst"]
    return None


def _move(root: Path, src: str, dst: str) -> list[str]:
    """Move ``src`` to ``dst``; the folders made for it (relative to ``root``), outermost first."""
    a, b = inside(root, src), inside(root, dst)  # a link on the way: refused, nothing moved
    if b.exists():
        raise DataError(f"{b} exists: a fix never replaces a file (move it away and run again)")
    made = [p for p in reversed(b.relative_to(root).parents) if p.parts and not (root / p).exists()]
    b.parent.mkdir(parents=True, exist_ok=True)
    os.rename(a, b)  # within the dataset folder: one file system, one atomic rename
    return [p.as_posix() for p in made]


def _forward(root: Path, journal: dict[str, Any]) -> None:
    made = journal.setdefault("made", [])  # folders the fix made: its undo removes them, emptied
    for m in journal["moves"]:
        if (root / m["src"]).exists() and not (root / m["dst"]).exists():
            made += _move(root, m["src"], m["dst"])
    if journal.get("kept"):
        add_decisions(root, journal["kept"])


def _backward(root: Path, journal: dict[str, Any]) -> None:
    if journal.get("kept"):
        remove_decisions(root, list(journal["kept"]))
    for m in reversed(journal["moves"]):
        if (root / m["dst"]).exists() and not (root / m["src"]).exists():
            _move(root, m["dst"], m["src"])
    for folder in reversed(journal.get("made", [])):
        with contextlib.suppress(OSError):  # not empty (a file came since): it stays
            inside(root, folder).rmdir()


def finish_interrupted(root: str | os.PathLike) -> str | None:
    """Complete a fix or an undo that was interrupted (a killed process); what was done."""
    with _CHANGING:
        return _finish_interrupted(Path(root))


def _finish_interrupted(root: Path) -> str | None:
    for path in _journals(root):
        journal = read_json(path)
        if journal["status"] == "pending":
            _forward(root, journal)
            _save(root, path, journal, "done")
            return f"completed the interrupted fix {journal['id']}"
        if journal["status"] == "undoing":
            _backward(root, journal)
            _save(root, path, journal, "undone")
            return f"completed the interrupted undo of fix {journal['id']}"
    return None


def _save(root: Path, path: Path, journal: dict[str, Any], status: str) -> None:
    journal["status"] = status
    journal[f"{status}_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(path, journal)
    _write_manifest(root)


def apply_fix(
    root: str | os.PathLike, moves: list[Move], kept: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Make ``moves``, and record the decisions ``kept`` (``health/decisions.py``: findings a
    person keeps as they are), through a new journal; returns it (``id``, ``moves``, ``kept``,
    ``status``). Undo takes back both."""
    with _CHANGING:
        return _apply_fix(Path(root), moves, kept)


def _apply_fix(root: Path, moves: list[Move], kept: dict[str, Any] | None) -> dict[str, Any]:
    _finish_interrupted(root)
    if not moves and not kept:
        return {"id": None, "moves": [], "status": "nothing to fix"}
    number = 1 + max((int(p.stem) for p in _journals(root) if p.stem.isdigit()), default=0)
    path = _journal_dir(root) / f"{number:04d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    journal = {"id": number, "status": "pending", "moves": [asdict(m) for m in moves],
               "pending_at": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    if kept:
        journal["kept"] = kept
    atomic_write_json(path, journal)  # first the journal, then the files
    _forward(root, journal)
    _save(root, path, journal, "done")
    return journal


def undo_fix(root: str | os.PathLike, fix: int | None = None) -> dict[str, Any] | None:
    """Put back the files of the last fix (None: nothing to undo); ``fix``: only if it is that
    one (DataError otherwise: a page that shows an older Undo never undoes another's change).
    DataError, and nothing moved, when a file or class folder has appeared where one of them
    goes back to: putting back the rest would leave that one in the quarantine with no journal
    left to undo."""
    with _CHANGING:
        return _undo_fix(Path(root), fix)


def _undo_fix(root: Path, fix: int | None) -> dict[str, Any] | None:
    _finish_interrupted(root)
    done = [p for p in _journals(root) if read_json(p)["status"] == "done"]
    if not done:
        return None
    journal = read_json(done[-1])
    if fix is not None and journal["id"] != fix:
        raise DataError(
            f"the last change in {root.name} is fix {journal['id']}, not {fix} (made since, "
            "here or on another page): reload to see what Undo would put back"
        )
    taken = [m["src"] for m in journal["moves"]
             if (root / m["src"]).exists() and (root / m["dst"]).exists()]  # fmt: skip
    if taken:
        raise DataError(
            f"cannot undo fix {journal['id']}: {', '.join(taken[:5])} "
            f"{'is' if len(taken) == 1 else 'are'} there again; rename or move "
            f"{'it' if len(taken) == 1 else 'them'} away, then undo"
        )
    _save(root, done[-1], journal, "undoing")
    _backward(root, journal)
    _save(root, done[-1], journal, "undone")
    return journal


def set_aside(root: str | os.PathLike, paths: list[str], reason: str) -> dict[str, Any]:
    """Move ``paths`` (files or whole class folders, relative to ``root``) into the quarantine
    through a new journal (``apply_fix``): the Build page's "remove", which nothing deletes
    and Undo, on either page, puts back."""
    root = Path(root)
    with _CHANGING:  # the free names and the move: one change
        moves = _unique(root, [Move(p, f"{QUARANTINE}/{p}", REMOVED, reason) for p in paths])
        return _apply_fix(root, moves, None)


def relocate(root: str | os.PathLike, moves: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """Make ``moves`` ((src, dst, kind, reason), relative to ``root``) through a new journal, a
    destination that is taken given a free name (``-1``, ``-2``...): the labelling loop's labels,
    which the same Undo puts back."""
    root = Path(root)
    with _CHANGING:  # the free names and the move: one change
        return _apply_fix(root, _unique(root, [Move(*m) for m in moves]), None)


def _write_manifest(root: Path) -> None:
    """Where every file now in quarantine came from, and why."""
    entries = []
    for path in _journals(root):
        journal = read_json(path)
        if journal["status"] != "done":
            continue
        for m in journal["moves"]:
            if m["dst"].startswith(QUARANTINE + "/") and (root / m["dst"]).exists():
                entries.append({"path": m["dst"], "from": m["src"], "kind": m["kind"],
                                "reason": m["reason"], "fix": journal["id"]})  # fmt: skip
    atomic_write_json(root / QUARANTINE / "manifest.json", {"quarantined": entries})


# ----------------------------------------------------------------------- keeping as it is
def keep(report: HealthReport, root: str | os.PathLike, path: str) -> list[Problem]:
    """Remember, through a journal entry that Undo takes back, that the findings of ``report``
    about ``path`` (relative to the folder) are right as they are; returns them (none: the
    path has no finding)."""
    found = [p for p in report.problems if path in p.paths and p.paths]
    if found:
        records = {
            decision_key(p): {
                "kind": p.kind,
                "digests": {q: report.digests.get(q) for q in p.paths},
            }
            for p in found
        }
        apply_fix(root, [], kept=records)
        report.problems = [p for p in report.problems if p not in found]
        report.kept += found
    return found


def revoke(report: HealthReport, root: str | os.PathLike, path: str) -> list[Problem]:
    """Take back every decision to keep a finding about ``path``: those findings are reported
    again; returns them."""
    found = [p for p in report.kept if path in p.paths]
    keys = [decision_key(p) for p in found]
    # a decision a later check no longer lists (the image changed) goes too
    keys += [k for k in load_decisions(root) if path in k.split(":", 1)[1].split("|")]
    remove_decisions(root, sorted(set(keys)))
    report.kept = [p for p in report.kept if p not in found]
    report.problems += found
    return found
