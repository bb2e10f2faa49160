"""The app factory: one FastAPI app per runs folder, used by ``serve()`` and by the tests."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI

from sightline._version import __version__
from sightline.serve.errors import JSONResponse, install_error_handlers
from sightline.serve.guards import AccessGuard, BodyLimit
from sightline.serve.model_cache import ModelCache
from sightline.serve.routes import Settings, router

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # per request: a few phone photos
DEFAULT_MODEL_CACHE_SIZE = 4


def create_app(
    runs_dir: str | os.PathLike | None = None,
    data_dirs: Iterable[str | os.PathLike] = (),
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    model_cache_size: int = DEFAULT_MODEL_CACHE_SIZE,
    device: str = "auto",
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The sightline web API for the runs in ``runs_dir`` (default ./runs or
    $SIGHTLINE_RUNS_DIR) and the image folders ``data_dirs``.

    ``token``: when set, every /api call but /api/health must send it. Without one, only
    requests addressed to this machine's loopback names (localhost, 127.0.0.1, ::1, plus
    ``allowed_hosts``) are answered. Request bodies over ``max_upload_bytes`` get 413; at most
    ``model_cache_size`` runs' models stay loaded.
    """
    from sightline.runs import default_runs_dir

    if max_upload_bytes < 1:
        raise ValueError(f"max_upload_bytes must be positive, not {max_upload_bytes}")
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    app = FastAPI(
        title="sightline",
        version=__version__,
        description="Classify images with trained runs, browse and delete runs, list datasets. "
        "Errors are JSON {\"error\": message}. Calls that change something (POST, DELETE) need "
        "the header 'X-Sightline-Request: 1'.",
        default_response_class=JSONResponse,
    )
    app.state.sightline = Settings(
        runs_dir=root,
        data_dirs=[Path(d) for d in data_dirs],
        max_upload_bytes=max_upload_bytes,
        models=ModelCache(root, model_cache_size, device),
    )
    install_error_handlers(app)
    app.include_router(router)
    # The last added runs first: who may call is settled before a byte of the body is read.
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(AccessGuard, token=token or None, allowed_hosts=allowed_hosts)
    return app
