"""Building a dataset in the browser (Teachable Machine's flow, on disk, without a size limit):
POST /api/datasets/folder makes a new dataset in a --data-dir that is a folder of datasets;
.../classes adds a class, .../classes/{class}/rename renames one, .../classes/{class}/images
adds uploaded images (files, a zip, webcam frames) to one. A face over
``sightline.data.builder``: names sanitised there, every image decoded before it is kept, and
no upload ever replaces a file. Sizes are bounded as for predictions: the request body, the
pixels of each image, the members of a zip. A dataset, split or class folder that is a symbolic
link is refused (403, ``PathRefusedError``): nothing is written through one.

GET .../classes/{class}/images lists a class's images a page at a time (newest first), and
.../images/{file} draws a small picture of one: only a plain file directly in that class folder,
opened without following a link (``fileio.open_inside``). .../images/{file}/remove and
.../classes/{class}/remove set an image or a whole class (every split) aside into the dataset's
quarantine through the health check's journal (``health.fix.set_aside``): nothing is deleted,
and POST .../put-back (or the Health page's Undo: the same journal) puts the last change back.
Every answer about classes says what Undo would put back (``undo``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from sightline.errors import DataError, PathRefusedError, SightlineError
from sightline.serve.core.deps import data_folder
from sightline.serve.core.errors import errors, file_answer
from sightline.serve.core.params import (
    NAME_SCHEMA,
    ClassName,
    DatasetName,
    ImageFile,
    JSONBody,
    schema,
)
from sightline.serve.core.settings import MAX_FILES
from sightline.serve.core.settings import settings_of as _settings

router = APIRouter(prefix="/api/datasets/folder")

THUMB_SIDE = 128  # px: a class card shows them at 64 CSS px, sharp on a 2x screen
PAGE_MAX = 100  # images listed in one answer at most
REMOVED_WHY = "removed on the Build page"


class NameRequest(JSONBody):
    name: str = Field(
        description="letters, digits, spaces, '-', '_' or '.' (1-64), starting with a letter or "
        "digit, not ending with '.'",
        **schema(**NAME_SCHEMA),
    )


class NewDataset(NameRequest):
    collection: str | None = Field(
        None,
        description="the --data-dir folder to make it in (default: the first that can hold datasets)",
    )


def counts(root: Path) -> dict[str, int]:
    """Images per class of a dataset's training folder (class folders with none included)."""
    from sightline.data import find_splits, scan_class_folders

    return {c: len(files) for c, files in scan_class_folders(find_splits(root)["train"]).items()}


def undo_info(root: Path) -> dict[str, Any] | None:
    """What Undo would put back (``health.fix.last_journal``), said for a person: {"fix": its
    id, "what": "put back cat/a.png"}; None: nothing to undo."""
    from sightline.health import REMOVED, last_journal

    journal = last_journal(root)
    if journal is None:
        return None
    moves = journal["moves"]
    if moves and all(m["kind"] == REMOVED for m in moves):
        names = sorted({f"class {Path(m['src']).name}" if (root / m["dst"]).is_dir()
                        else m["src"] for m in moves})  # fmt: skip
        what = (
            "put back "
            + ", ".join(names[:3])
            + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        )
    elif moves and all(m["kind"] == "labelled" for m in moves):
        what = f"put back the {len(moves)} image(s) change {journal['id']} labelled"
    elif moves:
        what = f"put back the {len(moves)} file(s) the Health page's fix {journal['id']} moved"
    else:
        what = f"take back the Health page's decision {journal['id']} to keep findings"
    return {"fix": journal["id"], "what": what}


def _answer(root: Path, **extra: Any) -> dict[str, Any]:
    from sightline.data import waiting_images

    return {"name": root.name, "classes": counts(root), "waiting": waiting_images(root),
            "undo": undo_info(root), **extra}  # fmt: skip


def _lookup(what: Any) -> Any:
    """``what()`` with a name the dataset does not have (DataError) as 404; a link: 403."""
    try:
        return what()
    except PathRefusedError:
        raise  # 403: a link, or a name leading out of the folder, refused
    except DataError as e:
        raise HTTPException(404, str(e)) from None


@router.post("", status_code=201, summary="Make a new, empty dataset folder", responses=errors(409))
def create_dataset(body: NewDataset, request: Request) -> dict[str, Any]:
    from sightline.data import new_dataset

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


@router.get(
    "/{name}/classes",
    summary="A dataset folder's classes and their training images",
    responses=errors(404),
)
def classes(name: DatasetName, request: Request) -> dict[str, Any]:
    return _answer(data_folder(request, name))


@router.post(
    "/{name}/classes",
    status_code=201,
    summary="Add a class to a dataset folder",
    responses=errors(404),
)
def add_class(name: DatasetName, body: NameRequest, request: Request) -> dict[str, Any]:
    from sightline.data import class_folder

    root = data_folder(request, name)
    try:
        class_folder(root, body.name, create=True)
    except PathRefusedError:
        raise  # 403: a link, refused
    except SightlineError as e:
        raise HTTPException(400, str(e)) from None
    return _answer(root)


@router.post(
    "/{name}/classes/{cls}/rename",
    summary="Rename a class (in every split)",
    responses=errors(404),
)
def rename(
    name: DatasetName, cls: ClassName, body: NameRequest, request: Request
) -> dict[str, Any]:
    from sightline.data import rename_class

    root = data_folder(request, name)
    try:
        rename_class(root, cls, body.name)
    except PathRefusedError:
        raise  # 403: a link, refused
    except SightlineError as e:
        raise HTTPException(400, str(e)) from None
    return _answer(root)


# The files of an upload, to a class or to the images to label later.
Uploads = Annotated[
    list[UploadFile],
    File(
        description="images, or zip archives of images (at most 1,000 files and "
        "--max-upload-mb a request: GET /api/health says both)",
        **schema(minItems=1, maxItems=MAX_FILES),
    ),
]


@router.post(
    "/{name}/classes/{cls}/images",
    summary="Add images (files, a zip, webcam frames) to a class",
    responses=errors(404),
)
async def add_images(
    name: DatasetName,
    cls: ClassName,
    request: Request,
    files: Uploads,
) -> Any:
    """Each image that decodes is kept in the class's folder (under a free name: nothing is
    replaced); the others are listed with the reason. 413 for an archive over the limits."""
    from sightline.data import class_folder

    root = data_folder(request, name)
    try:
        folder = class_folder(root, cls)
    except PathRefusedError:
        raise  # 403: a link, refused before a byte of the upload is read
    except SightlineError as e:
        raise HTTPException(404, str(e)) from None
    return await _keep_uploads(request, root, folder, files)


@router.post(
    "/{name}/unlabelled/images",
    summary="Add images to label later (into the folder's unlabelled/: the Label page's pool)",
    responses=errors(404),
)
async def add_unlabelled(
    name: DatasetName,
    request: Request,
    files: Uploads,
) -> Any:
    """As a class's upload, into the folder's ``unlabelled/`` (made where there is none)."""
    from sightline.data import pool_folder
    from sightline.fileio import inside

    root = data_folder(request, name)
    folder = inside(root, pool_folder(root).name)  # a link: 403, before the upload is read
    folder.mkdir(exist_ok=True)
    return await _keep_uploads(request, root, folder, files)


async def _keep_uploads(request: Request, root: Path, folder: Path, files: list[UploadFile]) -> Any:
    """Each upload (or image in an uploaded zip) that decodes, kept in ``folder`` under a free
    name; the others listed with why. 413 for an archive over the limits."""
    from sightline.data import add_images as keep_images
    from sightline.serve.services.uploads import ArchiveTooLarge, expand_uploads

    settings = _settings(request)
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


@router.get(
    "/{name}/classes/{cls}/images",
    summary="A class's images, newest first, a page at a time",
    responses=errors(404),
)
def list_images(
    name: DatasetName,
    cls: ClassName,
    request: Request,
    offset: int = Query(0, ge=0, description="how many of the newest to skip"),
    limit: int = Query(24, ge=1, le=PAGE_MAX, description=f"at most this many (≤ {PAGE_MAX})"),
) -> dict[str, Any]:
    """Images directly in the class folder (the train split's): regular files only, each with
    a version its picture's URL carries (``?v=``), so the browser caches it until it changes."""
    from sightline.data import class_images

    root = data_folder(request, name)
    found = _lookup(lambda: class_images(root, cls))
    shown = found[offset : offset + limit]
    return {"class": cls, "total": len(found), "offset": offset,
            "images": [{"file": i.name, "v": i.version} for i in shown]}  # fmt: skip


@router.get(
    "/{name}/classes/{cls}/images/{file}",
    summary="A small picture of one image of a class",
    response_class=Response,
    responses={**file_answer("image/jpeg", "the picture"), **errors(404, 415)},
)
async def image_picture(
    name: DatasetName,
    cls: ClassName,
    file: ImageFile,
    request: Request,
    v: str | None = Query(None, max_length=40, description="the version its listing gave"),
) -> Response:
    from sightline.data import class_image
    from sightline.serve.services.pictures import file_picture

    root = data_folder(request, name)
    path = _lookup(lambda: class_image(root, cls, file))
    # a versioned URL names one state of the file: cached; without one, asked anew each time
    cache = "private, max-age=86400" if v else "no-store"
    missing = f"no image {file[:80]!r} in class {cls[:80]!r} of {root.name}: reload the list"
    rel = path.relative_to(root).as_posix()
    return await file_picture(request, root, rel, THUMB_SIDE, missing, jpeg=True, cache=cache)


@router.post(
    "/{name}/classes/{cls}/images/{file}/remove",
    summary="Set one image of a class aside (into the quarantine: Undo puts it back)",
    responses=errors(404),
)
def remove_image(
    name: DatasetName, cls: ClassName, file: ImageFile, request: Request
) -> dict[str, Any]:
    import os
    import stat

    from sightline.data import class_image
    from sightline.health import set_aside

    root = data_folder(request, name)
    path = _lookup(lambda: class_image(root, cls, file))
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        regular = False
    if not regular:
        raise HTTPException(
            404, f"no image {file[:80]!r} in class {cls[:80]!r} of {root.name}: reload the list"
        )
    journal = set_aside(root, [path.relative_to(root).as_posix()], REMOVED_WHY)
    return _answer(root, removed=[m["src"] for m in journal["moves"]])


@router.post(
    "/{name}/classes/{cls}/remove",
    summary="Set a class aside, in every split (into the quarantine: Undo puts it back)",
    responses=errors(404),
)
def remove_class(name: DatasetName, cls: ClassName, request: Request) -> dict[str, Any]:
    from sightline.data import class_folders
    from sightline.health import set_aside

    root = data_folder(request, name)
    folders = _lookup(lambda: class_folders(root, cls))
    journal = set_aside(root, [f.relative_to(root).as_posix() for f in folders], REMOVED_WHY)
    return _answer(root, removed=[m["src"] for m in journal["moves"]])


class PutBackRequest(JSONBody):
    fix: int | None = Field(
        None,
        description="the change the page offers to undo (its `undo.fix`): 409 if another is last",
    )


@router.post(
    "/{name}/put-back",
    summary="Undo the last removal (or the Health page's last fix)",
    responses=errors(404, 409),
)
def put_back(name: DatasetName, body: PutBackRequest, request: Request) -> dict[str, Any]:
    from sightline.health import undo_fix

    root = data_folder(request, name)
    try:
        journal = undo_fix(root, body.fix)
    except PathRefusedError:
        raise
    except DataError as e:  # another change is last, or something is where a file goes back
        raise HTTPException(409, str(e)) from None
    if journal is None:
        raise HTTPException(409, f"nothing to undo in {root.name}")
    return _answer(root, undone=journal["id"], restored=[m["src"] for m in journal["moves"]])
