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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.errors import ExportError, SightlineError
from sightline.fileio import atomic_open, atomic_write_json, file_sha256
from sightline.infer.onnx import FORMAT, META_KEY, require_packages
from sightline.infer.runtime import make_session, quiet_exporter
from sightline.run.export_graph import ExportedClassifier
from sightline.run.exported import export_path

# ``run``: a ``sightline.run.Run`` (not imported: Run.export calls into here; a run's folder is
# opened by the public API's ``export_onnx``, run/export_api.py)
Run = Any

# The ood scores: float32 in the graph against float64 in PyTorch, for features of up to
# 1,280 values (EfficientNet-Lite0); a 1 % error moves no answer that was not on the threshold.
SCORE_RTOL = 1e-2
PARITY_ATOL = 1e-4  # max |ORT - PyTorch| over the logits of the check images
CHECK_IMAGES = 256
RANDOM_IMAGES = 32  # when the run has no images to check on


@dataclass
class Parity:
    images: int
    source: str  # "test split of fashion-mnist", "folder …", "given images", "random images"
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float  # fraction of images whose top class is the same
    score_rel_diff: float | None = None  # the ood scores': max |diff| / (1 + |PyTorch's|)
    # With the images' labels (a split of the run's data): each model's accuracy on them.
    accuracy: float | None = None
    reference_accuracy: float | None = None  # PyTorch's
    # With a "none of these" score: the share of the images each answers unknown.
    unknown: float | None = None
    reference_unknown: float | None = None

    @property
    def passed(self) -> bool:
        scores_ok = self.score_rel_diff is None or self.score_rel_diff <= SCORE_RTOL
        return self.max_abs_diff <= PARITY_ATOL and scores_ok


@dataclass
class CheckImages:
    """The images an export is checked on (prepared uint8), their labels when known."""

    images: torch.Tensor
    source: str
    labels: torch.Tensor | None = None
    note: str | None = None  # why they are not real images


@dataclass
class Reference:
    """PyTorch's answers on the check images (computed once for every format checked)."""

    logits: torch.Tensor
    scores: torch.Tensor | None


@dataclass
class FormatReport:
    format: str
    path: Path
    size_bytes: int
    runtime: str
    parity: Parity | None
    bar: str  # what it had to meet
    seconds: float
    kept_float: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = self.path.name
        return out


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


def reference_answers(
    net: nn.Module, preprocess: Preprocess, check: CheckImages, detector: Any = None
) -> Reference:
    """PyTorch's (CPU) logits and "none of these" scores on the check images, through a
    ``Predictor`` as every face predicts."""
    from sightline.infer.predict import Predictor

    logits, scores = Predictor(net, preprocess, [], torch.device("cpu")).scored_logits(check.images)
    return Reference(logits, scores if detector is not None else None)


def measure_parity(
    model_bytes: bytes | Any,
    net: nn.Module,
    preprocess: Preprocess,
    check: CheckImages,
    detector: Any = None,
    reference: Reference | None = None,
) -> Parity:
    """An export (ONNX bytes, run in ONNX Runtime on the CPU, or a loaded model of another
    runtime with ``OnnxModel``'s calls) against PyTorch (CPU) on the same prepared uint8
    images, each through a ``Predictor`` as every face predicts; with a detector, the "none of
    these" scores too, and with the images' labels both accuracies."""
    from sightline.infer.onnx import OnnxModel
    from sightline.infer.predict import Predictor

    images = check.images
    if isinstance(model_bytes, bytes):
        meta: dict[str, Any] = {"preprocess": preprocess.to_dict(), "classes": []}
        if detector is not None:
            meta["ood"] = detector.record()
        onnx_model = OnnxModel(make_session(model_bytes, "cpu"), meta, name="check")
    else:
        onnx_model = model_bytes
    got, got_scores = Predictor(onnx_model, preprocess, []).scored_logits(images)
    ref = reference or reference_answers(net, preprocess, check, detector)
    want, want_scores = ref.logits, ref.scores
    score_diff = None
    if detector is not None:
        if got_scores is None or want_scores is None:
            raise ExportError('the export lost the "none of these" score; nothing was written')
        rel = (got_scores - want_scores).abs() / (1 + want_scores.abs())
        score_diff = float(rel.max()) if rel.numel() else 0.0
    diff = (got - want).abs()
    agree = (got.argmax(1) == want.argmax(1)).float().mean().item() if len(images) else 1.0
    parity = Parity(
        len(images),
        check.source,
        float(diff.max()) if diff.numel() else 0.0,
        float(diff.mean()) if diff.numel() else 0.0,
        agree,
        score_diff,
    )
    if check.labels is not None and len(images):
        labels = check.labels.to(got.device)
        parity.accuracy = (got.argmax(1) == labels).float().mean().item()
        parity.reference_accuracy = (want.argmax(1) == labels).float().mean().item()
    if detector is not None and got_scores is not None and want_scores is not None and len(images):
        parity.unknown = (got_scores > detector.threshold).float().mean().item()
        parity.reference_unknown = (want_scores > detector.threshold).float().mean().item()
    return parity


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


def check_images(
    run: Run, preprocess: Preprocess, images: Any = None, limit: int = CHECK_IMAGES
) -> CheckImages:
    """The images to check an export on: ``images`` (prepared uint8, or any images
    ``Preprocess.prepare`` takes), else up to ``limit`` of the run's test split with their
    labels, else of a folder it was evaluated on, else random ones (with a note saying why)."""
    shape = preprocess.input_shape
    if images is not None:
        if not (
            isinstance(images, torch.Tensor)
            and images.dtype == torch.uint8
            and images.ndim == 4
            and tuple(images.shape[1:]) == shape
        ):
            images = preprocess.prepare(images if isinstance(images, (list, tuple)) else [images])
        return CheckImages(images[:limit], "given images")
    why = "it has no test images"
    if run.data is None and run.config.get("data", {}).get("in_memory"):
        why = "it was trained on an in-memory Dataset, which sightline cannot load again (export_onnx(run, images=...) takes some)"
    else:
        try:
            data = run.load_data() if run.data is not None else run.load_data(progress=False)
            splits = data.splits()
            split = "test" if "test" in splits else list(splits)[-1]
            batch = splits[split].images[:limit]
            if len(batch) and tuple(batch.shape[1:]) == shape and batch.dtype == torch.uint8:
                labels = splits[split].labels[:limit]
                return CheckImages(batch, f"images of the {split} split of {data.name}", labels)
        except (SightlineError, OSError) as e:
            why = f"its data cannot be loaded: {e}"
    folder = _evaluated_folder_images(run, preprocess, limit)
    if folder is not None:
        return folder
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(0, 256, (RANDOM_IMAGES, *shape), generator=g, dtype=torch.uint8)
    note = f"parity checked on {RANDOM_IMAGES} random images, not real ones: {why}"
    return CheckImages(batch, "random images", note=note)


def _evaluated_folder_images(run: Run, preprocess: Preprocess, limit: int) -> CheckImages | None:
    """Up to 256 images of an image folder the run was evaluated on and that is still there."""
    from sightline.errors import ImageError
    from sightline.infer.predict import expand_inputs

    for record in run.evaluations().values():
        folder = record.get("path")
        if record.get("kind") != "folder" or not folder or not Path(folder).is_dir():
            continue
        prepared = []
        for f in expand_inputs([folder])[0]:
            try:
                prepared.append(preprocess.prepare_image(f))
            except ImageError:
                continue
            if len(prepared) == limit:
                break
        if prepared:
            return CheckImages(torch.stack(prepared), f"images of the folder {folder}")
    return None
