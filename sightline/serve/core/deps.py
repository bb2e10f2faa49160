"""Dependencies every API route shares (the FastAPI template's ``deps.py``)."""

from __future__ import annotations

from fastapi import HTTPException, Request


def only_known_query(request: Request) -> None:
    """400 for a query parameter the route does not take: ``POST /api/predict?k=5`` used to be
    answered with the default k, as if the client had not asked."""
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
