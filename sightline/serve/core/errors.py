"""Every answer that is not a success is JSON ``{"error": message}`` with a fitting status.

Exception handlers turn sightline's own errors (whose messages are written for users), FastAPI's
validation errors, Starlette's HTTP errors (unknown route, wrong method) and any unexpected
exception into that shape, so no traceback and no HTML page ever reaches a client. The guards
in ``guards.py`` answer with ``error_response`` directly.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse as _StarletteJSONResponse
from starlette.routing import Match

from sightline.errors import (
    ImageError,
    NotExportedError,
    PathRefusedError,
    RunInUseError,
    RunNotFoundError,
    SightlineError,
)
from sightline.serve.core.jsonable import finite
from sightline.serve.core.paths import public_text
from sightline.serve.jobs.job import JobNotFoundError, JobStateError

log = logging.getLogger("sightline.serve")

# First match wins: subclasses before their bases.
STATUS_OF_ERROR: list[tuple[type[SightlineError], int]] = [
    (RunNotFoundError, 404),
    (JobNotFoundError, 404),
    (RunInUseError, 409),
    (NotExportedError, 409),  # serving with --engine onnx a run not exported (or since retrained)
    (JobStateError, 409),  # stop an ended job, resume a running one
    (ImageError, 415),
    (PathRefusedError, 403),  # a symbolic link (or '..') inside the runs or a data folder
    (SightlineError, 400),  # bad input: an invalid run id, a broken run, a bad option
]


class ErrorBody(BaseModel):
    """Every answer that is not a success (the OpenAPI schema's error responses)."""

    model_config = ConfigDict(extra="allow")  # a few say more: /api/predict's 415 its results
    error: str = Field(description="what went wrong, written for a person")


# What each error status means in this API, for the OpenAPI schema: a route lists the ones it
# answers (``errors(404, 409)``); ``API_ERRORS`` are those any /api route may answer (app.py).
ERROR_MEANINGS: dict[int, str] = {
    400: "Bad request: an invalid id or name (the message says what is allowed), an unknown "
    "query parameter, a bad Content-Length, or a request this server cannot carry out as asked",
    401: "No token sent: the server was started with --token",
    403: "Refused: a wrong token, a Host that is not this machine (without a token), a call "
    "from another site's page, or a symbolic link where a file or folder was expected",
    404: "Not found: no run, job, dataset, class or file of that name",
    409: "Conflict with the current state: e.g. a run that is training, a job that has ended, "
    "a folder not checked yet, nothing to undo",
    413: "Request too large: over the server's --max-upload-mb (GET /api/health says the "
    "limit), or an archive over its member limits",
    415: "Not an image that can be read (the message, or each file's error, says why)",
    422: "Invalid request: a field missing, or of the wrong type or out of its range",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` for these error statuses: each an ``ErrorBody``."""
    return {
        status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]} for status in statuses
    }


def file_answer(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a route that answers a file (a picture, a report, a
    download) rather than JSON."""
    return {200: {"content": {media_type: {}}, "description": description}}


API_ERRORS = errors(400, 401, 403, 413)  # query, Content-Length, token, host, CSRF, body limit


class JSONResponse(_StarletteJSONResponse):
    """Strict JSON (NaN → null), UTF-8 as is, server paths made public (core/paths.py): the
    app's default response class."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            finite(content, public_text()),
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        ).encode("utf-8")


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def status_of(error: SightlineError) -> int:
    return next(code for cls, code in STATUS_OF_ERROR if isinstance(error, cls))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(
            str(p)
            for p in err.get("loc", ())
            if p not in ("body", "query", "path", "header", "form")
        )
        parts.append(
            f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))
        )
    return "invalid request: " + "; ".join(parts)


def _wants_a_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a script's JSON)."""
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app takes at the request's path, as the router itself
    matches it. Starlette's 405 names only the first route's: ``Allow: GET`` for
    /api/runs/{id}, which also takes DELETE."""
    drop = ("fastapi", "route", "endpoint", "path_params")
    scope = {k: v for k, v in request.scope.items() if k not in drop}
    return [
        method
        for method in METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SightlineError)
    async def sightline_error(request: Request, exc: SightlineError) -> JSONResponse:
        return error_response(status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and _wants_a_page(request):  # a person's typo, in a browser
            from sightline.serve.web.pages import missing_page  # the site's nav, as every page

            return missing_page()
        if exc.status_code == 404 and message == "Not Found":
            message = (
                f"no such endpoint: {request.url.path} (the API is described at /openapi.json)"
            )
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The details (and the traceback) go to the server's log, not to the client.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(
            500, f"internal server error ({type(exc).__name__}); the server log has the details"
        )
