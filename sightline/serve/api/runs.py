"""The /api endpoints: thin calls into the Python API, answered as JSON.

Every endpoint is a plain ``def``: FastAPI runs those in its thread pool, so file reads,
checkpoint loads and forward passes never block the event loop (nor the other requests).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from sightline._version import __version__
from sightline.errors import SightlineError
from sightline.serve.api.run_files import run_extras
from sightline.serve.core.errors import JSONResponse, error_response
from sightline.serve.core.settings import MAX_TOP_K
from sightline.serve.core.settings import settings_of as _settings

router = APIRouter(prefix="/api")


@router.get("/health", summary="Is the server up")
def health(request: Request) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "runs_dir": str(_settings(request).runs_dir.resolve()),
    }


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
)
def run_detail(run_id: str, request: Request) -> dict[str, Any]:
    from sightline.run import Run, run_id_path

    run = Run(run_id_path(run_id, _settings(request).runs_dir), strict=False)
    out = run.to_dict()
    out["config"] = run.config
    out["status_detail"] = run.status
    if run.problem:
        return {**out, **run_extras(run, None), "history": [], "evaluation": None, "classes": None}
    evaluation = run.evaluation  # one read of the saved evaluation for the whole answer
    out.update(run_extras(run, evaluation))
    try:
        out["history"] = run.history
    except (OSError, ValueError) as e:  # a damaged metrics.csv must not hide the rest
        out["history"], out["history_error"] = [], f"metrics.csv is unreadable ({e})"
    out["evaluation"] = evaluation
    try:
        out["classes"] = run.classes
    except SightlineError:  # no checkpoint yet: the classes the run was asked to train on
        out["classes"] = run.config.get("data", {}).get("classes")
    return out


@router.delete("/runs/{run_id}", summary="Delete a run (not while it trains)")
def delete_one_run(run_id: str, request: Request) -> dict[str, Any]:
    from sightline.run import delete_run

    settings = _settings(request)
    delete_run(run_id, settings.runs_dir)
    settings.models.evict(run_id)
    settings.test_splits.evict(run_id)
    return {"deleted": run_id}


@router.post("/predict", summary="Classify uploaded images (or zip archives of images) with a run")
def predict(
    request: Request,
    files: Annotated[list[UploadFile], File(description="image files, or zip archives of images")],
    run: Annotated[
        str | None,
        Form(
            description="run name (default: the run the server was started with, `serve --run`, else the newest)"
        ),
    ] = None,
    k: Annotated[
        int, Form(ge=1, le=MAX_TOP_K, description="how many classes to return per image")
    ] = 3,
    thumbnails: Annotated[
        bool, Form(description="add each image as the model saw it (PNG data URI, side ≤ 64)")
    ] = False,
) -> Any:
    """Per uploaded file, in upload order (a zip archive: per member, named
    ``archive.zip/member/path``): its label, class index and top-k probabilities, or the reason
    it could not be read. Bad files never stop the others.

    Status: 200 when at least one image was classified (bad ones listed with their error);
    415 when none could be — a request of only non-images is the client's mistake, and a
    client that sent one file should not have to look inside a 200 to learn that it failed;
    413 for an archive over the limits (``uploads.py``), of which nothing is classified."""
    from sightline.serve.services.images import data_uri, thumbnail
    from sightline.serve.services.uploads import ArchiveTooLarge, expand_uploads

    settings = _settings(request)
    loaded = settings.models.predictor(
        run or None
    )  # its forward passes are shared with other requests
    # BodyLimit has bounded the request, so reading each part whole is bounded too.
    raw = [
        ((f.filename or f"upload-{i + 1}")[:255], f.file.read(settings.max_upload_bytes + 1))
        for i, f in enumerate(files)
    ]
    try:
        items = expand_uploads(raw, settings.max_upload_bytes)
    except ArchiveTooLarge as e:
        return error_response(413, str(e))
    readable = [(str(i), item.data) for i, item in enumerate(items) if item.data is not None]
    report = loaded.predict_images(readable, top_k=k, keep_seen=thumbnails)
    results: list[dict[str, Any]] = [{"file": item.name, "error": item.error} for item in items]
    for p in report.predictions:
        row = {
            "file": items[int(p.path)].name,
            "label": p.label,
            "index": p.index,
            "confidence": p.confidence,
            "top_k": [{"label": label, "probability": prob} for label, prob in p.top],
        }
        if p.note:
            row["note"] = p.note
        if thumbnails and p.seen is not None:
            row["thumbnail"] = data_uri(thumbnail(p.seen))
        results[int(p.path)] = row
    for key, reason in report.skipped:
        results[int(key)] = {"file": items[int(key)].name, "error": reason}
    if not report.predictions:
        reasons = "; ".join(f"{r['file']}: {r['error']}" for r in results[:5]) or "no files"
        return error_response(
            415, f"no image could be classified: {reasons}", run=loaded.name, results=results
        )
    # A response, not a dict: FastAPI would first copy the dict through jsonable_encoder, which
    # cost the event loop ~0.3 ms a request under load; these are plain JSON types already.
    return JSONResponse({"run": loaded.name, "results": results})


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
