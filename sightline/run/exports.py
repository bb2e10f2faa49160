"""``export``: a run's model in one or more formats, each checked where its runtime runs here and
reported beside PyTorch in ``export/report.json``.

Every format is checked on the same images (up to ``REPORT_IMAGES`` of the run's test split,
with their labels) against PyTorch's answers, computed once: top-1 agreement, the logits' max
and mean difference, the accuracy of both, and the share each answers "none of these". A format
that misses its bar is not written, and the error gives the numbers:

* ``onnx`` (fp32): logits within 1e-4 of PyTorch's (``run/export.py``).
* ``onnx-int8``, ``openvino-int8``, ``litert-int8``: top-1 agreement of 99 % or more and an accuracy drop of at
  most 0.5 points (``run/quantize.py``'s ``int8_verdict``); ``accept_drop`` (``--accept-drop X``) accepts a drop up to X
  points instead, whatever the agreement. It is quantised from the fp32 export, which is written
  too (``run/quantize.py`` says what stays float).
* ``openvino``, ``openvino-int8``: ``run/export_openvino.py``.
* ``litert``: ``run/export_litert.py`` (the float bar, checked in LiteRT's interpreter);
  ``litert-int8``: its INT8 copy (``run/quantize_litert.py``), INT8's bar.
* ``coreml``: ``run/export_coreml.py`` (not run here: the converted program and the spec).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sightline.data.preprocess import Preprocess
from sightline.errors import ExportError, SightlineError
from sightline.fileio import atomic_open, atomic_write_json, read_json_inside
from sightline.run.export import export_onnx, set_metadata
from sightline.run.export_check import (
    FLOAT_BAR,
    FormatReport,
    check_images,
    load_run_data,
    measure_parity,
    reference_answers,
)
from sightline.run.layout import RunLayout
from sightline.run.quantize import calibration_sample, int8_verdict, quantise_onnx

# ``run``: a ``sightline.run.Run`` (not imported: Run.export calls into here)
Run = Any

EXPORT_FORMATS: dict[str, str] = {
    "onnx": "ONNX, float32 (ONNX Runtime)",
    "onnx-int8": "ONNX, INT8 weights and activations (ONNX Runtime)",
    "openvino": "OpenVINO IR (.xml + .bin), float32, converted from the ONNX export",
    "openvino-int8": "OpenVINO IR, INT8 by NNCF's post-training quantisation (OpenVINO's runtime)",
    "litert": "LiteRT (.tflite, TensorFlow Lite's successor) for phones, float32; uint8 "
    "channels-last images in, one at a time",
    "litert-int8": "LiteRT with INT8 convolutions (dynamic range: int8 weights, activations "
    "quantised per image at run time), with the float .tflite it is made from",
    "coreml": "Core ML (.mlpackage, zipped) for iOS and macOS apps: a classifier taking an "
    "image; its spec is checked here, not run (Core ML needs Apple's systems)",
    "package": "one zip to hand on: the ONNX model(s), MODEL_CARD.md and a predict.py that "
    "needs ONNX Runtime only",
}
REPORT_IMAGES = 2000  # test images every format is checked on, beside PyTorch


@dataclass
class ExportReport:
    run: str
    which: str
    exports: list[FormatReport]
    path: Path  # export/report.json
    package: Path | None = None  # the zip of --format package

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "checkpoint": self.which,
            "exports": [{**e.to_dict(), "checkpoint": self.which} for e in self.exports],
            **({"package": self.package.name} if self.package else {}),
        }


def parse_formats(formats: str | Sequence[str]) -> list[str]:
    """``"onnx,onnx-int8"`` or a list: the formats in order, each once; ExportError naming an
    unknown one and those there are."""
    names = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for name in (p.strip() for n in names for p in str(n).split(",")):
        if name not in EXPORT_FORMATS:
            raise ExportError(
                f"unknown export format {name!r}; the formats: {', '.join(EXPORT_FORMATS)}"
            )
        if name not in out:
            out.append(name)
    if not out:
        raise ExportError(f"name an export format: {', '.join(EXPORT_FORMATS)}")
    return out


def export(
    run: Run,
    formats: str | Sequence[str] = "onnx",
    which: str = "best",
    accept_drop: float | None = None,
    images: Any = None,
    calibration: torch.Tensor | None = None,
) -> ExportReport:
    """Export a run's ``which`` checkpoint in ``formats`` (``EXPORT_FORMATS``) into ``<run>/export/``,
    check each against PyTorch on up to 2,000 of the run's test images (or ``images``), and write
    ``export/report.json``. ``accept_drop``: the accuracy points an INT8 export may lose (default
    0.5, with 99 % top-1 agreement). ``calibration``: prepared uint8 images to fit INT8's scales
    on (default a fixed sample of the run's training images). ExportError when a format misses
    its bar (nothing of it is written) or cannot be made."""
    from sightline.infer.ood import detector_of
    from sightline.run import checkpoint as ckpt

    wanted = parse_formats(formats)
    if {"openvino", "openvino-int8"} & set(wanted):  # a missing converter: said before any work
        from sightline.infer.openvino import require_openvino

        require_openvino(int8="openvino-int8" in wanted)
    if {"litert", "litert-int8"} & set(wanted):
        from sightline.infer.litert import require_litert

        require_litert(convert=True)
    if "coreml" in wanted:
        from sightline.run.export_coreml import require_coremltools

        require_coremltools()
    if accept_drop is not None and not (0 <= accept_drop <= 100):
        raise ExportError(f"accept_drop is accuracy points, 0 to 100, not {accept_drop!r}")
    layout = RunLayout(run.path)
    net, meta = ckpt.load_model(run.model_file(which), "cpu")
    net = net.float().eval()
    preprocess = Preprocess.from_dict(meta["preprocess"])
    detector = detector_of(net)
    # The run's dataset, decoded at most once: the check's test images and INT8's training sample.
    data = functools.cache(lambda: load_run_data(run))
    check = check_images(run, preprocess, images, limit=REPORT_IMAGES, load=data)
    reference = reference_answers(net, preprocess, check, detector)

    reports: list[FormatReport] = []
    fp32 = export_onnx(run, which=which, images=check, reference=reference)
    reports.append(onnx_entry(fp32))
    if "onnx-int8" in wanted:
        start = time.perf_counter()
        sample = calibration if calibration is not None else _training_images(data)
        q = quantise_onnx(fp32.path.read_bytes(), calibration_sample(sample))
        parity = measure_parity(q.model, net, preprocess, check, detector, reference)
        bar = int8_verdict(f"the INT8 export of run {run.name!r}", parity, check, accept_drop)
        out = layout.onnx_int8(which)
        metadata = {
            **fp32.metadata,
            "quantization": {
                "method": q.method,
                "layers_int8": q.quantised,
                "kept_float": q.kept_float,
                "calibration_images": q.calibration_images,
            },
            "parity": asdict(parity),
        }
        import onnx

        proto = onnx.load_from_string(q.model)
        set_metadata(proto, metadata)
        blob = proto.SerializeToString()
        with atomic_open(out, "wb", run.path) as f:
            f.write(blob)
        atomic_write_json(out.with_name(out.name + ".json"), metadata, run.path)
        reports.append(
            FormatReport(
                "onnx-int8",
                out,
                len(blob),
                _ort_version(),
                parity,
                bar,
                time.perf_counter() - start,
                q.kept_float,
                check.note,
            )
        )
    for fmt in ("openvino", "openvino-int8"):
        if fmt in wanted:
            from sightline.run.export_openvino import export_openvino

            sample = None
            if fmt == "openvino-int8":
                sample = calibration if calibration is not None else _training_images(data)
            reports.append(
                export_openvino(
                    run, which, fp32, net, preprocess, check, detector, reference,
                    calibration=sample, accept_drop=accept_drop,
                )
            )  # fmt: skip
    if {"litert", "litert-int8"} & set(wanted):
        from sightline.run.export_litert import export_litert

        reports += export_litert(run, which, fp32, net, preprocess, check, detector, reference,
                                 int8="litert-int8" in wanted, accept_drop=accept_drop)  # fmt: skip
    if "coreml" in wanted:
        from sightline.run.export_coreml import export_coreml

        reports.append(export_coreml(run, which, fp32, net, preprocess, check, detector, reference))
    report = ExportReport(run.name, which, reports, layout.export_report)
    card = _write_card(run, report, fp32.metadata)
    if "package" in wanted:
        report.package = _write_package(run, report, card, layout.package(which))
    _write_report(report, run.path)
    return report


def onnx_entry(fp32: Any) -> FormatReport:
    """The report's entry of an ONNX export (``export_onnx``'s ``ExportResult``)."""
    return FormatReport("onnx", fp32.path, fp32.size_bytes, _ort_version(), fp32.parity,
                        FLOAT_BAR, fp32.seconds, note=fp32.note)  # fmt: skip


def record_onnx(run: Run, fp32: Any, which: str = "best") -> ExportReport:
    """An ONNX export ``export_onnx`` wrote into the run's export/ folder (``sightline export
    RUN``), entered in ``export/report.json`` and ``MODEL_CARD.md`` as ``export`` enters its
    formats."""
    report = ExportReport(run.name, which, [onnx_entry(fp32)], RunLayout(run.path).export_report)
    _write_card(run, report, fp32.metadata)
    _write_report(report, run.path)
    return report


def _write_card(run: Run, report: ExportReport, metadata: dict[str, Any]) -> str:
    from sightline.run.model_card import model_card

    card = model_card(run, report, metadata)
    with atomic_open(RunLayout(run.path).model_card, "w", run.path) as f:
        f.write(card)
    return card


def _write_package(run: Run, report: ExportReport, card: str, out: Path) -> Path:
    """The zip to hand on: ``<run>/model.onnx`` (and ``model.int8.onnx``, ``model.tflite``), ``MODEL_CARD.md``,
    ``predict.py`` (ONNX Runtime, numpy and Pillow; sightline's answers) and ``report.json``.
    The OpenVINO files stay in export/: predict.py runs ONNX."""
    import json
    import zipfile
    from importlib.resources import files

    script = (files("sightline.run") / "standalone_predict.py").read_text()
    names = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "litert": "model.tflite",
             "litert-int8": "model.int8.tflite"}  # fmt: skip
    with atomic_open(out, "wb", run.path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        for e in report.exports:
            if e.format in names:
                z.write(e.path, f"{run.name}/{names[e.format]}")
            elif e.format == "coreml":  # the .mlpackage folder itself, for Xcode
                with zipfile.ZipFile(e.path) as mlpackage:
                    for item in mlpackage.infolist():
                        inner = item.filename.split("/", 1)[1] if "/" in item.filename else ""
                        if inner and not item.is_dir():
                            z.writestr(f"{run.name}/model.mlpackage/{inner}", mlpackage.read(item))
        z.writestr(f"{run.name}/MODEL_CARD.md", card)
        z.writestr(f"{run.name}/predict.py", script)
        z.writestr(f"{run.name}/report.json", json.dumps(report.to_dict(), indent=2))
    return out


def _training_images(data: Callable[[], Any]) -> torch.Tensor:
    """The run's training images (``data()``: its dataset, loaded once), to fit INT8 on."""
    try:
        loaded = data()
    except (SightlineError, OSError) as e:
        raise ExportError(
            f"INT8 fits its scales on the run's training images, which cannot be loaded ({e}); "
            "pass some as calibration=... (prepared uint8)"
        ) from None
    return loaded.splits()["train"].images


def _ort_version() -> str:
    import onnxruntime

    return f"ONNX Runtime {onnxruntime.__version__} (CPU)"


def _write_report(report: ExportReport, root: Path) -> None:
    """``export/report.json``: one entry per file; an export of another format or checkpoint
    made before stays beside this one's while its file is there."""
    earlier: list[dict[str, Any]] = []
    if report.path.is_file():
        try:
            earlier = read_json_inside(root, report.path).get("exports", [])
        except (SightlineError, OSError, ValueError, AttributeError):
            earlier = []
    mine = {e.path.name for e in report.exports}
    kept = [
        e
        for e in earlier
        if isinstance(e, dict)
        and e.get("path") not in mine
        and (report.path.parent / str(e.get("path"))).is_file()
    ]
    body = report.to_dict()
    body["exports"] = kept + body["exports"]
    atomic_write_json(report.path, body, root)
