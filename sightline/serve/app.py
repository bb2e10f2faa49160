"""The app factory: one FastAPI app per runs folder, used by ``serve()`` and by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from fastapi import Depends, FastAPI

from sightline._version import __version__
from sightline.devices import cpu_malloc_tuning_wanted, serving_requests
from sightline.errors import ConfigError, SightlineError
from sightline.serve.api import (
    build,
    datasets,
    exports,
    health,
    inspect,
    jobs,
    label,
    predict,
    run_files,
    runs,
    studies,
)
from sightline.serve.core import docs
from sightline.serve.core.deps import only_known_query
from sightline.serve.core.errors import API_ERRORS, JSONResponse, install_error_handlers
from sightline.serve.core.guards import AccessGuard, BodyLimit, NoFraming, check_token
from sightline.serve.core.openapi import install_openapi
from sightline.serve.core.paths import PublicPaths, ShowPublicPaths
from sightline.serve.core.settings import Settings
from sightline.serve.jobs.pool import DEFAULT_SHUTDOWN_TIMEOUT_S, JobPool
from sightline.serve.jobs.store import JobStore
from sightline.serve.services.model_cache import ENGINE_CHOICES, ModelCache
from sightline.serve.web import pages

log = logging.getLogger("sightline.serve")

DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # per request: a few phone photos
# Per image: a 48 MP phone photo is refused (24 MP is 6000 x 4000); a PNG's decode takes 3-4
# bytes a pixel at its peak, and at most data.images.LARGE_DECODES run at once.
DEFAULT_MAX_PIXELS = 24_000_000
DEFAULT_MODEL_CACHE_SIZE = 4


def create_app(
    runs_dir: str | os.PathLike | None = None,
    data_dirs: Iterable[str | os.PathLike] = (),
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    model_cache_size: int = DEFAULT_MODEL_CACHE_SIZE,
    device: str = "auto",
    allowed_hosts: Iterable[str] = (),
    max_workers: int = 1,
    start_workers: bool = True,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    engine: str = "auto",
    exclusive_jobs: bool = False,
    default_run: str | None = None,
) -> FastAPI:
    """The sightline web API for the runs in ``runs_dir`` (default ./runs or
    $SIGHTLINE_RUNS_DIR) and the image folders ``data_dirs``.

    ``token``: when set, every /api call but /api/health must send it. Without one, only
    requests addressed to this machine's loopback names (localhost, 127.0.0.1, ::1, plus
    ``allowed_hosts``) are answered. Request bodies over ``max_upload_bytes`` get 413, images
    over ``max_pixels`` are refused (415) before they are decoded; at most
    ``model_cache_size`` runs' models stay loaded.

    Training jobs (/api/jobs) run in worker processes, at most ``max_workers`` at once. The
    workers start with the app (its lifespan: ``with TestClient(app)``, or uvicorn) unless
    ``start_workers`` is False; either way, jobs left running by a server that is gone are
    marked interrupted then. At shutdown, running jobs are asked to stop (they end
    interrupted and resumable) and terminated after ``shutdown_timeout`` seconds.
    ``exclusive_jobs``: this app is one of several processes of one server (``serve(...,
    processes=N)``), of which only the holder of the runs folder's lock launches jobs
    (``job_pool``).

    ``engine``: what predictions (/api/predict) run on. "auto" (default): a run's current
    ``export/best.onnx`` (made by ``sightline export RUN``) in ONNX Runtime where that is
    installed, else PyTorch; "torch": always PyTorch; "onnx": always the export (a run without
    a current one answers 409 naming that command). Inspection (/api/inspect)
    and model summaries stay on PyTorch with either: they need the model's layers.

    ``default_run``: the run that predictions and inspections use when a request names none
    (checked here: it must exist); None: the newest run at the time of each request.
    """
    from sightline.run import default_runs_dir

    if max_upload_bytes < 1:
        raise ValueError(f"max_upload_bytes must be positive, not {max_upload_bytes}")
    from sightline.data import MAX_PIXELS

    if not 1 <= max_pixels <= MAX_PIXELS:
        raise ConfigError(
            f"max_pixels (--max-megapixels) must be from 1 to {MAX_PIXELS:,} (64 MP), not "
            f"{max_pixels:,}: sightline decodes no larger image anywhere"
        )
    if engine not in ENGINE_CHOICES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, not {engine!r}")
    if engine not in ("auto", "torch"):  # its runtime installed: at start, not at a request
        from sightline.run import require_runtime

        require_runtime(engine)
    token = check_token(token)  # a weak one fails here; "generate" makes one (serve() prints it)
    cpu_malloc_tuning_wanted()  # a bad SIGHTLINE_CPU_MALLOC fails here, not in every CPU request and job
    serving_requests()  # freed memory goes back to the system (devices.py)
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if default_run is not None:
        from sightline.run import run_id_path

        # RunNotFoundError naming the runs folder: at start, not at the first request.
        run_id_path(default_run, root)
    app = FastAPI(
        title="sightline",
        version=__version__,
        description="Classify images with trained runs, browse and delete runs, list datasets, start, "
        "watch (Server-Sent Events), stop and resume training jobs. "
        'Errors are JSON {"error": message}. Calls that change something (POST, DELETE) are '
        "refused when a browser says they come from another site's page.",
        default_response_class=JSONResponse,
        lifespan=_lifespan,
        docs_url=None,  # served by sightline.serve.core.docs from local files, not a CDN
        redoc_url=None,
    )
    for folder in data_dirs:  # a folder of datasets to build in the browser may start empty
        Path(folder).mkdir(parents=True, exist_ok=True)
    app.state.sightline = Settings(
        runs_dir=root,
        data_dirs=[Path(d) for d in data_dirs],
        max_upload_bytes=max_upload_bytes,
        max_pixels=max_pixels,
        models=ModelCache(root, model_cache_size, device, engine, default_run),
    )
    app.state.jobs = JobPool(
        JobStore(root),
        root,
        max_workers=max_workers,
        shutdown_timeout=shutdown_timeout,
        exclusive=exclusive_jobs,
    )
    app.state.start_workers = start_workers
    app.state.shutting_down = threading.Event()  # set: event streams end (see server.py)
    install_error_handlers(app)
    for module in (
        runs,
        run_files,
        exports,
        predict,
        inspect,
        datasets,
        health,
        label,
        build,
        jobs,
        studies,
    ):  # the REST API, one module a resource; a query parameter a route does not take is a 400
        app.include_router(
            module.router, dependencies=[Depends(only_known_query)], responses=API_ERRORS
        )
    install_openapi(app)  # /openapi.json as the server answers (core/openapi.py)
    app.include_router(docs.router)
    app.include_router(pages.router)  # the web UI's HTML pages and /static files
    # The last added runs first: who may call is settled before a byte of the body is read.
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(AccessGuard, token=token, allowed_hosts=allowed_hosts)
    # Outermost: refusals and errors too.
    app.add_middleware(NoFraming)
    app.add_middleware(ShowPublicPaths, paths=PublicPaths(root, [Path(d) for d in data_dirs]))
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool: JobPool = app.state.jobs
    started = False
    app.state.shutting_down.clear()
    try:
        if app.state.start_workers:
            pool.start()
            started = True
        else:
            pool.recover()
    except (
        sqlite3.Error,
        OSError,
        SightlineError,
    ) as e:  # e.g. a read-only runs folder: serve the rest
        log.error(
            "training jobs are unavailable: the job store %s cannot be used (%s)",
            pool.store.path,
            e,
        )
    try:
        yield
    finally:
        app.state.shutting_down.set()
        await asyncio.to_thread(app.state.sightline.models.close)  # the batchers' inference threads
        if started:
            await asyncio.to_thread(pool.shutdown)
