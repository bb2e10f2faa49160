"""/api/studies: the sweeps (``sightline tune``) whose study lives beside the server's runs
(``<runs>/studies.db``): list them, one study's trials and best, its figures.

Only that storage is read: a client never names a database (a study in PostgreSQL is shown by
``sightline tune --show``). A trial's run is named by its folder's name when it is one of the
server's runs (its page's link), never by its path (``sightline.sweeps.listing``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from sightline.errors import PathRefusedError, SightlineError
from sightline.fileio import read_bytes_inside
from sightline.serve.core.errors import errors
from sightline.serve.core.settings import settings_of as _settings
from sightline.sweeps import FIGURES

router = APIRouter(prefix="/api/studies")
StudyName = Annotated[
    str, PathParam(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$", description="a study's name")
]
Figure = Literal[FIGURES]  # type: ignore[valid-type]  # sightline.sweeps.listing's names


@router.get("", summary="The sweeps beside the runs, newest first")
def list_studies(request: Request) -> dict[str, Any]:
    from sightline.sweeps import list_studies

    return {"studies": list_studies(_settings(request).runs_dir)}


@router.get(
    "/{name}", summary="One sweep: its trials, the best, its figures", responses=errors(404)
)
def study_detail(name: StudyName, request: Request) -> dict[str, Any]:
    from sightline.sweeps import study_view

    try:
        return study_view(name, _settings(request).runs_dir)
    except SightlineError:
        raise HTTPException(404, f"no study {name!r} in this runs folder") from None


@router.get(
    "/{name}/figures/{figure}", summary="A sweep's figure (PNG)", responses=errors(404),
    response_class=Response,
)  # fmt: skip
def study_figure(name: StudyName, figure: Figure, request: Request) -> Response:
    from sightline.run import runs_root
    from sightline.sweeps import figure_file

    runs_dir = _settings(request).runs_dir
    try:
        data = read_bytes_inside(runs_root(runs_dir), figure_file(name, figure, runs_dir))
    except (OSError, PathRefusedError, SightlineError):
        raise HTTPException(404, f"study {name!r} has no {figure} yet") from None
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-cache"})
