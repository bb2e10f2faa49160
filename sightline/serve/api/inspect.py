"""POST /api/inspect: how a run's model sees one image, as numbers and pictures for a page.

A thin face over ``sightline.inspect.inspect_image``: the upload (or a test image of the run)
goes in, the prediction, the saliency heat map and the key layers' outputs come back, each
picture a PNG data URI drawn by ``images.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile

from sightline.serve.core.errors import errors
from sightline.serve.core.params import RunField, multipart_rule, schema
from sightline.serve.core.settings import MAX_TOP_K
from sightline.serve.core.settings import settings_of as _settings
from sightline.serve.services.images import (
    bar_strip,
    data_uri,
    displayable,
    enlarge,
    fit_within,
    mosaic_image,
    saliency_overlay,
    scale_for,
    tensor_image,
)

router = APIRouter(prefix="/api")

MAX_LAYERS = 12
ORIGINAL_SIDE = 256  # the uploaded image is shown shrunk to this
SEEN_SIDE = 224  # what the model saw is enlarged to about this


@router.post(
    "/inspect",
    summary="Look inside a run's model for one image: prediction, saliency, layer outputs",
    responses=errors(404, 409, 415),
    # exactly one of: an image (as `file`, or as `files`: a list of one) or `test_index`
    openapi_extra=multipart_rule(
        {"oneOf": [{"required": ["file"]}, {"required": ["files"]}, {"required": ["test_index"]}]}
    ),
)
def inspect(
    request: Request,
    file: Annotated[UploadFile | None, File(description="one image file")] = None,
    files: Annotated[
        list[UploadFile] | None,
        File(description="the same as file: /api/predict's name", **schema(minItems=1, maxItems=1)),
    ] = None,
    test_index: Annotated[
        int | None, Form(ge=0, description="or: an index into the run's test split")
    ] = None,
    run: RunField = None,
    k: Annotated[int, Form(ge=1, le=MAX_TOP_K, description="how many classes to return")] = 5,
) -> dict[str, Any]:
    """Status: 415 for an upload that is not a readable image (with the reason); 400 without
    exactly one of ``file`` and ``test_index``; 404/409 when the test image does not exist or
    the run's data cannot be loaded again."""
    from sightline.data import decode_side, image_size, open_image
    from sightline.infer import NO_OBJECT_NOTE
    from sightline.inspect import inspect_image, key_layers
    from sightline.serve.services.data_cache import run_test_split

    sent = [*([file] if file is not None else []), *(files or [])]
    if len(sent) > 1:
        raise HTTPException(400, f"inspect takes one image, not {len(sent)}: use /api/predict")
    file = sent[0] if sent else None
    if (file is None) == (test_index is None):
        raise HTTPException(
            400,
            "send exactly one of: 'file' (an image upload) or 'test_index' (an image of the "
            "run's test split)",
        )
    settings = _settings(request)
    if file is not None:  # a bad or too large image is refused before a model is copied
        name = (file.filename or "upload")[:255]
        data = file.file.read(settings.max_upload_bytes + 1)
        image_size(data, name, settings.max_pixels)  # ImageError → 415, with the reason
    loaded, model = settings.models.private_copy(run or None)  # inspection hooks into the model
    pre = loaded.preprocess
    note = true_label = None
    if file is not None:
        # Decoded as predict decodes it (as large as this run's input needs), then prepared so.
        opened = open_image(
            data, name, max_side=decode_side(pre.size), max_pixels=settings.max_pixels
        )
        seen, framing = pre.prepare_with_framing(opened)
        if framing is not None and not framing.found:
            note = NO_OBJECT_NOTE
        original = fit_within(displayable(opened), ORIGINAL_SIDE)
    else:
        split = run_test_split(settings.test_splits, loaded)
        if test_index >= len(split):  # type: ignore[operator]
            raise HTTPException(
                404,
                f"run {loaded.name}'s test split has {len(split)} images "
                f"(0..{len(split) - 1}): no image {test_index}",
            )
        name = f"test image #{test_index}"
        seen = split.images[test_index]
        true_label = loaded.classes[int(split.labels[test_index])]
        original = tensor_image(seen)
    result = inspect_image(model, pre, seen, classes=loaded.classes, prepared=True)
    probs = result.probabilities
    order = sorted(range(len(probs)), key=lambda i: -probs[i])[: min(k, len(probs))]
    scale = scale_for(seen.shape[1:], SEEN_SIDE, max_scale=16)
    return {
        "run": loaded.name,
        "file": name,
        "true_label": true_label,
        "label": "unknown" if result.unknown else result.predicted,
        "closest": result.predicted,
        "unknown": result.unknown,
        "ood_score": result.ood_score,
        "unknown_threshold": result.unknown_threshold,
        "index": result.predicted_index,
        "confidence": probs[result.predicted_index],
        "top_k": [{"label": loaded.classes[i], "probability": probs[i]} for i in order],
        "note": note,
        "original": data_uri(original),
        "seen": data_uri(enlarge(tensor_image(seen), scale)),
        "saliency": data_uri(saliency_overlay(seen, result.saliency, scale)),
        "saliency_method": result.saliency_method,
        "activations": _activations(result, key_layers(model, list(result.outputs), MAX_LAYERS)),
    }


def _activations(result, names: list[str]) -> list[dict[str, Any]]:
    """Per chosen layer: its statistics (as ``activation_stats`` gives them) and a picture:
    the feature maps as a mosaic, or a flat output as a bar strip."""
    from sightline.inspect import is_map, map_mosaic

    rows = []
    for name in names:
        t = result.outputs[name]
        stats = result.stats[name]
        if is_map(t):
            img = mosaic_image(map_mosaic(t, max_channels=32, cols=8), max(t.shape[1:]))
        else:
            img = bar_strip(t)
        rows.append(
            {
                "name": name,
                "shape": stats["shape"],
                "mean": stats["mean"],
                "std": stats["std"],
                "min": stats["min"],
                "max": stats["max"],
                "zeros": stats["zero_fraction"],
                "image": data_uri(img),
            }
        )
    return rows
