"""Dependencies every API route shares (the FastAPI template's ``deps.py``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException, Request

from sightline.serve.core.settings import settings_of


async def only_known_query(request: Request) -> None:
    """400 for a query parameter the route does not take: ``POST /api/predict?k=5`` used to be
    answered with the default k, as if the client had not asked. A coroutine: FastAPI runs a
    plain function dependency on a worker thread, a hop per request that cost more than this."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    known = {p.alias for p in dependant.query_params}
    unknown = sorted(set(request.query_params) - known)
    if not unknown:
        return
    takes = ", ".join(sorted(known)) or "no query parameters"
    fields = sorted({p.alias for p in dependant.body_params})
    where = f"; its form fields: {', '.join(fields)}" if fields else ""
    raise HTTPException(
        400,
        f"unknown query parameter {', '.join(map(repr, unknown))}: {request.url.path} takes "
        f"{takes}{where}",
    )


def data_folder(request: Request, name: str) -> Path:
    """The --data-dir folder called ``name`` (the client names it; the server knows where it is).
    A dataset that is a symbolic link in a folder of datasets is refused (403: ``checked``)."""
    settings = settings_of(request)
    folders = settings.datasets()
    for folder in folders:
        if name in (folder.name, folder.resolve().name):
            return settings.checked(folder)
    known = (
        ", ".join(f.resolve().name for f in folders)
        or "none (start the server with --data-dir FOLDER)"
    )
    raise HTTPException(
        404, f"no data folder named {name[:80]!r}; the server's folders are: {known}"
    )
