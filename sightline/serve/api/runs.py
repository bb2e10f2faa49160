"""/api/health and /api/runs: the server, and the runs it serves (list, one run, delete).

Every endpoint is a plain ``def``: FastAPI runs those in its thread pool, so file reads,
checkpoint loads and forward passes never block the event loop (nor the other requests).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sightline._version import __version__
from sightline.errors import PathRefusedError, SightlineError
from sightline.serve.api.run_files import run_extras
from sightline.serve.core.errors import errors
from sightline.serve.core.params import RunId
from sightline.serve.core.settings import MAX_FILES
from sightline.serve.core.settings import settings_of as _settings

router = APIRouter(prefix="/api")


@router.get("/health", summary="Is the server up")
def health(request: Request) -> dict[str, Any]:
    # Open without a token (a load balancer's probe): nothing about the server's files; the
    # limits, so a client (the Classify many page) can split a large selection into requests.
    settings = _settings(request)
    limits = {
        "max_upload_bytes": settings.max_upload_bytes,
        "max_pixels": settings.max_pixels,
        "max_files": MAX_FILES,
    }
    return {"status": "ok", "version": __version__, "limits": limits}


@router.get("/runs", summary="All runs, newest first (damaged ones with their problem)")
def list_all_runs(request: Request) -> dict[str, Any]:
    from sightline.run import list_runs

    # links=False: only runs a client can then open and delete by name, and no paths outside
    runs = [run.to_dict() for run in list_runs(_settings(request).runs_dir, links=False)]
    # default_run: what a request that names no run uses (`serve --run`; null: the newest).
    return {"runs": runs, "default_run": _settings(request).models.default_run}


@router.get(
    "/runs/{run_id}",
    summary="One run: summary, metrics per epoch, evaluation, classes, configuration",
    responses=errors(404),
)
def run_detail(run_id: RunId, request: Request) -> dict[str, Any]:
    from sightline.run import Run, run_id_path

    run = Run(run_id_path(run_id, _settings(request).runs_dir), strict=False)
    out = run.to_dict()
    out["config"] = run.config
    # Which process on which machine trains it is the server's business, not the client's.
    out["status_detail"] = {k: v for k, v in run.status.items() if k != "process"}
    if run.problem:
        return {**out, **run_extras(run, None), "history": [], "evaluation": None, "classes": None}
    evaluation = run.evaluation  # one read of the saved evaluation for the whole answer
    out.update(run_extras(run, evaluation))
    try:
        out["history"] = run.history
    except (OSError, ValueError) as e:  # a damaged metrics.csv must not hide the rest
        out["history"], out["history_error"] = [], f"metrics.csv is unreadable ({e})"
    except PathRefusedError as e:  # a symbolic link: refused, and said so
        out["history"], out["history_error"] = [], str(e)
    out["evaluation"] = evaluation
    out["study"] = run.study  # a sweep's trial: its study's name and number
    try:  # whether its probabilities go through a calibrator (the Classify page says so)
        out["calibrated"] = not run.calibrator().identity
    except (SightlineError, OSError):  # no model file yet
        out["calibrated"] = None
    try:
        out["classes"] = run.classes
    except SightlineError:  # no checkpoint yet: the classes the run was asked to train on
        out["classes"] = run.config.get("data", {}).get("classes")
    return out


@router.delete(
    "/runs/{run_id}", summary="Delete a run (not while it trains)", responses=errors(404, 409)
)
def delete_one_run(run_id: RunId, request: Request) -> dict[str, Any]:
    from sightline.run import delete_run

    settings = _settings(request)
    delete_run(run_id, settings.runs_dir)
    settings.models.evict(run_id)
    settings.test_splits.evict(run_id)
    return {"deleted": run_id}
