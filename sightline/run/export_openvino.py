"""OpenVINO exports of a run: the IR converted from its ONNX export (``openvino``), and that IR
quantised to INT8 by NNCF (``openvino-int8``), each checked in OpenVINO's own runtime beside
PyTorch and written atomically into ``export/`` (``run/exports.py`` calls in here).

INT8: NNCF's post-training quantisation (``nncf.quantize``, the performance preset, full bias
correction) on a fixed sample of the run's training images, the "none of these" score kept float
(its matrix products are distances read against a float threshold; NNCF keeps what else it
judges sensitive). The same bar as ONNX Runtime's INT8 (``quantize.int8_verdict``). Measured on
a pretrained EfficientNet-Lite0 run (2 cores): 2.2x ONNX Runtime's float32 at batch 32, 3.6x
smaller, the test accuracy kept (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sightline.errors import ExportError
from sightline.fileio import inside
from sightline.infer.onnx import OnnxModel
from sightline.run.export_check import FLOAT_BAR, FormatReport, measure_parity
from sightline.run.layout import RunLayout
from sightline.run.quantize import (
    calibration_sample,
    int8_verdict,
    outside_network,
)

Run = Any  # a ``sightline.run.Run`` (not imported: Run.export calls into here)
COMPRESSED_SIZE = 65_536  # INT8: float32 constants of this many values or more, stored smaller


def export_openvino(
    run: Run,
    which: str,
    fp32: Any,
    net: Any,
    preprocess: Any,
    check: Any,
    detector: Any,
    reference: Any,
    calibration: torch.Tensor | None = None,
    accept_drop: float | None = None,
) -> Any:
    """The ONNX export ``fp32`` (an ``ExportResult``) as an OpenVINO IR; with ``calibration``
    (uint8 training images) quantised to INT8. Checked on ``check`` against PyTorch's
    ``reference``; ExportError with the numbers (and nothing written) when it misses its bar."""
    from sightline.infer.openvino import compile_model, require_openvino, set_metadata

    ov = require_openvino(int8=calibration is not None)
    start = time.perf_counter()
    model = ov.convert_model(str(fp32.path))
    layout, fmt = RunLayout(run.path), "openvino"
    extra: dict[str, Any] = {"converter": f"openvino {ov.__version__}"}
    if calibration is not None:
        model, extra["quantization"] = _quantise(model, fp32.path, calibration)
        fmt = "openvino-int8"
    out = layout.openvino(which) if fmt == "openvino" else layout.openvino_int8(which)
    # The check runs the file as saved (read back), not the model in memory.
    if fmt == "openvino-int8":
        _compress_constants(ov, model)
    set_metadata(model, {**fp32.metadata, **extra})
    tmp = Path(tempfile.mkdtemp(prefix=".openvino-", dir=out.parent))
    try:
        ov.save_model(model, str(tmp / "m.xml"), compress_to_fp16=False)
        loaded = OnnxModel(compile_model(str(tmp / "m.xml")), fp32.metadata, name="check")
        parity = measure_parity(loaded, net, preprocess, check, detector, reference)
        what = f"the {fmt} export of run {run.name!r}"
        if fmt == "openvino-int8":
            bar = int8_verdict(what, parity, check, accept_drop)
        elif parity.passed:
            bar = FLOAT_BAR
        else:
            raise ExportError(
                f"{what} does not match PyTorch on {parity.images} {check.source}: max abs "
                f"difference of the logits {parity.max_abs_diff:.3g}; nothing was written"
            )
        set_metadata(model, {**fp32.metadata, **extra, "parity": asdict(parity)})
        _save(ov, model, out, run.path, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = out.stat().st_size + out.with_suffix(".bin").stat().st_size
    kept = (extra.get("quantization") or {}).get("kept_float", {})
    return FormatReport(fmt, out, size, f"OpenVINO {ov.__version__} (CPU, float32 compiled)",
                        parity, bar, time.perf_counter() - start, kept, check.note)  # fmt: skip


def _quantise(model: Any, onnx_path: Path, calibration: torch.Tensor) -> tuple[Any, dict]:
    import nncf
    import onnx
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    outside = outside_network(onnx.load(str(onnx_path)))
    sample = calibration_sample(calibration).numpy()
    try:
        # NNCF logs its steps and draws progress bars on stdout, where `--json` writes the report.
        with contextlib.redirect_stdout(io.StringIO()), _nncf_level(logging.ERROR):
            quantised = nncf.quantize(
                model,
                nncf.Dataset([sample[i : i + 1] for i in range(len(sample))]),
                preset=nncf.QuantizationPreset.PERFORMANCE,
                subset_size=len(sample),
                # NNCF's full bias correction, not its fast one: on a pretrained Lite0 run it kept
                # the test accuracy (96.44 %, the fast one 95.89 %) for ~5 s more of quantising.
                fast_bias_correction=False,
                ignored_scope=nncf.IgnoredScope(names=outside, validate=False),
                # Each activation's range: the extremes over the sample, not the mean of each
                # image's (NNCF's default), which clips an unusual image's features back among the
                # known ones: the "none of these" score then answered unknown for none of the
                # cifar3-fast test images (PyTorch: 2.75 %); with the extremes 2.70 %.
                advanced_parameters=AdvancedQuantizationParameters(
                    activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX
                ),
            )
    except Exception as e:  # noqa: BLE001 - NNCF's failures come in many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"NNCF could not quantise the model: {first[:300]}") from None
    record = {
        "method": f"NNCF {nncf.__version__} post-training quantisation (performance preset, "
        "activation ranges from the sample's extremes, full bias correction)",
        "calibration_images": len(sample),
        "kept_float": {
            'the "none of these" score': "distances read against a float threshold (its "
            "matrices stored as int8 with a scale per row, computed in float32)",
            "input cast and normalisation": "uint8 in, float maths",
        },
    }
    return quantised, record


def _compress_constants(ov: Any, model: Any) -> None:
    """Store the large float32 constants INT8 left (the score's matrices: half of Lite2's INT8
    file) smaller, made float32 again where they are read, so the score's maths stays float32:
    a matrix as int8 with a scale per row (weight-only; the score moved by at most 0.5 % of
    its threshold on Lite2, every verdict kept), anything else as float16. (OpenVINO's own
    ``compress_to_fp16`` leaves them float32: it keeps subgraphs with Power and ReduceSum, as
    the score's, in full.)"""
    import numpy as np
    from openvino import opset13

    for op in model.get_ops():
        if op.get_type_name() != "Constant" or op.get_output_element_type(0) != ov.Type.f32:
            continue
        values = op.get_data()
        if values.size < COMPRESSED_SIZE:
            continue
        if values.ndim == 2:
            scale = np.maximum(np.abs(values).max(axis=1, keepdims=True), 1e-30) / 127.0
            q = opset13.constant(np.round(values / scale).astype(np.int8))
            small = opset13.multiply(opset13.convert(q, ov.Type.f32),
                                     opset13.constant(scale.astype(np.float32)))  # fmt: skip
        else:
            small = opset13.convert(opset13.constant(values.astype(np.float16)), ov.Type.f32)
        for target in list(op.output(0).get_target_inputs()):
            target.replace_source_output(small.output(0))
    model.validate_nodes_and_infer_types()


@contextlib.contextmanager
def _nncf_level(level: int) -> Any:
    from nncf.common.logging.logger import nncf_logger, set_log_level

    before = nncf_logger.level
    set_log_level(level)
    try:
        yield
    finally:
        set_log_level(before)


def _save(ov: Any, model: Any, out: Path, root: Path, tmp: Path) -> None:
    """``out`` (.xml) and its .bin written whole or not at all, never through a link (saved in
    ``tmp``, beside it, then moved)."""
    inside(root, out)
    inside(root, out.with_suffix(".bin"))
    ov.save_model(model, str(tmp / "w.xml"), compress_to_fp16=False)
    os.replace(tmp / "w.bin", out.with_suffix(".bin"))  # the weights first: the .xml names them
    os.replace(tmp / "w.xml", out)
