"""/api/runs/{id}/exports: a run's exports, made from the run page and downloaded from it.

``POST`` starts ``Run.export`` (the formats of ``sightline export``, each checked beside PyTorch)
in a thread of the server, one export at a time per server; ``GET`` answers what the run's
export/ folder holds (``report.json``, the files to download) and how the export in progress
goes. A file is downloaded by a name the server checks against ``EXPORT_FILES`` (the run layout's), from the run's
export/ folder only, never through a symbolic link.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from sightline.errors import PathRefusedError, RunInUseError, SightlineError
from sightline.fileio import entries_inside, read_json_inside
from sightline.run import EXPORT_FORMATS, RunLayout
from sightline.serve.api.run_files import DOWNLOAD, open_run, open_run_file, send_file
from sightline.serve.core.errors import errors
from sightline.serve.core.params import RunId

router = APIRouter(prefix="/api/runs")

FormatName = Literal[tuple(EXPORT_FORMATS)]  # type: ignore[valid-type]  # run/exports.py's
# The names GET .../exports/{name} serves: the run layout's export files, nothing else.
EXPORT_FILES = frozenset(p.name for p in RunLayout(Path(".")).downloads())
_tasks: dict[str, dict[str, Any]] = {}  # run folder -> its latest export task (this process's)
_lock = threading.Lock()
_pool = ThreadPoolExecutor(1, thread_name_prefix="sightline-export")  # one export at a time


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    formats: list[FormatName] = Field(
        ["onnx"],
        min_length=1,
        max_length=len(EXPORT_FORMATS),
        description="the formats, as `sightline export --format`",
    )
    which: Literal["best", "last"] = "best"
    accept_drop: float | None = Field(
        None,
        ge=0,
        le=100,
        description="INT8: accuracy points it may lose (default: 0.5 with 99 % agreement)",
    )


def _files(run: Any) -> list[dict[str, Any]]:
    try:
        entries = entries_inside(run.path, RunLayout(run.path).export.name)
    except (PathRefusedError, OSError):
        return []
    out = []
    for name, kind in sorted(entries.items()):
        if kind == "file" and name in EXPORT_FILES:
            f = open_run_file(run, RunLayout(run.path).export / name)
            if f is not None:
                with f:
                    size = f.seek(0, 2)
                out.append({"name": name, "size_bytes": size})
    return out


def _report(run: Any) -> dict[str, Any] | None:
    try:
        return read_json_inside(run.path, RunLayout(run.path).export_report)
    except (OSError, PathRefusedError, ValueError):
        return None


@router.get(
    "/{run_id}/exports",
    summary="The run's exports, their checks and the export in progress",
    responses=errors(404),
)
def exports(run_id: RunId, request: Request) -> dict[str, Any]:
    run = open_run(request, run_id)
    with _lock:
        task = dict(_tasks[str(run.path)]) if str(run.path) in _tasks else None
    return {"formats": EXPORT_FORMATS, "report": _report(run), "files": _files(run), "task": task}


@router.post(
    "/{run_id}/exports",
    status_code=202,
    summary="Export the run (each format checked beside PyTorch); GET follows it",
    responses=errors(404, 409),
)
def start_export(run_id: RunId, body: ExportRequest, request: Request) -> dict[str, Any]:
    run = open_run(request, run_id)
    if run.status.get("status") == "running":
        raise RunInUseError(f"run {run.name!r} is training: export it once it has finished")
    if not run.model_file(body.which).is_file():
        raise HTTPException(404, f"run {run.name} has no {body.which} model to export")
    with _lock:
        if any(t["state"] == "running" for t in _tasks.values()):
            raise HTTPException(409, "an export is running on this server; try again when it ends")
        task = {"state": "running", "formats": list(body.formats), "which": body.which,
                "started": time.time(), "error": None}  # fmt: skip
        _tasks[str(run.path)] = task

    def work() -> None:
        try:
            run.export(body.formats, body.which, body.accept_drop)
            outcome = {"state": "done", "error": None}
        except SightlineError as e:
            outcome = {"state": "failed", "error": str(e)}
        except Exception as e:  # noqa: BLE001 - said on the page, the server goes on
            outcome = {"state": "failed", "error": f"{type(e).__name__}: {e}"}
        with _lock:
            task.update(outcome, ended=time.time())

    _pool.submit(work)
    return {"task": dict(task)}


@router.get(
    "/{run_id}/exports/{name}",
    summary="Download one export file (as GET .../exports lists them)",
    response_class=Response,
    responses={**DOWNLOAD, **errors(404)},
)
def download(
    run_id: RunId,
    name: Annotated[
        str,
        PathParam(
            max_length=40,
            pattern="^(?:" + "|".join(re.escape(n) for n in sorted(EXPORT_FILES)) + ")$",
            description="a file name GET .../exports lists",
        ),
    ],
    request: Request,
) -> Response:
    run = open_run(request, run_id)
    if name not in EXPORT_FILES:
        raise HTTPException(400, f"invalid export file name {name[:40]!r}")
    f = open_run_file(run, RunLayout(run.path).export / name)
    if f is None:
        have = ", ".join(x["name"] for x in _files(run)) or "none: export it first"
        raise HTTPException(404, f"run {run.name} has no export file {name!r}; it has: {have}")
    # Every file as a download (the card too): nothing here is shown inside the server's pages.
    return send_file(f, "application/octet-stream", filename=f"{run.name}-{name}")
