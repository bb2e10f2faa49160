"""Core ML exports of a run (``--format coreml``): an ML Program (``.mlpackage``, zipped into one
file) by ``coremltools``, for iOS and macOS apps (``run/exports.py`` calls in here).

What the model holds:

* Input ``image``: a Core ML image (CVPixelBuffer) of the run's size, gray or RGB, its 0-255
  pixels as they are (scale 1, no bias): Vision's ``VNCoreMLRequest`` hands a photo to it as is.
  Resizing and framing to that size are the app's (``MODEL_CARD.md``; ``predict.py`` of
  ``--format package`` is the reference).
* Inside: ``ExportedClassifier`` as every export (normalisation, flip TTA, calibrated logits,
  the "none of these" score), then a softmax: a Core ML *classifier*, whose outputs are
  ``classLabel`` (the top class) and ``classLabel_probs`` (class → calibrated probability), the
  run's class names in the model, and ``ood_score`` (over the threshold in the metadata: none of
  these). Float32 throughout: the score's distances pass 65,504, float16's largest number.
* Metadata: sightline's JSON in the model's ``userDefined`` metadata under ``sightline``.

Core ML runs on Apple's systems only, so it is **not run here**. What is checked instead: the
program handed to coremltools (``torch.export``'s, decomposed) answers as PyTorch on the check
images, and the saved model's spec holds the input, outputs, class labels and metadata above.
Tracing (``torch.jit.trace``) fails on the Lites' "same" padding; ``torch.export`` converts them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sightline.errors import ExportError, SightlineError
from sightline.fileio import atomic_open
from sightline.infer.runtime import EXPORT_INSTALL_HINT, quiet_stderr, release_absl_stderr
from sightline.run.export_check import FormatReport
from sightline.run.export_graph import ExportedClassifier
from sightline.run.layout import RunLayout

Run = Any  # a ``sightline.run.Run`` (not imported: Run.export calls into here)

META_KEY = "sightline"
SCORE = "ood_score"
PROBS_ATOL = 1e-5  # the exported program's probabilities against softmax(PyTorch's logits)
LOGGERS = ("coremltools", "torch.export", "torch._export", "torch.utils._pytree")


def require_coremltools() -> Any:
    try:
        with quiet_stderr(LOGGERS):  # its import says which versions it was not tested with
            import coremltools
        release_absl_stderr()
    except ImportError:
        raise SightlineError(f"coremltools is not installed: {EXPORT_INSTALL_HINT}") from None
    return coremltools


class Classifier(nn.Module):
    """``ExportedClassifier`` with its logits as probabilities: a Core ML classifier reads
    them (``ClassifierConfig``) and names the classes."""

    def __init__(self, graph: ExportedClassifier) -> None:
        super().__init__()
        self.classifier = graph

    def forward(self, image: torch.Tensor) -> Any:
        out = self.classifier(image)
        logits, score = out if isinstance(out, tuple) else (out, None)
        probs = torch.softmax(logits, 1)
        return probs if score is None else (probs, score)


def export_coreml(
    run: Run, which: str, fp32: Any, net: nn.Module, preprocess: Any, check: Any, detector: Any,
    reference: Any,
) -> FormatReport:  # fmt: skip
    """The run's model as ``export/<which>.mlpackage.zip``; the program converted is checked on
    ``check`` against PyTorch's ``reference`` and the saved spec read back (``check_spec``).
    ExportError (nothing written) when either fails or coremltools cannot convert it."""
    ct = require_coremltools()
    start = time.perf_counter()
    classes = list(fp32.metadata["classes"])
    graph = ExportedClassifier(net, preprocess, detector).eval()
    try:
        program = _program(Classifier(graph).eval(), preprocess)
        agreement, diff = _check_program(program, check, reference, detector)
        metadata = {**fp32.metadata, "converter": f"coremltools {version('coremltools')}"}
        out = RunLayout(run.path).coreml(which)
        with tempfile.TemporaryDirectory(prefix=".coreml-", dir=out.parent) as tmp:
            package = Path(tmp) / f"{which}.mlpackage"
            _convert(ct, program, preprocess, classes, detector is not None, metadata, package)
            spec = check_spec(package, preprocess, classes, detector is not None)
            with atomic_open(out, "wb", run.path) as f, zipfile.ZipFile(f, "w") as z:
                for path in sorted(package.rglob("*")):
                    if path.is_file():
                        z.write(path, path.relative_to(package.parent).as_posix())
    finally:
        graph.release()
    note = (
        f"Core ML runs on Apple's systems only: not run here. Checked: the program given to "
        f"coremltools answers as PyTorch on {len(check.images)} {check.source} (top-1 agreement "
        f"{agreement:.2%}, probabilities off by at most {diff:.2g}), and the saved model's {spec}"
    )
    if check.note:
        note += f"; {check.note}"
    return FormatReport("coreml", out, out.stat().st_size,
                        f"not run (Core ML needs macOS or iOS; coremltools {version('coremltools')} read its spec)",
                        None, "the converted program within 1e-5 of PyTorch's probabilities; the spec as made",
                        time.perf_counter() - start, note=note)  # fmt: skip


def _program(module: nn.Module, preprocess: Any) -> Any:
    c, h, w = preprocess.input_shape
    sample = torch.zeros((2, c, h, w))
    try:
        with quiet_stderr(LOGGERS), torch.no_grad():
            batch = {"image": {0: torch.export.Dim("batch", max=1024)}}
            return torch.export.export(module, (sample,), dynamic_shapes=batch).run_decompositions(
                {}
            )
    except Exception as e:  # noqa: BLE001 - torch.export fails in many types
        raise ExportError(
            f"torch.export could not capture the model for Core ML: {_first(e)}"
        ) from None


def _check_program(program: Any, check: Any, reference: Any, detector: Any) -> tuple[float, float]:
    """(top-1 agreement, max probability difference) of the program against PyTorch; ExportError
    beyond ``PROBS_ATOL`` or a score off by more than the export's score bar."""
    from sightline.run.export_check import SCORE_RTOL, score_difference

    run, scored = program.module(), detector is not None
    probs, scores = [], []
    with torch.no_grad():
        for x in check.images.split(64):
            out = run(x.float())
            p, s = out if scored else (out, None)
            probs.append(p)
            if s is not None:
                scores.append(s)
    got = torch.cat(probs) if probs else torch.empty(0)
    want = torch.softmax(reference.logits.float(), 1)
    diff = float((got - want).abs().max()) if got.numel() else 0.0
    agree = float((got.argmax(1) == want.argmax(1)).float().mean()) if got.numel() else 1.0
    bad = diff > PROBS_ATOL
    if scored and reference.scores is not None and scores:
        off = score_difference(torch.cat(scores), reference.scores, float(detector.threshold))
        bad = bad or off > SCORE_RTOL
    if bad:
        raise ExportError(
            f"the program given to coremltools does not answer as PyTorch (probabilities off by "
            f"{diff:.3g}); nothing was written"
        )
    return agree, diff


def _convert(ct: Any, program: Any, preprocess: Any, classes: list[str], scored: bool,
             metadata: dict[str, Any], out: Path) -> None:  # fmt: skip
    c, h, w = preprocess.input_shape
    layout = ct.colorlayout.GRAYSCALE if c == 1 else ct.colorlayout.RGB
    try:
        with quiet_stderr(LOGGERS):
            model = ct.convert(
                program,
                inputs=[
                    ct.ImageType(
                        name="image",
                        shape=(1, c, h, w),
                        scale=1.0,
                        bias=[0.0] * c,
                        color_layout=layout,
                    )
                ],  # fmt: skip
                classifier_config=ct.ClassifierConfig(classes),
                compute_precision=ct.precision.FLOAT32,  # the score passes float16's range
                minimum_deployment_target=ct.target.iOS16,
                convert_to="mlprogram",
            )
            spec = model.get_spec()
            if scored:  # the score's output is named by the graph ("add_7"): give it its name
                ours = [o.name for o in spec.description.output]
                extra = [n for n in ours if n not in ("classLabel", "classLabel_probs")]
                ct.utils.rename_feature(spec, extra[0], SCORE)
                model = ct.models.MLModel(spec, weights_dir=model.weights_dir, skip_model_load=True)
            model.short_description = (
                f"sightline classifier of {len(classes)} classes (run {metadata.get('run')})"
            )
            model.user_defined_metadata[META_KEY] = json.dumps(metadata)
            model.save(str(out))
    except ExportError:
        raise
    except Exception as e:  # noqa: BLE001 - coremltools fails in many types
        shutil.rmtree(out, ignore_errors=True)
        raise ExportError(f"coremltools could not convert this model: {_first(e)}") from None


def check_spec(package: Path, preprocess: Any, classes: list[str], scored: bool) -> str:
    """Read a saved .mlpackage's spec back and hold it to what the export made: an image input
    of the run's size and colour, the classifier's outputs (and the score), the run's class
    labels, sightline's metadata. Returns what was checked; ExportError naming what is wrong."""
    ct = require_coremltools()
    with quiet_stderr(LOGGERS):
        spec = ct.utils.load_spec(str(package))
    c, h, w = preprocess.input_shape
    (inp,) = spec.description.input
    image = inp.type.imageType
    colour = "GRAYSCALE" if c == 1 else "RGB"
    space = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(image.colorSpace)
    outputs = [o.name for o in spec.description.output]
    want_outputs = ["classLabel", "classLabel_probs", *([SCORE] if scored else [])]
    labels = _class_labels(spec)
    meta = json.loads(spec.description.metadata.userDefined.get(META_KEY, "{}") or "{}")
    problems = [
        *([f"input {inp.name} is {w}x{h} {colour}? ({image.width}x{image.height} {space})"]
          if (inp.name, image.width, image.height, space) != ("image", w, h, colour) else []),
        *([f"outputs {outputs}, not {want_outputs}"] if sorted(outputs) != sorted(want_outputs) else []),
        *([f"class labels {labels}, not {classes}"] if labels != classes else []),
        *(["no sightline metadata"] if meta.get("classes") != classes else []),
    ]  # fmt: skip
    if problems:
        raise ExportError(f"the Core ML model as saved is not as made: {'; '.join(problems)}")
    return (
        f"spec holds an image input {w}x{h} {colour.lower()}, outputs {', '.join(want_outputs)}, "
        f"the {len(classes)} class labels and sightline's metadata"
    )


def _class_labels(spec: Any) -> list[str]:
    """The labels of the program's ``classify`` op (an ML Program keeps them there)."""
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                if op.type == "classify":
                    arg = op.inputs["classes"].arguments[0].value.immediateValue.list
                    return [v.immediateValue.tensor.strings.values[0] for v in arg.values]
    return []


def _first(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]
