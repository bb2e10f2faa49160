"""Decisions a person made about findings ("this is right as it is"), kept beside the data in
``.sightline-decisions.json`` so a reviewed image is not flagged again, until it changes: a
decision holds the digests of the images it was made on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sightline.fileio import atomic_write_json, read_json
from sightline.health.problems import HealthReport, Problem

DECISIONS = ".sightline-decisions.json"


def _key(problem: Problem) -> str:
    return f"{problem.kind}:{'|'.join(sorted(problem.paths))}"


def load_decisions(root: str | os.PathLike) -> dict[str, Any]:
    path = Path(root) / DECISIONS
    return read_json(path).get("keep", {}) if path.is_file() else {}


def apply_decisions(report: HealthReport, root: str | os.PathLike) -> int:
    """Drop from ``report`` the findings a person kept, on unchanged images; how many."""
    kept = load_decisions(root)
    if not kept:
        return 0
    before = len(report.problems)
    report.problems = [p for p in report.problems if not _still_kept(p, kept, report.digests)]
    return before - len(report.problems)


def _still_kept(problem: Problem, kept: dict[str, Any], digests: dict[str, str]) -> bool:
    record = kept.get(_key(problem))
    return record is not None and all(
        digests.get(path) == record["digests"].get(path) for path in problem.paths
    )


def keep(report: HealthReport, root: str | os.PathLike, path: str) -> list[Problem]:
    """Remember that the findings of ``report`` about ``path`` (relative to the folder) are
    right as they are; returns them (none: the path has no finding)."""
    found = [p for p in report.problems if path in p.paths and p.paths]
    if found:
        file = Path(root) / DECISIONS
        record = read_json(file) if file.is_file() else {}
        decisions = record.setdefault("keep", {})
        for problem in found:
            decisions[_key(problem)] = {
                "kind": problem.kind,
                "digests": {p: report.digests.get(p) for p in problem.paths},
            }
        atomic_write_json(file, record)
        report.problems = [p for p in report.problems if p not in found]
    return found
