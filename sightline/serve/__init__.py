"""``sightline serve``: the REST API (and, later, the web pages) on FastAPI + uvicorn.

A face like the CLI: it parses requests, calls the Python API (``sightline.run``,
``sightline.infer.predict``, ``sightline.data``) and formats JSON. Nothing outside this package
imports it, and only this package imports FastAPI and uvicorn, which come with
``pip install "sightline[serve]"``: the names below are imported on first use, after checking
that those packages are there, so a missing one is a clear ``SightlineError``, not an
``ImportError`` from deep inside.

>>> from sightline.serve import create_app     # an ASGI app: tests, or any ASGI server
>>> from sightline.serve import serve          # uvicorn on 127.0.0.1:8000
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from sightline.errors import SightlineError

INSTALL_HINT = 'pip install "sightline[serve]"'
# import name → the distribution that provides it
REQUIRED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}

_EXPORTS = {"create_app": "sightline.serve.app", "serve": "sightline.serve.server"}

if TYPE_CHECKING:
    from sightline.serve.app import create_app
    from sightline.serve.server import serve

__all__ = ["INSTALL_HINT", "create_app", "require_server_packages", "serve"]


def _missing_packages() -> list[str]:
    missing = []
    for module, dist in REQUIRED.items():
        # python-multipart < 0.0.13 has only the "multipart" import name
        names = (module, "multipart") if module == "python_multipart" else (module,)
        if all(importlib.util.find_spec(n) is None for n in names):
            missing.append(dist)
    return missing


def require_server_packages() -> None:
    """Raise ``SightlineError`` naming the install command when a server package is missing."""
    missing = _missing_packages()
    if missing:
        raise SightlineError(
            f"the web server needs {', '.join(missing)}, which are not installed: {INSTALL_HINT}"
        )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_server_packages()
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *globals()})
