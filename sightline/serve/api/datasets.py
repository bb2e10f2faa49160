"""/api/datasets, /api/datasets/{kind}/{name}, /api/models and /api/recipes: what the datasets and training
pages offer.

A dataset is named by kind: ``builtin`` (a registry name) or ``folder`` (the name of one of the
folders the server was started with, ``--data-dir``; never a path from the client). Nothing is
downloaded here: a built-in dataset that is not on disk says so, with the command that gets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from sightline.errors import ImageError, PathRefusedError, SightlineError
from sightline.serve.core.deps import data_folder
from sightline.serve.core.errors import errors, file_answer
from sightline.serve.core.params import KINDS, DatasetKind, DatasetName
from sightline.serve.core.settings import settings_of as _settings
from sightline.serve.services.data_cache import builtin_preview
from sightline.serve.services.images import (
    displayable,
    enlarge,
    fit_within,
    image_row,
    png_bytes,
    scale_for,
    tensor_image,
)

router = APIRouter(prefix="/api")

MAX_SAMPLES = 32
MAX_MODEL_NAME = 200  # timm's longest tagged names are under 80 characters
SAMPLE_SIDE = 56  # small images are enlarged to at least this
FOLDER_CELL = 96  # a folder's photos are shrunk to fit this square
FOLDER_NOTE = (
    "for an image folder trained from scratch, the folder recipe may change epochs, batch_size, "
    "optimizer, lr, weight_decay, translate and flip to suit the number of images (the job's "
    "messages say what it chose)"
)


@router.get("/datasets", summary="Built-in datasets and the image folders given with --data-dir")
def all_datasets(request: Request) -> dict[str, Any]:
    from sightline.data import dataset_info, folder_info, list_datasets

    keys = ("name", "description", "classes", "shape", "train", "test", "cached", "mirrored")
    builtin = [{k: info[k] for k in keys} for info in map(dataset_info, list_datasets())]
    folders = []
    settings = _settings(request)
    collections = settings.collections()
    for folder in settings.datasets():
        buildable = folder.parent in collections  # made (or to be made) in the browser
        try:  # a symbolic link in a folder of datasets: listed as refused, never looked into
            folders.append({**folder_info(settings.checked(folder)), "buildable": buildable})
        except (SightlineError, OSError) as e:  # empty yet, or gone: say so, list the rest
            folders.append({"name": folder.name, "path": str(folder.resolve()), "error": str(e),
                            "buildable": buildable})  # fmt: skip
    return {"builtin": builtin, "folders": folders,
            "collections": [c.name for c in collections]}  # fmt: skip


def _builtin_name(name: str) -> str:
    from sightline.data import get_dataset_spec, list_datasets

    try:
        return get_dataset_spec(name).name
    except SightlineError:
        raise HTTPException(
            404, f"no built-in dataset named {name[:80]!r}; they are: {', '.join(list_datasets())}"
        ) from None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise HTTPException(404, f"unknown dataset kind {kind[:40]!r}: use 'builtin' or 'folder'")


@router.get(
    "/datasets/{kind}/{name}",
    summary="One dataset: classes, images per class and split, availability",
    responses=errors(404),
)
def dataset_detail(kind: DatasetKind, name: DatasetName, request: Request) -> dict[str, Any]:
    from sightline.data import dataset_info, folder_info

    _check_kind(kind)
    if kind == "folder":
        try:
            info = folder_info(data_folder(request, name))
        except (SightlineError, OSError) as e:  # a folder that went away or holds no classes
            return {
                "name": name,
                "kind": kind,
                "classes": [],
                "splits": {},
                "available": False,
                "message": str(e),
            }
        return {
            "name": info["name"],
            "kind": kind,
            "classes": [c["name"] for c in info["classes"]],
            "splits": info["splits"],
            "sizes": {k: sum(v.values()) for k, v in info["splits"].items()},
            "available": True,
            "message": None,
        }
    info = dataset_info(_builtin_name(name))
    out = {
        "name": info["name"],
        "kind": kind,
        "classes": info["classes"],
        "splits": {},
        "sizes": {"train": info["train"], "test": info["test"]},
        "available": True,
        "message": None,
    }
    if not (info["cached"] or info["mirrored"]):
        return {
            **out,
            "available": False,
            "message": f"not downloaded: run `sightline datasets --download {info['name']}` on the server",
        }
    try:
        out["splits"] = builtin_preview(_settings(request).previews, info["name"]).splits
    except SightlineError as e:  # e.g. a damaged cached file: the message says what to do
        return {**out, "available": False, "message": str(e)}
    return out


@router.get(
    "/datasets/{kind}/{name}/samples/{class_index}.png",
    summary="A row of training images of one class (deterministic)",
    response_class=Response,
    responses={**file_answer("image/png", "the row"), **errors(404, 409)},
)
def dataset_samples(
    kind: DatasetKind,
    name: DatasetName,
    class_index: int,
    request: Request,
    n: Annotated[int, Query(ge=1, le=MAX_SAMPLES, description="how many images")] = 8,
) -> Response:
    _check_kind(kind)
    if kind == "folder":
        row = _folder_samples(
            data_folder(request, name), class_index, n, _settings(request).max_pixels
        )
    else:
        preview = builtin_preview(_settings(request).previews, _builtin_name(name))
        _check_class(class_index, preview.classes)
        images = preview.samples[class_index][:n]
        scale = scale_for(images.shape[2:], SAMPLE_SIDE) if len(images) else 1
        tiles = [enlarge(tensor_image(x), scale) for x in images]
        row = image_row(tiles, max((t.width for t in tiles), default=SAMPLE_SIDE))
    return Response(png_bytes(row), media_type="image/png", headers={"Cache-Control": "no-cache"})


def _check_class(index: int, classes: list[str]) -> None:
    if not 0 <= index < len(classes):
        raise HTTPException(
            404, f"no class {index}: the classes are 0..{len(classes) - 1} ({', '.join(classes)})"
        )


def _folder_samples(root: Path, class_index: int, n: int, max_pixels: int):
    """The first ``n`` readable files of the class in the folder's train split (sorted, so the
    same every time), each shrunk into a square; only those files are decoded. A file that is a
    symbolic link, or in a linked folder, is skipped: never opened (``fileio.open_inside``)."""
    from sightline.data import find_splits, open_image, scan_class_folders
    from sightline.fileio import open_inside

    try:
        scan = scan_class_folders(find_splits(root)["train"])
    except (SightlineError, OSError) as e:
        raise HTTPException(409, f"data folder {root.name} cannot be read: {e}") from None
    classes = list(scan)
    _check_class(class_index, classes)
    tiles = []
    for path in sorted(scan[classes[class_index]]):
        if len(tiles) == n:
            break
        try:
            # A tile, never the whole photo: decoded small, within the server's pixel limit.
            with open_inside(root, path) as f:
                img = open_image(f, str(path), max_side=FOLDER_CELL, max_pixels=max_pixels)
            img = displayable(img)
        except (ImageError, PathRefusedError, OSError):
            continue  # the datasets page lists unreadable files elsewhere; a sample row skips them
        if max(img.size) < SAMPLE_SIDE:
            img = enlarge(img, scale_for(img.size, SAMPLE_SIDE))
        tiles.append(fit_within(img, FOLDER_CELL))
    return image_row(tiles, max((max(t.size) for t in tiles), default=SAMPLE_SIDE))


def _model_row(entry: Any) -> dict[str, Any]:
    """What the Train page shows of one model: its description, options and the training
    defaults ``sightline train`` would use (with --pretrained, what changes)."""
    from sightline.plan import resolve_config

    defaults = resolve_config(entry.train_defaults).to_dict()
    defaults.pop("extra", None)
    row: dict[str, Any] = {
        "name": entry.name,
        "description": entry.description,
        "pretrained": entry.pretrained_input is not None,
        "options": entry.options(),
        "defaults": defaults,
        "folder_note": FOLDER_NOTE,
    }
    if entry.pretrained_input is not None:
        fine_tune = resolve_config(entry.train_defaults, pretrained=True).to_dict()
        row["pretrained_defaults"] = {
            k: v for k, v in fine_tune.items() if k != "extra" and v != defaults[k]
        }
    return row


@router.get(
    "/models", summary="The model architectures and the training defaults `sightline train` uses"
)
def models() -> dict[str, Any]:
    from sightline.models import (
        DATASET_DEFAULT_MODELS,
        DEFAULT_MODEL,
        list_models,
        listed_timm_models,
    )

    # A built-in dataset may default to another model than folders do (POST /api/jobs with no model).
    return {
        "models": [_model_row(e) for e in [*list_models(), *listed_timm_models()]],
        "default": DEFAULT_MODEL,
        "dataset_defaults": dict(DATASET_DEFAULT_MODELS),
    }


@router.get(
    "/models/{name}",
    summary="One model by name, also any timm model (timm:NAME) the list does not show",
    responses=errors(404),
)
def model(
    name: Annotated[
        str,
        PathParam(
            max_length=MAX_MODEL_NAME,
            description="a model name as `sightline train --model` takes it, e.g. "
            "fastcnn or timm:convnext_nano (404: no such model, with the nearest names)",
        ),
    ],
) -> dict[str, Any]:
    from sightline.errors import ModelError
    from sightline.models import get_model_entry

    try:
        return _model_row(get_model_entry(name))
    except ModelError as e:
        raise HTTPException(404, str(e)) from e


@router.get(
    "/recipes", summary="The named training recipes (a job's recipe field takes one's name)"
)
def recipes() -> dict[str, Any]:
    """The named recipes (``sightline recipes``): a job's ``recipe`` field takes one's name. Each
    as it trains on this server's machine (a CPU with AMX has variants: ``variant`` says so), so
    the model and options the page shows are the ones a job with no other model gets."""
    from sightline.plan import for_machine, list_recipes

    return {"recipes": [for_machine(r).to_dict() for r in list_recipes()]}
