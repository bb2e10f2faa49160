"""Building a dataset in the browser (Teachable Machine's flow, on disk, without a size limit):
POST /api/datasets/folder makes a new dataset in a --data-dir that is a folder of datasets;
.../classes adds a class, .../classes/{class}/rename renames one, .../classes/{class}/images
adds uploaded images (files, a zip, webcam frames) to one. A face over
``sightline.data.builder``: names sanitised there, every image decoded before it is kept, and
no upload ever replaces a file. Sizes are bounded as for predictions: the request body, the
pixels of each image, the members of a zip. A dataset, split or class folder that is a symbolic
link is refused (403, ``PathRefusedError``): nothing is written through one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sightline.errors import PathRefusedError, SightlineError
from sightline.serve.core.deps import data_folder
from sightline.serve.core.settings import settings_of as _settings

router = APIRouter(prefix="/api/datasets/folder")


class NameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="letters, digits, spaces, '-', '_' or '.' (1-64)")


class NewDataset(NameRequest):
    collection: str | None = Field(
        None,
        description="the --data-dir folder to make it in (default: the first that can hold datasets)",
    )


def counts(root: Path) -> dict[str, int]:
    """Images per class of a dataset's training folder (class folders with none included)."""
    from sightline.data.folders import find_splits, scan_class_folders

    return {c: len(files) for c, files in scan_class_folders(find_splits(root)["train"]).items()}


def _answer(root: Path, **extra: Any) -> dict[str, Any]:
    return {"name": root.name, "classes": counts(root), **extra}


@router.post("", status_code=201, summary="Make a new, empty dataset folder")
def create_dataset(body: NewDataset, request: Request) -> dict[str, Any]:
    from sightline.data.builder import new_dataset

    collections = _settings(request).collections()
    if body.collection is not None:
        collections = [c for c in collections if c.name == body.collection]
    if not collections:
        raise HTTPException(409, "no folder to make datasets in: start the server with "
                            "--data-dir FOLDER, a folder of datasets (created if missing)")  # fmt: skip
    try:
        return _answer(new_dataset(collections[0], body.name))
    except SightlineError as e:
        raise HTTPException(400, str(e)) from None


@router.get("/{name}/classes", summary="A dataset folder's classes and their training images")
def classes(name: str, request: Request) -> dict[str, Any]:
    return _answer(data_folder(request, name))


@router.post("/{name}/classes", status_code=201, summary="Add a class to a dataset folder")
def add_class(name: str, body: NameRequest, request: Request) -> dict[str, Any]:
    from sightline.data.builder import class_folder

    root = data_folder(request, name)
    try:
        class_folder(root, body.name, create=True)
    except PathRefusedError:
        raise  # 403: a link, refused
    except SightlineError as e:
        raise HTTPException(400, str(e)) from None
    return _answer(root)


@router.post("/{name}/classes/{cls}/rename", summary="Rename a class (in every split)")
def rename(name: str, cls: str, body: NameRequest, request: Request) -> dict[str, Any]:
    from sightline.data.builder import rename_class

    root = data_folder(request, name)
    try:
        rename_class(root, cls, body.name)
    except PathRefusedError:
        raise  # 403: a link, refused
    except SightlineError as e:
        raise HTTPException(400, str(e)) from None
    return _answer(root)


@router.post(
    "/{name}/classes/{cls}/images", summary="Add images (files, a zip, webcam frames) to a class"
)
async def add_images(
    name: str,
    cls: str,
    request: Request,
    files: Annotated[list[UploadFile], File(description="images, or zip archives of images")],
) -> Any:
    """Each image that decodes is kept in the class's folder (under a free name: nothing is
    replaced); the others are listed with the reason. 413 for an archive over the limits."""
    from sightline.data.builder import add_images as keep_images
    from sightline.data.builder import class_folder
    from sightline.serve.services.uploads import ArchiveTooLarge, expand_uploads

    root = data_folder(request, name)
    settings = _settings(request)
    try:
        folder = class_folder(root, cls)
    except PathRefusedError:
        raise  # 403: a link, refused before a byte of the upload is read
    except SightlineError as e:
        raise HTTPException(404, str(e)) from None
    raw = [((f.filename or f"upload-{i + 1}")[:255], await f.read(settings.max_upload_bytes + 1))
           for i, f in enumerate(files)]  # fmt: skip

    def work() -> Any:
        items = expand_uploads(raw, settings.max_upload_bytes)
        good = [(item.name, item.data) for item in items if item.data is not None]
        added = keep_images(folder, good, settings.max_pixels, root=root)
        added.skipped[:0] = [(item.name, item.error) for item in items if item.data is None]
        return added

    try:
        added = await settings.cpu_work(work)
    except ArchiveTooLarge as e:
        return JSONResponse({"error": str(e)}, status_code=413)
    skipped = [{"file": f, "error": why} for f, why in added.skipped]
    return _answer(root, saved=added.saved, skipped=skipped)
