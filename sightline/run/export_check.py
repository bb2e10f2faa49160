"""How an export is checked: the images (``check_images``: the run's test split with its labels,
else a folder it was evaluated on, else random ones), PyTorch's answers on them computed once
(``reference_answers``), and an export's answers beside them (``measure_parity``: agreement, the
logits' differences, both accuracies, the unknown shares). Used by every format
(``run/export.py``, ``run/exports.py``, ``run/export_openvino.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.errors import ExportError, SightlineError
from sightline.infer.runtime import make_session

# ``run``: a ``sightline.run.Run`` (not imported: Run.export calls into here)
Run = Any

# The ood scores: float32 in the graph against float64 in PyTorch, for features of up to
# 1,280 values (EfficientNet-Lite0); a 1 % error moves no answer that was not on the threshold.
SCORE_RTOL = 1e-2
PARITY_ATOL = 1e-4  # max |ORT - PyTorch| over the logits of the check images
FLOAT_BAR = "logits within 1e-4 of PyTorch's"  # what a float export must meet (PARITY_ATOL)
CHECK_IMAGES = 256
RANDOM_IMAGES = 32  # when the run has no images to check on
# Images unlike any a run learns from (noise, fine and coarse): the check images are the run's
# own, so a score that no longer tells anything apart passes on them. An OpenVINO INT8 export
# whose score came out one constant (-1.88 on Lite2, the float score 190,000 on noise) kept 59
# of 60 verdicts on its validation images, and every one of these it answered known.
PROBES = 16


@dataclass
class Parity:
    images: int
    source: str  # "test split of fashion-mnist", "folder …", "given images", "random images"
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float  # fraction of images whose top class is the same
    # the ood scores': max |diff| / (1 + max(|PyTorch's|, |threshold|))
    score_rel_diff: float | None = None
    # With the images' labels (a split of the run's data): each model's accuracy on them.
    accuracy: float | None = None
    reference_accuracy: float | None = None  # PyTorch's
    # With a "none of these" score: the share of the images each answers unknown.
    unknown: float | None = None
    reference_unknown: float | None = None
    # the share of the images whose "none of these" verdict is PyTorch's
    verdict_agreement: float | None = None
    # On the probes (``probe_images``: noise no run learns from): of those PyTorch answers
    # unknown, the share the export answers unknown too (None: PyTorch answers none unknown),
    # and the unknown shares (the export's, PyTorch's)
    probe_unknown_kept: float | None = None
    probe_unknown: float | None = None
    reference_probe_unknown: float | None = None

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
    probe_scores: torch.Tensor | None = None  # on ``probe_images``


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


def reference_answers(
    net: nn.Module, preprocess: Preprocess, check: CheckImages, detector: Any = None
) -> Reference:
    """PyTorch's (CPU) logits and "none of these" scores on the check images, through a
    ``Predictor`` as every face predicts."""
    from sightline.infer.predict import Predictor

    predictor = Predictor(net, preprocess, [], torch.device("cpu"))
    logits, scores = predictor.scored_logits(check.images)
    if detector is None:
        return Reference(logits, None)
    return Reference(logits, scores, predictor.scored_logits(probe_images(preprocess))[1])


def probe_images(preprocess: Preprocess, count: int = PROBES) -> torch.Tensor:
    """``count`` prepared uint8 images of noise (half pixel by pixel, half in coarse blocks), the
    same every time: what "none of these" must keep answering unknown once exported."""
    c, h, w = preprocess.input_shape
    g = torch.Generator().manual_seed(0)
    fine = torch.randint(0, 256, (count - count // 2, c, h, w), generator=g, dtype=torch.uint8)
    coarse = torch.randint(0, 256, (count // 2, c, max(1, h // 8), max(1, w // 8)), generator=g)
    coarse = torch.nn.functional.interpolate(coarse.float(), size=(h, w), mode="nearest")
    return torch.cat([fine, coarse.to(torch.uint8)])


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
    predictor = Predictor(onnx_model, preprocess, [])
    got, got_scores = predictor.scored_logits(images)
    ref = reference or reference_answers(net, preprocess, check, detector)
    want, want_scores = ref.logits, ref.scores
    score_diff = None
    if detector is not None:
        if got_scores is None or want_scores is None:
            raise ExportError('the export lost the "none of these" score; nothing was written')
        score_diff = score_difference(got_scores, want_scores, float(detector.threshold))
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
        same = (got_scores > detector.threshold) == (want_scores > detector.threshold)
        parity.verdict_agreement = same.float().mean().item()
    if detector is not None and ref.probe_scores is not None:
        probes = predictor.scored_logits(probe_images(preprocess))[1]
        threshold = float(detector.threshold)
        parity.score_rel_diff = max(parity.score_rel_diff or 0.0,
                                    score_difference(probes, ref.probe_scores, threshold))  # fmt: skip
        unknown = ref.probe_scores > threshold
        if bool(unknown.any()):
            parity.probe_unknown_kept = (probes[unknown] > threshold).float().mean().item()
        parity.probe_unknown = (probes > threshold).float().mean().item()
        parity.reference_probe_unknown = (ref.probe_scores > threshold).float().mean().item()
    return parity


def score_difference(got: torch.Tensor, want: torch.Tensor, threshold: float) -> float:
    """The "none of these" scores' largest difference, relative to PyTorch's score or, where that
    is small, to the threshold it is read against: the score is a difference of distances that
    can each be ~1e5 (EfficientNet-Lite0), so float32's rounding of them is an absolute error a
    score near 0 cannot absorb; what such an error can change is a verdict, and only for scores
    within that share of the threshold."""
    if not want.numel():
        return 0.0
    scale = torch.clamp(want.double().abs(), min=abs(threshold))
    return float(((got.double() - want.double()).abs() / (1 + scale)).max())


def load_run_data(run: Run) -> Any:
    """The run's dataset: the in-memory one it was fitted on, else loaded again quietly."""
    return run.load_data() if run.data is not None else run.load_data(progress=False)


def check_images(
    run: Run,
    preprocess: Preprocess,
    images: Any = None,
    limit: int = CHECK_IMAGES,
    load: Callable[[], Any] | None = None,
) -> CheckImages:
    """The images to check an export on: ``images`` (prepared uint8, or any images
    ``Preprocess.prepare`` takes), else up to ``limit`` of the run's test split with their
    labels (the dataset from ``load()``, else loaded here), else of a folder it was evaluated
    on, else random ones (with a note saying why)."""
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
            data = (load or (lambda: load_run_data(run)))()
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
