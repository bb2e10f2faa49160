"""The /api endpoints: thin calls into the Python API, answered as JSON.

Every endpoint is a plain ``def``: FastAPI runs those in its thread pool, so file reads,
checkpoint loads and forward passes never block the event loop (nor the other requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from sightline._version import __version__
from sightline.errors import SightlineError
from sightline.serve.errors import error_response
from sightline.serve.model_cache import ModelCache

router = APIRouter(prefix="/api")
MAX_TOP_K = 100


@dataclass
class Settings:
    """What every request needs: ``app.state.sightline``."""

    runs_dir: Path
    data_dirs: list[Path]
    max_upload_bytes: int
    models: ModelCache


def _settings(request: Request) -> Settings:
    return request.app.state.sightline


@router.get("/health", summary="Is the server up")
def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "runs_dir": str(_settings(request).runs_dir.resolve())}


@router.get("/runs", summary="All runs, newest first (damaged ones with their problem)")
def list_all_runs(request: Request) -> dict[str, Any]:
    from sightline.runs import list_runs

    # links=False: only runs a client can then open and delete by name, and no paths outside
    return {"runs": [run.to_dict() for run in list_runs(_settings(request).runs_dir, links=False)]}


@router.get("/runs/{run_id}", summary="One run: summary, metrics per epoch, evaluation, classes, configuration")
def run_detail(run_id: str, request: Request) -> dict[str, Any]:
    from sightline.runs import Run, run_id_path

    run = Run(run_id_path(run_id, _settings(request).runs_dir), strict=False)
    out = run.to_dict()
    out["config"] = run.config
    out["status_detail"] = run.status
    if run.problem:
        return {**out, "history": [], "evaluation": None, "classes": None}
    try:
        out["history"] = run.history
    except (OSError, ValueError) as e:  # a damaged metrics.csv must not hide the rest
        out["history"], out["history_error"] = [], f"metrics.csv is unreadable ({e})"
    out["evaluation"] = run.evaluation
    try:
        out["classes"] = run.classes
    except SightlineError:  # no checkpoint yet: the classes the run was asked to train on
        out["classes"] = run.config.get("data", {}).get("classes")
    return out


@router.delete("/runs/{run_id}", summary="Delete a run (not while it trains)")
def delete_one_run(run_id: str, request: Request) -> dict[str, Any]:
    from sightline.runs import delete_run

    settings = _settings(request)
    delete_run(run_id, settings.runs_dir)
    settings.models.evict(run_id)
    return {"deleted": run_id}


@router.post("/predict", summary="Classify uploaded images with a run")
def predict(
    request: Request,
    files: Annotated[list[UploadFile], File(description="one or more image files")],
    run: Annotated[str | None, Form(description="run name (default: the newest run)")] = None,
    k: Annotated[int, Form(ge=1, le=MAX_TOP_K, description="how many classes to return per image")] = 3,
) -> Any:
    """Per uploaded file, in upload order: its label, class index and top-k probabilities, or
    the reason it could not be read. Bad files never stop the others.

    Status: 200 when at least one image was classified (bad ones listed with their error);
    415 when none could be — a request of only non-images is the client's mistake, and a
    client that sent one file should not have to look inside a 200 to learn that it failed."""
    settings = _settings(request)
    loaded = settings.models.get(run or None)
    uploads = []
    for i, f in enumerate(files):
        # BodyLimit has bounded the request, so reading each part whole is bounded too.
        uploads.append((str(i), f.file.read(settings.max_upload_bytes + 1)))
    report = loaded.predict_images(uploads, top_k=k, device=settings.models.device)
    names = [(f.filename or f"upload-{i + 1}")[:255] for i, f in enumerate(files)]
    results: list[dict[str, Any]] = [{} for _ in files]
    for p in report.predictions:
        row = {"file": names[int(p.path)], "label": p.label, "index": p.index, "confidence": p.confidence,
               "top_k": [{"label": label, "probability": prob} for label, prob in p.top]}  # fmt: skip
        results[int(p.path)] = {**row, "note": p.note} if p.note else row
    for key, reason in report.skipped:
        results[int(key)] = {"file": names[int(key)], "error": reason}
    if not report.predictions:
        reasons = "; ".join(f"{r['file']}: {r['error']}" for r in results[:5])
        return error_response(415, f"no image could be classified: {reasons}", run=loaded.name, results=results)
    return {"run": loaded.name, "results": results}


@router.get("/datasets", summary="Built-in datasets and the image folders given with --data-dir")
def datasets(request: Request) -> dict[str, Any]:
    from sightline.data import dataset_info, folder_info, list_datasets

    keys = ("name", "description", "classes", "shape", "train", "test", "cached", "mirrored")
    builtin = [{k: info[k] for k in keys} for info in map(dataset_info, list_datasets())]
    folders = []
    for folder in _settings(request).data_dirs:
        try:
            folders.append(folder_info(folder))
        except (SightlineError, OSError) as e:  # a folder that went away: say so, list the rest
            folders.append({"name": folder.name, "path": str(folder.resolve()), "error": str(e)})
    return {"builtin": builtin, "folders": folders}
