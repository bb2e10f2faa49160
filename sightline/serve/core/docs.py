"""The interactive API docs at /docs, served from the package: Swagger UI 5's files come from
the ``fastapi-swagger`` wheel (part of the ``serve`` extra), so the page works offline.
FastAPI's own /docs loads them from a CDN and is blank on a machine without internet; Swagger
UI 4 (the ``swagger-ui-bundle`` wheel) cannot read the OpenAPI 3.1 schema FastAPI writes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from sightline.serve.core.errors import error_response

router = APIRouter(include_in_schema=False)
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# Swagger UI builds the page with an inline script and inline styles: its own, looser policy.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)


def _assets_dir() -> Path | None:
    import importlib.resources
    import importlib.util

    if importlib.util.find_spec("fastapi_swagger") is None:
        return None
    return Path(str(importlib.resources.files("fastapi_swagger") / "resources"))


@router.get("/docs")
def docs(request: Request) -> Response:
    if _assets_dir() is None:
        return HTMLResponse(
            "<!doctype html><title>sightline API</title><p>The interactive docs need the "
            '<code>fastapi-swagger</code> package: <code>pip install "sightline[serve]"</code>. '
            'The schema is at <a href="/openapi.json">/openapi.json</a>.</p>',
            status_code=503,
        )
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title="sightline API",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/docs-assets/favicon-32x32.png",
    )
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@router.get("/docs-assets/{name}")
def docs_asset(name: str) -> Response:
    folder = _assets_dir()
    if (
        folder is None or name not in ASSETS or not (folder / name).is_file()
    ):  # a fixed list: never a client's path
        return error_response(404, f"no such file {name[:80]!r}")
    return FileResponse(
        folder / name, media_type=ASSETS[name], headers={"Cache-Control": "max-age=86400"}
    )
