"""/api/runs/{id}/...: what a run folder holds beyond its numbers, for the run page.

Its plots, report, model files and summary, and the images of its test evaluation. Every file
served here is looked up by a name the server checks (a plot name must match ``PLOT_NAME`` and
be a file directly in the run's plots/ folder), never by a path a client sent; run ids go
through ``run_id_path`` like everywhere else. No symbolic link inside a run folder is followed
(``fileio.open_inside``): a linked file or folder is neither listed as a file nor served; the
run's answer names it among ``refused_links`` instead, so what the page offers is what is served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from sightline.errors import PathRefusedError
from sightline.fileio import entries_inside, is_file_inside, open_inside
from sightline.run import CHECKPOINTS, PLOTS, REPORT, Run, RunLayout, link_entries, run_id_path
from sightline.serve.core.errors import errors, file_answer
from sightline.serve.core.params import PLOT_NAME, PlotName, RunId
from sightline.serve.core.settings import settings_of as _settings
from sightline.serve.services.data_cache import run_test_split
from sightline.serve.services.images import enlarge, png_bytes, scale_for, tensor_image

router = APIRouter(prefix="/api/runs")

# report.html is self-contained: inline styles and data: images, no script. Served with nothing
# else allowed, a report that somehow held a script (a class name is user text) cannot run it.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
MAX_TEST_IMAGES = 500
TEST_IMAGE_SIDE = 112  # test images are enlarged to at least this side by default


def open_run(request: Request, run_id: str) -> Run:
    """The run a client named (400 for a bad id, 404 for none; a damaged run: 400 with its problem)."""
    return Run(run_id_path(run_id, _settings(request).runs_dir))


def plot_names(run: Run) -> list[str]:
    """Names of the run's plots (PNG files in plots/, without .png), in the order of the
    figure registry the report draws from (others after it, alphabetically)."""
    from sightline.report import order

    try:
        entries = entries_inside(run.path, PLOTS)
    except PathRefusedError:  # a linked plots/ folder: none of it is shown
        return []
    return order(
        [
            Path(name).stem
            for name, kind in entries.items()
            if kind == "file" and name.endswith(".png") and PLOT_NAME.fullmatch(Path(name).stem)
        ]
    )


def model_files(run: Run) -> list[str]:
    return [w for w in CHECKPOINTS if is_file_inside(run.path, RunLayout(run.path).model(w))]


def onnx_files(run: Run) -> list[str]:
    """The checkpoints (best, last) the run has an ONNX export of (``sightline export``)."""
    return [w for w in ("best", "last") if is_file_inside(run.path, _onnx_path(run, w))]


def _onnx_path(run: Run, which: str) -> Path:
    return RunLayout(run.path).onnx(which)


def open_run_file(run: Run, path: Path) -> IO[bytes] | None:
    """The run's file ``path`` opened for reading, or None when it is missing, no regular file
    or a symbolic link (or in a linked folder): refused, so never served."""
    try:
        return open_inside(run.path, path)
    except (OSError, PathRefusedError):
        return None


def send_file(
    f: IO[bytes],
    media_type: str,
    headers: dict[str, str] | None = None,
    filename: str | None = None,
) -> Response:
    """The open file ``f`` as the answer, in 1 MiB chunks (a model file may be large), closed
    once sent: served from the descriptor that was opened without following links."""
    headers = {**(headers or {}), "Content-Length": str(os.fstat(f.fileno()).st_size)}
    if filename is not None:  # as FileResponse names an attachment
        quoted = quote(filename)
        headers["Content-Disposition"] = (
            f'attachment; filename="{filename}"'
            if quoted == filename
            else f"attachment; filename*=utf-8''{quoted}"
        )

    def chunks() -> Iterator[bytes]:
        with f:
            while chunk := f.read(1 << 20):
                yield chunk

    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


def run_extras(run: Run, evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """What ``GET /api/runs/{id}`` adds for the run page: plots, report, model files, and the
    saved test ``evaluation``'s count, per-class metrics and confusion matrix (null without
    one). A damaged run lists no files: none of them can be served (``open_run`` refuses it)."""
    from sightline.report import caption

    whole = not run.problem
    ev = evaluation or {}
    plots = plot_names(run) if whole else []
    return {
        "plots": plots,
        "plot_captions": {name: caption(name) for name in plots},  # the report's own captions
        "has_report": whole and is_file_inside(run.path, REPORT),
        "refused_links": link_entries(run.path),  # never read, served or shown as files
        "model_files": model_files(run) if whole else [],
        "onnx_files": onnx_files(run) if whole else [],
        "test_count": ev.get("count"),
        "per_class": ev.get("per_class"),
        "confusion": ev.get("confusion_matrix"),
    }


@router.get(
    "/{run_id}/plots/{name}.png",
    summary="One of the run's plots (PNG)",
    response_class=Response,
    responses={**file_answer("image/png", "the plot"), **errors(404)},
)
def plot(run_id: RunId, name: PlotName, request: Request) -> Response:
    run = open_run(request, run_id)
    if not PLOT_NAME.fullmatch(name):
        raise HTTPException(
            400,
            f"invalid plot name {name[:80]!r}: a plot name has only letters, digits, '_' and '-'",
        )
    f = open_run_file(run, RunLayout(run.path).plot(f"{name}.png"))
    if f is None:
        have = ", ".join(plot_names(run)) or "none (write them with `sightline report RUN`)"
        raise HTTPException(404, f"run {run.name} has no plot {name!r}; its plots: {have}")
    return send_file(f, "image/png", {"Cache-Control": "no-cache"})


@router.get(
    "/{run_id}/report",
    summary="The run's HTML report (self-contained, no scripts allowed)",
    response_class=Response,
    responses={**file_answer("text/html", "the report"), **errors(404)},
)
def report(run_id: RunId, request: Request) -> Response:
    run = open_run(request, run_id)
    f = open_run_file(run, RunLayout(run.path).report)
    if f is None:
        raise HTTPException(
            404, f"run {run.name} has no report: write it with `sightline report {run.name}`"
        )
    headers = {
        "Content-Security-Policy": REPORT_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    return send_file(f, "text/html; charset=utf-8", headers)


DOWNLOAD = file_answer("application/octet-stream", "the file, as an attachment")


@router.get(
    "/{run_id}/model",
    summary="Download a model file (.safetensors)",
    response_class=Response,
    responses={**DOWNLOAD, **errors(404)},
)
def model(
    run_id: RunId, request: Request, which: Annotated[Literal["best", "last"], Query()] = "best"
) -> Response:
    run = open_run(request, run_id)
    f = open_run_file(run, RunLayout(run.path).model(which))
    if f is None:
        have = ", ".join(model_files(run)) or "none: training never finished an epoch"
        raise HTTPException(404, f"run {run.name} has no {which} model file; it has: {have}")
    return send_file(f, "application/octet-stream", filename=f"{run.name}-{which}.safetensors")


@router.get(
    "/{run_id}/onnx",
    summary="Download the run's ONNX export (written by `sightline export RUN`)",
    response_class=Response,
    responses={**DOWNLOAD, **errors(404)},
)
def onnx_model(
    run_id: RunId, request: Request, which: Annotated[Literal["best", "last"], Query()] = "best"
) -> Response:
    run = open_run(request, run_id)
    f = open_run_file(run, _onnx_path(run, which))
    if f is None:
        raise HTTPException(
            404,
            f"run {run.name} has no ONNX export of its {which} model: write it with "
            f"`sightline export {run.name}`",
        )
    return send_file(f, "application/octet-stream", filename=f"{run.name}-{which}.onnx")


@router.get(
    "/{run_id}/summary",
    summary="Layer-by-layer summary of the run's model",
    responses=errors(404),
)
def model_summary(run_id: RunId, request: Request) -> dict[str, Any]:
    from sightline.models import summary

    _, net = _settings(request).models.private_copy(run_id)  # summary() hooks into the model
    s = summary(net)
    return {**s.to_dict(), "text": str(s)}


@router.get(
    "/{run_id}/test-images",
    summary="Images of the saved test evaluation, by confusion-matrix cell",
    responses=errors(404),
)
def test_images(
    run_id: RunId,
    request: Request,
    true: Annotated[int | None, Query(ge=0, description="true class index")] = None,
    pred: Annotated[int | None, Query(ge=0, description="predicted class index")] = None,
    order: Literal["confidence", "loss", "random"] = "confidence",
    limit: Annotated[int, Query(ge=1, le=MAX_TEST_IMAGES)] = 60,
    seed: int = 0,
) -> dict[str, Any]:
    """From the saved logits of the run's test evaluation: no data loaded, no forward pass."""
    run = open_run(request, run_id)
    metrics = run.saved_results("test")
    if metrics is None:
        raise HTTPException(
            404,
            f"run {run.name} has no saved test evaluation of its current model: evaluate it with "
            f"`sightline evaluate {run.name}`",
        )
    try:
        count, items = metrics.samples(true=true, pred=pred, order=order, limit=limit, seed=seed)
    except ValueError as e:
        raise HTTPException(
            400, f"{e} ({', '.join(f'{i} {c}' for i, c in enumerate(metrics.classes))})"
        ) from None
    return {"count": count, "items": items}


@router.get(
    "/{run_id}/test-images/{index}.png",
    summary="One image of the run's test split, enlarged",
    response_class=Response,
    responses={**file_answer("image/png", "the image"), **errors(404, 409)},
)
def test_image(
    run_id: RunId,
    index: int,
    request: Request,
    scale: Annotated[
        int | None, Query(ge=1, le=8, description="enlargement (default: side ≥ 112 px)")
    ] = None,
) -> Response:
    run = open_run(request, run_id)
    split = run_test_split(_settings(request).test_splits, run)
    if not 0 <= index < len(split):
        raise HTTPException(
            404,
            f"run {run.name}'s test split has {len(split)} images (0..{len(split) - 1}): no "
            f"image {index}",
        )
    x = split.images[index]
    img = enlarge(tensor_image(x), scale or scale_for(x.shape[1:], TEST_IMAGE_SIDE))
    return Response(png_bytes(img), media_type="image/png", headers={"Cache-Control": "no-cache"})
