"""``export_onnx``: a run's model as one ONNX file that ONNX Runtime runs exactly like PyTorch.

What the graph holds, and what stays outside it:

* Input ``images``: the *prepared* uint8 images (N, C, H, W), as ``Preprocess.prepare_image``
  makes them. Decoding, framing, resizing and inversion stay in Python, the same code for both
  engines, so there is one implementation of them (``sightline.data.preprocess``).
* Inside: the cast to float and the normalisation, the network in float32, and what
  ``batched_logits`` adds after the forward pass (the mean with the mirrored images' logits
  when the run's preprocessing asks for flip TTA). Output ``logits`` (N, K): those of
  ``batched_logits`` on the same input. The batch axis is dynamic.
* Metadata: JSON under the key ``sightline`` in the model's ``metadata_props`` (preprocessing,
  classes, model, run, checkpoint and its sha256, versions, opset, the parity measured), and
  the same JSON beside the file (``best.onnx.json``) for tools that don't read ONNX.

Before anything is written, ONNX Runtime's logits are compared with PyTorch's on up to 256 real
test images of the run (max abs difference ≤ 1e-4); a model that fails is not written. The file
is written atomically (``fileio.atomic_open``): a reader sees the old file or the new one.

The exporter: ``torch.onnx.export(..., dynamo=True)`` (``torch.export``, translated by
onnxscript), PyTorch's default since 2.9 and the one it maintains. The TorchScript exporter
(``dynamo=False``) exports these models 3-5x faster but is deprecated in torch 2.13 ("the
feature will be removed"), as TorchScript itself is; both gave the same parity (≤ 1e-7).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sightline.data.preprocess import Preprocess
from sightline.errors import ExportError, SightlineError
from sightline.fileio import atomic_open, atomic_write_json, file_sha256
from sightline.infer.onnx import FORMAT, META_KEY, require_packages
from sightline.infer.runtime import quiet_exporter
from sightline.run.export_check import (
    PARITY_ATOL,
    SCORE_RTOL,
    CheckImages,
    Parity,
    Reference,
    check_images,
    measure_parity,
)
from sightline.run.export_graph import ExportedClassifier
from sightline.run.exported import export_path

# ``run``: a ``sightline.run.Run`` (not imported: Run.export calls into here; a run's folder is
# opened by the public API's ``export_onnx``, run/export_api.py)
Run = Any


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    size_bytes: int
    opset: int
    exporter: str
    metadata: dict[str, Any]
    parity: Parity | None  # None with check=False
    note: str | None = None  # e.g. why the check used random images
    seconds: float = 0.0


def export_onnx(
    run: Run,
    path: str | os.PathLike | None = None,
    which: str = "best",
    opset: int | None = None,
    check: bool = True,
    images: torch.Tensor | Sequence[Any] | CheckImages | None = None,
    reference: Reference | None = None,
) -> ExportResult:
    """Export a run's ``which`` checkpoint to ONNX at ``path`` (default ``<run>/export/<which>.onnx``).

    ``check``: compare ONNX Runtime's logits with PyTorch's on ``images`` (prepared uint8, or
    any images ``Preprocess.prepare`` takes; ``CheckImages`` with their labels, and PyTorch's
    ``reference`` answers on them when known), else on up to 256 images of the run's test split,
    else of a folder it was evaluated on, else (noted in ``result.note``) random images;
    ``ExportError`` and no file when they differ by more than 1e-4. ``opset``: the ONNX opset
    (default: the exporter's). Needs ``pip install "sightline[onnx]"``.
    """
    from sightline._version import __version__
    from sightline.run import checkpoint as ckpt

    require_packages(["onnx", "onnxscript"] + (["onnxruntime"] if check else []), "ONNX export")
    start = time.perf_counter()
    out = Path(path) if path is not None else export_path(run, which)
    if out.suffix != ".onnx":
        raise ExportError(f"{out}: an ONNX file's name must end in .onnx")
    source = run.model_file(which)
    sha = file_sha256(source)
    net, meta = ckpt.load_model(source, "cpu")
    net = net.float().eval()
    preprocess = Preprocess.from_dict(meta["preprocess"])
    from sightline.infer.ood import detector_of

    detector = detector_of(net)
    exported = ExportedClassifier(net, preprocess, detector).eval()
    try:
        proto = _export(exported, preprocess, opset, meta["model"]["name"])
    finally:
        exported.release()
    graph_opset = next(
        (o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset
    )
    if (
        opset is not None and graph_opset != opset
    ):  # the exporter falls back quietly where it can't convert
        raise ExportError(
            f"opset {opset} is out of the exporter's reach (it made opset {graph_opset}): choose another "
            "--opset, or none for its default; nothing was written"
        )

    parity, note = None, None
    if check:
        given = images if isinstance(images, CheckImages) else check_images(run, preprocess, images)
        note, where = given.note, given.source
        parity = measure_parity(
            proto.SerializeToString(), net, preprocess, given, detector, reference
        )
        if not parity.passed:
            what = (
                f"max abs difference of the logits {parity.max_abs_diff:.3g} > {PARITY_ATOL:g}"
                if parity.max_abs_diff > PARITY_ATOL
                else f"relative difference of the ood scores {parity.score_rel_diff:.3g} > {SCORE_RTOL:g}"
            )
            raise ExportError(
                f"the ONNX model of run {run.name!r} does not match PyTorch: {what} on "
                f"{parity.images} {where}; nothing was written"
            )

    metadata = {
        "format": FORMAT,
        "run": run.name,
        "checkpoint": which,
        "source": source.name,
        "source_sha256": sha,
        "model": meta["model"],
        "classes": list(meta["classes"]),
        "preprocess": preprocess.to_dict(),
        "epoch": meta.get("epoch"),
        # the "none of these" answer: the graph's second output, "ood_score", and its threshold
        **({"ood": detector.record()} if detector is not None else {}),
        "input": {
            "name": "images",
            "dtype": "uint8",
            "shape": ["N", *preprocess.input_shape],
            "prepared_by": "sightline Preprocess.prepare_image",
        },
        "output": {"name": "logits", "dtype": "float32", "shape": ["N", len(meta["classes"])]},
        "flip_tta": preprocess.flip_tta,
        "shift_tta": preprocess.shift_tta,
        "opset": graph_opset,
        "exporter": "torch.onnx.export(dynamo=True)",
        "sightline_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "parity": None if parity is None else {**asdict(parity), "atol": PARITY_ATOL},
    }
    set_metadata(proto, metadata)
    blob = proto.SerializeToString()
    root = run.path if path is None else None  # in the run folder: through no link there
    with atomic_open(out, "wb", root) as f:  # temp name in the same folder, fsync, rename
        f.write(blob)
    sidecar = out.with_name(out.name + ".json")
    atomic_write_json(sidecar, metadata, root)
    return ExportResult(
        out,
        sidecar,
        len(blob),
        graph_opset,
        metadata["exporter"],
        metadata,
        parity,
        note,
        time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------- internals
def _export(module: Any, preprocess: Preprocess, opset: int | None, name: str):
    """The ``onnx.ModelProto`` of ``module``, weights inside."""
    # Batch 2: torch.export specialises a dimension whose example size is 0 or 1 to a constant.
    example = torch.zeros((2, *preprocess.input_shape), dtype=torch.uint8)
    try:
        with quiet_exporter():
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["images"],
                output_names=["logits", "ood_score"] if module.scored else ["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
            return program.model_proto
    except SightlineError:
        raise
    except Exception as e:  # noqa: BLE001 - the exporter's failures come in many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        hint = f" (opset {opset}: try the default, without --opset)" if opset is not None else ""
        raise ExportError(
            f"model {name!r} could not be exported to ONNX{hint}: {type(e).__name__}: {first[:300]}"
        ) from None


def set_metadata(proto: Any, metadata: dict[str, Any]) -> None:
    import json

    for prop in list(proto.metadata_props):
        if prop.key == META_KEY:
            proto.metadata_props.remove(prop)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(metadata)
    proto.doc_string = f"sightline model {metadata['model']['name']!r} of run {metadata['run']!r} ({metadata['checkpoint']} checkpoint)"
