"""/api/datasets/folder/{name}/health...: the data check of a --data-dir folder, and a
reviewer's fixes (the Health page).

A face over ``sightline.health``: ``POST .../check`` runs ``check`` (the label search too,
unless ``labels`` is false) on the CPU-work threads and keeps the report for the folder;
``GET .../health`` returns it, each finding with the action ``sightline check --fix`` would take
(``recommended``) and the findings kept as they are listed apart (``kept``); ``POST .../review``
keeps a finding as it is, moves a file to another class or into the quarantine; ``POST
.../apply`` makes every recommended fix at once (``sightline check --fix``); ``POST .../revoke``
takes a decision to keep back; ``POST .../undo`` puts back the last fix or keep. Every change
goes through the same journal as ``sightline check --fix``, so Undo takes each back, and after
each the quick part of the check runs again (``health.check.recheck``): the page never shows a
stale report. The client names files only as the report names them: a path the report does not
hold is refused, so no request reaches a file the check did not list. ``GET .../image`` shows
one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import Field

from sightline.errors import SightlineError
from sightline.serve.core.deps import data_folder
from sightline.serve.core.errors import errors, file_answer
from sightline.serve.core.params import DatasetName, JSONBody
from sightline.serve.core.settings import settings_of as _settings
from sightline.serve.services.pictures import file_picture

router = APIRouter(prefix="/api/datasets/folder/{name}")

IMAGE_SIDE = (96, 320)  # small and large pictures of a file: the smaller images are enlarged


@dataclass
class _Checked:
    report: Any  # sightline.health.HealthReport
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _reports(request: Request) -> dict[str, _Checked]:
    state = request.app.state
    if not hasattr(state, "health_reports"):
        state.health_reports = {}
    return state.health_reports


def _checked(request: Request, name: str) -> tuple[Path, _Checked]:
    root = data_folder(request, name)
    checked = _reports(request).get(root.name)
    if checked is None:
        raise HTTPException(
            409, f"folder {root.name} has not been checked yet: POST its /check first"
        )
    if checked.report is None:  # its first check is running (or just failed): no report to use
        raise HTTPException(409, f"folder {root.name} is being checked; wait for it")
    return root, checked


def _view(root: Path, report: Any) -> dict[str, Any]:
    from sightline.health import QUARANTINE, decision_key, last_fix, recommended

    undo = last_fix(root)
    data = report.to_dict()
    data["source"] = root.name  # the folder's name: the client never sees server paths
    advice = recommended(report, root)
    for problem, shown in zip(report.problems, data["problems"], strict=True):
        shown["recommended"] = advice.get(decision_key(problem))
    data["recommended"] = sum(1 for p in data["problems"] if p["recommended"])
    return {**data, "folder": root.name, "quarantine": QUARANTINE, "can_undo": undo}


class CheckRequest(JSONBody):
    labels: bool = Field(
        True,
        description="also look for images filed in the wrong class (trains small models: seconds to a minute)",
    )


@router.post(
    "/check",
    summary="Check a data folder: corrupt files, copies, leaks, labels, odd images",
    responses=errors(404, 409),
)
async def check_folder(name: DatasetName, body: CheckRequest, request: Request) -> dict[str, Any]:
    from sightline.health import check

    root = data_folder(request, name)
    reports = _reports(request)
    checked = reports.setdefault(root.name, _Checked(report=None))
    if checked.lock.locked():
        raise HTTPException(409, f"folder {root.name} is being checked already; wait for it")
    async with checked.lock:
        try:
            checked.report = await _settings(request).cpu_work(
                lambda: check(root, labels=body.labels)
            )
        except SightlineError as e:
            raise HTTPException(400, str(e)) from None
        finally:
            if checked.report is None:  # a first check that failed: the folder is unchecked
                reports.pop(root.name, None)
        return _view(root, checked.report)


@router.get(
    "/health",
    summary="The last check of a data folder (checked: false before one)",
    responses=errors(404),
)
def folder_health(name: DatasetName, request: Request) -> dict[str, Any]:
    root = data_folder(request, name)
    checked = _reports(request).get(root.name)
    if checked is None or checked.report is None:
        return {"folder": root.name, "checked": False, "checking": checked is not None}
    return {**_view(root, checked.report), "checked": True}


class ReviewRequest(JSONBody):
    path: str = Field(description="a file as the check's report names it")
    action: Literal["keep", "move", "quarantine"] = Field(
        description="keep: its findings are right as they are; move: to class `to`; quarantine"
    )
    to: str | None = Field(None, description="the class to move it to (action move)")


def _known(report: Any, path: str) -> None:
    if path not in report.flagged_paths() | report.kept_paths():
        raise HTTPException(404, f"{path[:120]!r} is not a file the check reported")


@router.post(
    "/review",
    summary="Keep, move or quarantine one file the check reported",
    responses=errors(404, 409),
)
async def review(name: DatasetName, body: ReviewRequest, request: Request) -> dict[str, Any]:
    from sightline.health import apply_fix, keep, review_move

    root, checked = _checked(request, name)
    _known(checked.report, body.path)
    about = [p for p in checked.report.problems if body.path in p.paths]
    if not about:
        raise HTTPException(409, f"{body.path[:120]!r} is kept as it is: revoke that first")
    if body.action == "move" and not body.to:
        raise HTTPException(400, "action move needs `to`: the class to move the file to")
    async with checked.lock:
        if body.action == "keep":
            await _settings(request).cpu_work(keep, checked.report, root, body.path)
            return {**_view(root, checked.report), "keeping": body.path}
        try:
            move = review_move(root, body.path, checked.report.classes,
                               body.to if body.action == "move" else None,
                               about[0].kind, f"{body.action} in review")  # fmt: skip
            await _settings(request).cpu_work(apply_fix, root, [move])
        except SightlineError as e:
            raise HTTPException(400, str(e)) from None
        await _recheck(request, root, checked)
        return {**_view(root, checked.report), "moved": {"from": move.src, "to": move.dst}}


@router.post(
    "/apply",
    summary="Make every recommended fix at once (sightline check --fix)",
    responses=errors(404, 409),
)
async def apply(name: DatasetName, request: Request) -> dict[str, Any]:
    from sightline.health import QUARANTINE, apply_fix, plan_fix

    root, checked = _checked(request, name)
    async with checked.lock:
        moves, _ = plan_fix(checked.report, root)
        if not moves:
            raise HTTPException(409, "no finding has a recommended fix: review them one by one")
        try:
            journal = await _settings(request).cpu_work(apply_fix, root, moves)
        except SightlineError as e:
            raise HTTPException(400, str(e)) from None
        await _recheck(request, root, checked)
        quarantined = sum(m.dst.startswith(QUARANTINE + "/") for m in moves)
        return {**_view(root, checked.report), "applied": {
            "fix": journal["id"], "quarantined": quarantined, "moved": len(moves) - quarantined}}  # fmt: skip


class RevokeRequest(JSONBody):
    path: str = Field(description="a file whose findings were kept as they are")


@router.post(
    "/revoke",
    summary="Report a kept finding again (take the decision to keep back)",
    responses=errors(404, 409),
)
async def revoke_keep(name: DatasetName, body: RevokeRequest, request: Request) -> dict[str, Any]:
    from sightline.health import revoke

    root, checked = _checked(request, name)
    if not any(body.path in p.paths for p in checked.report.kept):
        raise HTTPException(404, f"{body.path[:120]!r} has no finding kept as it is")
    async with checked.lock:
        await _settings(request).cpu_work(revoke, checked.report, root, body.path)
        return {**_view(root, checked.report), "revoked": body.path}


@router.post(
    "/undo",
    summary="Put back the last fix, or take back the last keep, of a folder",
    responses=errors(404, 409),
)
async def undo(name: DatasetName, request: Request) -> dict[str, Any]:
    from sightline.health import undo_fix

    root, checked = _checked(request, name)
    async with checked.lock:
        journal = await _settings(request).cpu_work(undo_fix, root)
        if journal is None:
            raise HTTPException(409, f"nothing to undo in {root.name}")
        await _recheck(request, root, checked)
        return {**_view(root, checked.report), "undone": journal["id"],
                "restored": [m["src"] for m in journal["moves"]],
                "unkept": sorted(journal.get("kept", {}))}  # fmt: skip


async def _recheck(request: Request, root: Path, checked: _Checked) -> None:
    """The report again after a change (``health.check.recheck``): the quick part read anew."""
    from sightline.health import recheck

    with contextlib.suppress(SightlineError):  # a folder emptied by hand: the last report stays
        checked.report = await _settings(request).cpu_work(recheck, checked.report, root)


@router.get(
    "/image",
    summary="A picture of one file the check reported (or of a neighbour)",
    response_class=Response,
    responses={**file_answer("image/png", "the picture"), **errors(404, 409, 415)},
)
async def image(
    name: DatasetName,
    request: Request,
    path: str = Query(description="the file as the report names it"),
    large: bool = Query(False, description="320 px instead of 96"),
) -> Response:
    root, checked = _checked(request, name)
    report = checked.report
    neighbours = {n for p in report.problems for n in p.details.get("neighbours", {}).values()}
    if path not in report.flagged_paths() | report.kept_paths() and path not in neighbours:
        raise HTTPException(404, f"{path[:120]!r} is not a file the check reported")
    side = IMAGE_SIDE[1 if large else 0]
    return await file_picture(request, root, path, side, f"{path[:120]!r} cannot be read")
