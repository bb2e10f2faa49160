"""The OpenAPI schema (``/openapi.json``) as this server answers, where FastAPI's own says
otherwise in every route the same way:

* An optional query, header or form field is left out, never sent as null: HTTP has no null
  (``?state=null`` is the text "null"). FastAPI writes ``str | None`` as "a string or null".
* A validation error is ``{"error": message}`` (``core.errors``), not FastAPI's
  ``{"detail": [...]}``.
* A request body states this server's limits (``--max-upload-mb``, ``--max-megapixels``): they
  are set when it starts, not in the code.

What differs per route (its patterns, limits and error answers) is declared at the route, with
``core.params`` and ``core.errors.errors``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    """``app.openapi`` (what /openapi.json serves): FastAPI's schema (made again when the
    routes change), amended once by ``amend`` with the app's settings."""
    made = app.openapi
    amended: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal amended
        schema = made()
        if schema is not amended:
            amended = amend(schema, app.state.sightline)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def amend(schema: dict[str, Any], settings: Any) -> dict[str, Any]:
    """FastAPI's ``schema``, changed in place as the module's docstring says, for a server of
    ``settings`` (``core.settings.Settings``)."""
    from sightline.serve.core.errors import ERROR_MEANINGS, ErrorBody

    components = schema.setdefault("components", {}).setdefault("schemas", {})
    limit = (
        f"At most {settings.max_upload_bytes:,} bytes a request (--max-upload-mb): a larger "
        "one is refused (413) before it is read."
    )
    for operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if "schema" in parameter:
                parameter["schema"] = without_null(parameter["schema"])
        body = operation.get("requestBody")
        if body is not None:
            body["description"] = limit
        for media_type, content in (body or {}).get("content", {}).items():
            if media_type in FORM_TYPES:
                _form_fields_without_null(content.get("schema", {}), components)
                body["description"] = (
                    f"{limit} Each image at most {settings.max_pixels:,} pixels "
                    "(--max-megapixels): a larger one is refused unread, with the reason."
                )
        invalid = operation.get("responses", {}).get("422")
        if invalid is not None:
            invalid["description"] = ERROR_MEANINGS[422]
            invalid["content"] = {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
            }
    for name in _VALIDATION_SCHEMAS:
        components.pop(name, None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    return schema


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in schema.get("paths", {}).values() for op in item.values()
            if isinstance(op, dict)]  # fmt: skip


def _form_fields_without_null(body: dict[str, Any], components: dict[str, Any]) -> None:
    ref = body.get("$ref", "")
    target = components.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/components/") else body
    for name, field in (target or {}).get("properties", {}).items():
        target["properties"][name] = without_null(field)


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``{"type": "null"}`` alternative: ``{"anyOf": [X, null], ...}``
    becomes X with the rest of ``schema`` (its title, description, default...)."""
    alternatives = schema.get("anyOf")
    if not isinstance(alternatives, list):
        return schema
    rest = [a for a in alternatives if a != {"type": "null"}]
    if len(rest) == len(alternatives):
        return schema
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(rest) == 1:
        return {**rest[0], **out}
    return {**out, "anyOf": rest}
