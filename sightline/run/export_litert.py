"""LiteRT exports of a run (``--format litert``): the same ``ExportedClassifier`` as the ONNX
export, converted by ``litert-torch`` (PyTorch → .tflite, no TensorFlow), checked in LiteRT's
interpreter beside PyTorch and written atomically into ``export/`` (``run/exports.py`` calls in
here). What the file holds: ``infer/litert.py``.

Why these choices (measured, benchmarks/README.md): litert-torch converted every model tried
first time and its file runs within 3e-5 of PyTorch; onnx2tf clashed with sightline's ONNX
packages and its fp16 file answered wrongly. The batch is fixed at conversion (both of
litert-torch's dynamic routes fail on these graphs): ``LITERT_BATCH`` images, a camera frame.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from importlib.metadata import version
from typing import Any

import torch
from torch import nn

from sightline.errors import ExportError
from sightline.fileio import atomic_open
from sightline.infer.litert import quiet_litert
from sightline.infer.onnx import OnnxModel
from sightline.infer.runtime import quiet_exporter
from sightline.run.export_check import FLOAT_BAR, FormatReport, measure_parity
from sightline.run.export_graph import ExportedClassifier
from sightline.run.layout import RunLayout

Run = Any  # a ``sightline.run.Run`` (not imported: Run.export calls into here)

LITERT_BATCH = 1  # images per call of the .tflite (fixed when converted): one camera frame


class GlobalMaxPool(nn.Module):
    """``AdaptiveMaxPool2d(1)`` as a max over the spatial axes: LiteRT's converter has no
    lowering for adaptive max pooling (fastcnn ends in it); the same numbers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3), keepdim=True)


class ChannelsLast(nn.Module):
    """(N, H, W, C) images in, as an app holds a bitmap; the graph (``ExportedClassifier``) takes
    them (N, C, H, W). litert-torch's layout passes fold the transpose into the first layer."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.classifier = graph

    def forward(self, images: torch.Tensor) -> Any:
        return self.classifier(images.permute(0, 3, 1, 2))


def litert_ready(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with the layers LiteRT's converter cannot lower replaced by the same
    computation in ops it can (the network itself is left as it was)."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            size = getattr(child, "output_size", None)
            if isinstance(child, nn.AdaptiveMaxPool2d) and size in (1, (1, 1)):
                setattr(module, name, GlobalMaxPool())
    return net


def export_litert(
    run: Run,
    which: str,
    fp32: Any,
    net: nn.Module,
    preprocess: Any,
    check: Any,
    detector: Any,
    reference: Any,
    int8: bool = False,
    accept_drop: float | None = None,
) -> list[FormatReport]:
    """The run's model as a .tflite (uint8 channels-last images in, the ONNX export's outputs
    and metadata), checked on ``check`` against PyTorch's ``reference``; with ``int8`` also its
    INT8 copy (``run/quantize_litert.py``) against INT8's bar. ExportError with the numbers
    (and nothing of that format written) when one misses its bar."""
    from sightline.infer.litert import LiteRtSession, add_metadata, require_litert

    require_litert(convert=True)
    start = time.perf_counter()
    blob = convert(net, preprocess, detector)
    metadata = {
        **fp32.metadata,
        "converter": f"litert-torch {version('litert-torch')}",
        "input_layout": "NHWC",
        "batch": LITERT_BATCH,
    }
    runtime = f"LiteRT {version('ai-edge-litert')} (CPU)"
    loaded = OnnxModel(LiteRtSession(blob), metadata, name="check")
    parity = measure_parity(loaded, net, preprocess, check, detector, reference)
    if not parity.passed:
        raise ExportError(
            f"the LiteRT export of run {run.name!r} does not match PyTorch on {parity.images} "
            f"{check.source}: max abs difference of the logits {parity.max_abs_diff:.3g}; "
            "nothing was written"
        )
    layout = RunLayout(run.path)
    out = layout.litert(which)
    _write(add_metadata(blob, {**metadata, "parity": asdict(parity)}), out, run.path)
    reports = [FormatReport("litert", out, out.stat().st_size, runtime, parity, FLOAT_BAR,
                            time.perf_counter() - start, note=check.note)]  # fmt: skip
    if int8:
        from sightline.run.quantize import int8_verdict
        from sightline.run.quantize_litert import quantise_litert

        start = time.perf_counter()
        q = quantise_litert(blob)
        loaded = OnnxModel(LiteRtSession(q.model), metadata, name="check")
        parity = measure_parity(loaded, net, preprocess, check, detector, reference)
        bar = int8_verdict(
            f"the litert-int8 export of run {run.name!r}", parity, check, accept_drop
        )
        record = {"method": q.method, "layers_int8": q.quantised, "kept_float": q.kept_float}
        out = layout.litert_int8(which)
        meta = {**metadata, "quantization": record, "parity": asdict(parity)}
        _write(add_metadata(q.model, meta), out, run.path)
        reports.append(FormatReport("litert-int8", out, out.stat().st_size, runtime, parity, bar,
                                    time.perf_counter() - start, q.kept_float, check.note))  # fmt: skip
    return reports


def _write(blob: bytes, out: Any, root: Any) -> None:
    with atomic_open(out, "wb", root) as f:
        f.write(blob)


def convert(
    net: nn.Module, preprocess: Any, detector: Any = None, batch: int = LITERT_BATCH
) -> bytes:
    """The .tflite bytes of ``ExportedClassifier`` (``net``, ``preprocess``, ``detector``) with
    channels-last uint8 input of ``batch`` images; ExportError naming what the converter could
    not do."""
    graph = _contiguous(ExportedClassifier(litert_ready(net), preprocess, detector).eval())
    module = ChannelsLast(graph).eval()
    c, h, w = preprocess.input_shape
    sample = torch.zeros((batch, h, w, c), dtype=torch.uint8)
    try:
        with quiet_litert(), quiet_exporter(), torch.no_grad():
            import litert_torch  # its import logs too (JAX, TensorFlow's C++ start-up)

            return litert_torch.convert(module, (sample,)).model_content()
    except Exception as e:  # noqa: BLE001 - the converter fails in many types
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        first = lines[0] if lines else type(e).__name__
        raise ExportError(
            f"LiteRT's converter (litert-torch) could not convert this model: {first[:300]}"
        ) from None
    finally:
        graph.release()


def _contiguous(module: nn.Module) -> nn.Module:
    """``module`` with every parameter and buffer in contiguous memory: litert-torch 0.10 reads
    a second transposed-view constant (the "none of these" Gaussians' factors are) with the
    wrong strides, and the score came out wrong by thousands (a repro in benchmarks/README.md)."""
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if not t.is_contiguous():
                t.data = t.data.contiguous()
    return module
