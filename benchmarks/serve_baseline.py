"""The floor any image server pays here: a minimal FastAPI app that parses the multipart upload
and decodes each image with Pillow, and nothing else (no model, no framing, no batching).

``benchmarks/serve_load.py --versus-baseline`` serves it beside ``sightline serve`` in the same
run, with the same requests, and prints the ratio: what sightline's own work per request
(framing, preprocessing, the forward pass in a shared batch, JSON) adds to the floor.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, File, Form, UploadFile
from PIL import Image

app = FastAPI()


@app.get("/api/health")
def health() -> dict:
    return {"status": "ok", "version": "baseline"}


@app.post("/api/predict")
def predict(
    files: Annotated[list[UploadFile], File()],
    run: Annotated[str | None, Form()] = None,
    k: Annotated[int, Form()] = 3,
) -> dict:
    results = []
    for f in files:
        with Image.open(f.file) as img:
            img.load()  # the whole decode, as any classifier must
            results.append({"file": f.filename, "size": list(img.size), "mode": img.mode})
    return {"run": run, "results": results}
