"""Decisions a person made about findings ("this is right as it is"), kept beside the data in
``.sightline-decisions.json`` so a reviewed image is not flagged again, until it changes: a
decision holds the digests of the images it was made on.

Keeping is a fix like any other: ``health/fix.py``'s ``keep`` writes a journal entry whose
``kept`` records are added to the decisions file, so Undo takes it back, and every kept finding
stays listed (``HealthReport.kept``) with ``fix.revoke`` to take it back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sightline.fileio import atomic_write_json, read_json
from sightline.health.problems import HealthReport, Problem

DECISIONS = ".sightline-decisions.json"


def decision_key(problem: Problem) -> str:
    return f"{problem.kind}:{'|'.join(sorted(problem.paths))}"


def load_decisions(root: str | os.PathLike) -> dict[str, Any]:
    path = Path(root) / DECISIONS
    return read_json(path).get("keep", {}) if path.is_file() else {}


def _save(root: str | os.PathLike, decisions: dict[str, Any]) -> None:
    atomic_write_json(Path(root) / DECISIONS, {"keep": decisions})


def add_decisions(root: str | os.PathLike, records: dict[str, Any]) -> None:
    """Add ``records`` (key -> record) to the folder's decisions (again: no change)."""
    decisions = load_decisions(root)
    decisions.update(records)
    _save(root, decisions)


def remove_decisions(root: str | os.PathLike, keys: list[str]) -> list[str]:
    """Take the decisions ``keys`` back; the keys there were."""
    decisions = load_decisions(root)
    gone = [k for k in keys if decisions.pop(k, None) is not None]
    if gone:
        _save(root, decisions)
    return gone


def apply_decisions(report: HealthReport, root: str | os.PathLike) -> int:
    """Move into ``report.kept`` the findings a person kept, on unchanged images; how many."""
    kept = load_decisions(root)
    if not kept:
        return 0
    held = [p for p in report.problems if _still_kept(p, kept, report.digests)]
    report.problems = [p for p in report.problems if p not in held]
    report.kept += held
    return len(held)


def _still_kept(problem: Problem, kept: dict[str, Any], digests: dict[str, str]) -> bool:
    record = kept.get(decision_key(problem))
    return record is not None and all(
        digests.get(path) == record["digests"].get(path) for path in problem.paths
    )
