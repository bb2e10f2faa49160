"""``POST /api/predict``: classify uploaded images (or zip archives of them) with a run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from sightline.errors import ConfigError
from sightline.serve.core.errors import JSONResponse, error_response, errors
from sightline.serve.core.params import NUMBER_PATTERN, RunField, multipart_rule, schema
from sightline.serve.core.settings import MAX_FILES, MAX_TOP_K, Settings
from sightline.serve.core.settings import settings_of as _settings

router = APIRouter(prefix="/api")

FEW_FILES = 4  # a request of at most this many images has their headers read on the event loop
# Larger images (photos) are decoded on the CPU-work threads, smaller ones in the batcher's
# thread with the forward pass (services/batcher.py, services/cpu_work.py).
SMALL_IMAGE_PIXELS = 256 * 256


@router.post(
    "/predict",
    summary="Classify uploaded images (or zip archives of images) with a run",
    responses=errors(404, 409, 415),
    # at least one image, as `files` or as `file` (each a list of at least one)
    openapi_extra=multipart_rule({"anyOf": [{"required": ["files"]}, {"required": ["file"]}]}),
)
async def predict(
    request: Request,
    files: Annotated[
        list[UploadFile] | None,
        File(
            description="image files, or zip archives of images (at most 1,000 files and "
            "--max-upload-mb a request: GET /api/health says both)",
            **schema(minItems=1, maxItems=MAX_FILES),
        ),
    ] = None,
    file: Annotated[
        list[UploadFile] | None,
        File(
            description="the same as files: /api/inspect's name",
            **schema(minItems=1, maxItems=MAX_FILES),
        ),
    ] = None,
    run: RunField = None,
    k: Annotated[
        int, Form(ge=1, le=MAX_TOP_K, description="how many classes to return per image")
    ] = 3,
    thumbnails: Annotated[
        bool, Form(description="add each image as the model saw it (PNG data URI, side ≤ 64)")
    ] = False,
    unknown: Annotated[
        str,
        Form(
            description="answer 'unknown' for an image unlike the run's training images: auto "
            "(the run's threshold), off, or a threshold on ood_score (a number: 400 for a run "
            "without one)",
            **schema(pattern=f"^(?:auto|off|{NUMBER_PATTERN})$"),
        ),
    ] = "auto",
) -> Any:
    """Per uploaded file, in upload order (a zip archive: per member, named
    ``archive.zip/member/path``): its label, class index and top-k probabilities, or the reason
    it could not be read. Bad files never stop the others.

    Status: 200 when at least one image was classified (bad ones listed with their error);
    415 when none could be — a request of only non-images is the client's mistake, and a
    client that sent one file should not have to look inside a 200 to learn that it failed;
    413 for an archive over the limits (``uploads.py``), of which nothing is classified."""
    from sightline.serve.services.uploads import ArchiveTooLarge, is_zip

    uploads = [*(files or []), *(file or [])]
    if not uploads:
        return error_response(422, "invalid request: files: send at least one image as 'files'")
    settings = _settings(request)
    # Its forward passes are shared with other requests. Loading it reads files: a thread's work.
    loaded = settings.models.cached_predictor(run or None) or await settings.cpu_work(
        settings.models.predictor, run or None
    )
    try:  # before anything is read: a bad rule (or a threshold for a run with no score) is a 400
        threshold = loaded.threshold(unknown)
    except ConfigError as e:
        return error_response(400, f"invalid request: unknown: {e}")
    # BodyLimit has bounded the request, so reading each part whole is bounded too.
    raw = [
        ((f.filename or f"upload-{i + 1}")[:255], await f.read(settings.max_upload_bytes + 1))
        for i, f in enumerate(uploads)
    ]
    # A few images are checked right here: a thread's hop costs more than reading their
    # headers. Many, or an archive to expand, are a thread's work.
    few = len(raw) <= FEW_FILES and not any(is_zip(data) for _, data in raw)
    try:
        items = (
            _uploaded_images(raw, settings)
            if few
            else await settings.cpu_work(_uploaded_images, raw, settings)
        )
    except ArchiveTooLarge as e:
        return error_response(413, str(e))
    readable = [(str(i), item.data) for i, item in enumerate(items) if item.data is not None]
    large = {str(i) for i, item in enumerate(items) if item.pixels > SMALL_IMAGE_PIXELS}
    report = await loaded.predict_images_async(
        readable,
        top_k=k,
        keep_seen=thumbnails,
        large=large,
        work=settings.cpu_work,
        unknown=unknown,
    )
    # Thumbnails are PNG encodes: a thread's work, not the event loop's.
    results = (
        await settings.cpu_work(_results, items, report, True)
        if thumbnails
        else (_results(items, report, False))
    )
    if not report.predictions:
        reasons = "; ".join(f"{r['file']}: {r['error']}" for r in results[:5]) or "no files"
        return error_response(
            415, f"no image could be classified: {reasons}", run=loaded.name, results=results
        )
    # A response, not a dict: FastAPI would first copy the dict through jsonable_encoder, which
    # cost the event loop ~0.3 ms a request under load; these are plain JSON types already.
    return JSONResponse({"run": loaded.name, "engine": loaded.engine, "results": results,
                         "unknown_threshold": threshold})  # fmt: skip


def _uploaded_images(raw: list[tuple[str, bytes]], settings: Settings) -> list[Any]:
    """The uploads as images (a zip archive: its members), each checked against the server's
    pixel limit from its header, before anything decodes."""
    from sightline.data import image_size
    from sightline.errors import ImageError
    from sightline.serve.services.uploads import expand_uploads

    items = expand_uploads(raw, settings.max_upload_bytes)
    for item in items:
        if item.data is not None:
            try:
                w, h = image_size(item.data, item.name, settings.max_pixels)
                item.pixels = w * h
            except ImageError as e:
                item.data, item.error = None, e.reason
    return items


def _results(items: list[Any], report: Any, thumbnails: bool) -> list[dict[str, Any]]:
    """One answer per upload, in upload order: its prediction or why it has none."""
    from sightline.serve.services.images import data_uri, thumbnail

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
        if p.ood_score is not None:  # the "none of these" answer (infer/ood.py)
            row.update(ood_score=p.ood_score, unknown=p.unknown, closest=p.closest)
        if thumbnails and p.seen is not None:
            row["thumbnail"] = data_uri(thumbnail(p.seen))
        results[int(p.path)] = row
    for key, reason in report.skipped:
        results[int(key)] = {"file": items[int(key)].name, "error": reason}
    return results
