"""/api/datasets/folder/{name}/label...: the labelling loop on a --data-dir folder (the Label
page). A face over ``sightline.labelling``: one ``Labeller`` per folder, refit on a thread of
its own as soon as its labels change. ``GET .../label`` says where it stands, ``GET .../label/next``
what to label now, ``POST .../label`` sets labels (a class, or null: not any class), ``POST
.../label/accept`` labels the confident rest, ``POST .../label/undo`` puts back the last change
(of this page or the Health page: one journal). The client names files only as the loop lists
them (relative to the folder, waiting in its ``unlabelled/``); ``GET .../label/image`` shows one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import Field

from sightline.errors import PathRefusedError, SightlineError
from sightline.serve.core.deps import data_folder
from sightline.serve.core.errors import errors, file_answer
from sightline.serve.core.params import NAME_SCHEMA, DatasetName, JSONBody
from sightline.serve.core.settings import settings_of as _settings
from sightline.serve.services.pictures import file_picture

router = APIRouter(prefix="/api/datasets/folder/{name}/label")

MAX_LABELS = 500  # labels in one request: a page of suggestions, with room
MAX_PATH = 1024
IMAGE_SIDE = (160, 480)


def _loop(request: Request, name: str) -> tuple[Path, Any]:
    from sightline.labelling import Labeller

    root = data_folder(request, name)
    state = request.app.state
    if not hasattr(state, "labellers"):
        state.labellers = {}
    loop = state.labellers.get(root.name)
    if loop is None:
        try:
            loop = state.labellers[root.name] = Labeller(root, background=True)
        except SightlineError as e:
            raise HTTPException(400, str(e)) from None
    return root, loop


async def _work(request: Request, fn, *args) -> Any:
    """``fn(*args)`` on the CPU-work threads; the loop's refusals as their statuses: 404 a file
    waiting nowhere, 409 one labelled meanwhile or an accept while the model is unsure, 400 the
    rest (a class name not allowed), 403 a link."""
    from sightline.labelling import LabelledAlreadyError, NotWaitingError, UnsureError

    try:
        return await _settings(request).cpu_work(fn, *args)
    except PathRefusedError:
        raise
    except (LabelledAlreadyError, UnsureError) as e:
        raise HTTPException(409, str(e)) from None
    except NotWaitingError as e:
        raise HTTPException(404, str(e)) from None
    except SightlineError as e:
        raise HTTPException(400, str(e)) from None


def _status(root: Path, loop: Any) -> dict[str, Any]:
    status = loop.status()
    return {**status, "folder": root.name}  # the folder's name: never a server path


@router.get("", summary="Where labelling a folder stands", responses=errors(400, 404))
async def label_status(name: DatasetName, request: Request) -> dict[str, Any]:
    root, loop = _loop(request, name)
    return await _work(request, _status, root, loop)


@router.get(
    "/next", summary="The images to label now, with suggestions", responses=errors(400, 404)
)
async def label_next(
    name: DatasetName,
    request: Request,
    n: int = Query(20, ge=1, le=200, description="how many"),
    confident: bool = Query(False, description="the surest suggestions first (a grid to accept)"),
) -> dict[str, Any]:
    root, loop = _loop(request, name)
    batches = await _work(request, loop.next, n, confident)
    return {k: [s.to_dict() for s in v] for k, v in batches.items()} | {"folder": root.name}


class LabelRequest(JSONBody):
    labels: dict[str, str | None] = Field(
        description="file (as `next` names it) -> its class (a new name makes the class), or "
        "null: not any class (kept apart, never deleted)",
        min_length=1,
        max_length=MAX_LABELS,
        json_schema_extra={
            "propertyNames": {"maxLength": MAX_PATH},
            "additionalProperties": {
                "anyOf": [{"type": "string", **NAME_SCHEMA}, {"type": "null"}]
            },
        },
    )


@router.post(
    "", summary="Label waiting images (one undoable change)", responses=errors(400, 404, 409)
)
async def set_labels(name: DatasetName, body: LabelRequest, request: Request) -> dict[str, Any]:
    root, loop = _loop(request, name)
    if any(len(p) > MAX_PATH for p in body.labels):
        raise HTTPException(404, f"a file name over {MAX_PATH} characters: no such image waits")
    journal = await _work(request, loop.set, body.labels)
    return {
        "change": journal["id"],
        "moved": _moves(journal),
        **await _work(request, _status, root, loop),
    }


class AcceptRequest(JSONBody):
    above: float = Field(0.98, ge=0.5, le=1.0, description="calibrated probability, at least")


@router.post(
    "/accept",
    summary="Label every waiting image suggested at `above` or more (refused while unsure)",
    responses=errors(400, 404, 409),
)
async def accept(name: DatasetName, body: AcceptRequest, request: Request) -> dict[str, Any]:
    root, loop = _loop(request, name)
    journal = await _work(request, loop.accept_above, body.above)
    return {
        "change": journal["id"],
        "moved": _moves(journal),
        **await _work(request, _status, root, loop),
    }


@router.post(
    "/undo", summary="Put back the last change of the folder", responses=errors(400, 404, 409)
)
async def undo(name: DatasetName, request: Request) -> dict[str, Any]:
    root, loop = _loop(request, name)
    journal = await _work(request, loop.undo)
    if journal is None:
        raise HTTPException(409, f"nothing to undo in {root.name}")
    restored = [m["src"] for m in journal["moves"]]
    return {
        "undone": journal["id"],
        "restored": restored,
        **await _work(request, _status, root, loop),
    }


def _moves(journal: dict[str, Any]) -> list[dict[str, str]]:
    return [{"from": m["src"], "to": m["dst"]} for m in journal.get("moves", [])]


@router.get(
    "/image",
    summary="A picture of one image waiting for a label",
    response_class=Response,
    responses={**file_answer("image/png", "the picture"), **errors(400, 404, 415)},
)
async def image(
    name: DatasetName,
    request: Request,
    path: str = Query(description="the file as `next` names it", max_length=MAX_PATH),
    large: bool = Query(False, description="480 px instead of 160"),
) -> Response:
    from sightline.labelling import Pool

    root = data_folder(request, name)
    waiting = await _work(request, lambda: set(Pool.read(root).waiting))  # read now: it moves
    if path not in waiting:
        raise HTTPException(404, f"{path[:120]!r} is not an image waiting for a label")
    side = IMAGE_SIDE[1 if large else 0]
    return await file_picture(request, root, path, side, f"{path[:120]!r} cannot be read")
