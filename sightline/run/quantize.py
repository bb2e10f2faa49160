"""INT8 ONNX: ONNX Runtime's static quantisation of a run's fp32 export.

What is quantised, and what stays float (said in the export's report):

* The network's convolutions and matrix products, per output channel (weights int8, activations
  uint8, scales fitted on the run's own training images: ``CALIBRATION_IMAGES`` of them, a fixed
  sample, so two exports of a run are the same file).
* Kept float: the first layer (it sees the normalised image, whose range calibration fits
  badly), the classifier (its logits are the answer, and with few classes a 256-level grid
  moves them most), and depthwise convolutions (one filter per channel: after BatchNorm is
  folded in, their per-channel ranges differ by orders of magnitude). Measured on a pretrained
  EfficientNet-Lite0 run of 3 CIFAR classes: every layer quantised kept 78 % of its answers,
  all but the depthwise ones 83 %, all but those and the two ends 100 %. Also kept float:
  everything around the network: the cast and normalisation of the uint8 input, the flip TTA's
  mean and the "none of these" score (distances in feature space, read against a threshold
  fitted in float).

The network's own nodes are told apart by the exporter's ``namespace`` metadata: the wrapper
(``run/export_graph.py``) holds the network as ``net``, so its nodes' namespaces pass through
``/net:``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sightline.errors import ExportError
from sightline.infer.onnx import require_packages
from sightline.run.export_check import PROBES

MIN_AGREEMENT = 0.99  # INT8: the share of images whose top class stays PyTorch's
DEFAULT_ACCEPT_DROP = 0.5  # INT8: accuracy points it may lose against PyTorch
CALIBRATION_IMAGES = 256  # a fixed sample of the training images (seed 0)
CALIBRATION_BATCH = 32
QUANTISED_OPS = ("Conv", "Gemm", "MatMul")
NET_NAMESPACE = "/net:"  # the exporter's namespace of the wrapped network's nodes


@dataclass
class Quantised:
    model: bytes
    quantised: int  # how many layers are int8
    kept_float: dict[str, str] = field(default_factory=dict)  # what stayed float: why
    calibration_images: int = 0
    method: str = ""


def calibration_sample(images: torch.Tensor, n: int = CALIBRATION_IMAGES) -> torch.Tensor:
    """A fixed sample of ``n`` of ``images`` (seed 0): the same run, the same INT8 file."""
    g = torch.Generator().manual_seed(0)
    return images[torch.randperm(len(images), generator=g)[:n]]


def choose_layers(proto: Any) -> tuple[list[str], dict[str, str]]:
    """(the nodes to quantise, what stays float and why) of an fp32 sightline export."""
    layers = [n for n in proto.graph.node if n.op_type in QUANTISED_OPS and _in_network(n)]
    if len(layers) < 3:
        raise ExportError(
            f"the export has {len(layers)} layers of its network to quantise (3 or more needed: "
            "its first and last stay float); INT8 would gain nothing"
        )
    first, last = layers[0], layers[-1]
    depthwise = [n for n in layers[1:-1] if _groups(n) > 1]
    kept = {
        f"first layer ({first.op_type} {first.name})": "sees the normalised image",
        f"classifier ({last.op_type} {last.name})": "its logits are the answer",
        "input cast and normalisation": "uint8 in, float maths",
        'flip TTA mean and the "none of these" score': "distances read against a float threshold",
    }
    if depthwise:
        kept[f"{len(depthwise)} depthwise convolutions"] = "their channels' ranges differ widely"
    return [n.name for n in layers[1:-1] if n not in depthwise], kept


def _groups(node: Any) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def outside_network(proto: Any) -> list[str]:
    """Every node outside the network: the input's normalisation, the test-time views and the
    "none of these" score, kept float. Naming the score's matrix products alone is not enough
    for NNCF: it put quantisers on the outputs of the score's Power, Multiply and ReduceSum,
    with ranges from the training images, and the score came out one constant for every image
    (Lite2: -1.88 for noise the float score puts at 190,000). A node that makes one of the
    graph's outputs is named by OpenVINO after that output ("ood_score"): both names."""
    results = {o.name for o in proto.graph.output}
    outside = [n for n in proto.graph.node if not _in_network(n)]
    return [n.name for n in outside] + [o for n in outside for o in n.output if o in results]


def _in_network(node: Any) -> bool:
    return any(p.key == "namespace" and NET_NAMESPACE in p.value for p in node.metadata_props)


def quantise_onnx(model_bytes: bytes, calibration: torch.Tensor) -> Quantised:
    """``model_bytes`` (an fp32 sightline export) with its network's inner layers in INT8 (QDQ,
    per channel), the activations' ranges fitted on ``calibration`` (prepared uint8 images)."""
    require_packages(["onnx", "onnxruntime"], "INT8 export")
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise ExportError("INT8 needs images to fit its scales on; the run has no training images")
    proto = onnx.load_from_string(model_bytes)
    nodes, kept = choose_layers(proto)
    batches = [
        calibration[i : i + CALIBRATION_BATCH].numpy()
        for i in range(0, len(calibration), CALIBRATION_BATCH)
    ]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            return next(({"images": b} for b in self.left), None)

    with tempfile.TemporaryDirectory(prefix="sightline-int8-") as tmp:
        src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        src.write_bytes(model_bytes)
        # ORT's recommended first step: shapes inferred, the graph optimised for quantising.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTISED_OPS),
            nodes_to_quantize=nodes,
            calibrate_method=CalibrationMethod.MinMax,
        )
        blob = out.read_bytes()
    return Quantised(
        blob,
        len(nodes),
        kept,
        len(calibration),
        "ONNX Runtime static quantisation (QDQ, per-channel int8 weights, uint8 activations, min-max)",
    )


def int8_verdict(what: str, p: Any, check: Any, accept_drop: float | None) -> str:
    """The bar an INT8 export met (text for the report); ExportError with the numbers when not."""
    drop = None
    if p.accuracy is not None and p.reference_accuracy is not None:
        drop = 100 * (p.reference_accuracy - p.accuracy)
    limit = DEFAULT_ACCEPT_DROP if accept_drop is None else accept_drop
    bar = (
        f"accuracy drop <= {limit:g} points"
        if accept_drop is not None
        else f"top-1 agreement >= {MIN_AGREEMENT:.0%}"
        + (
            ' and "none of these" verdicts (also on noise)'
            if p.verdict_agreement is not None
            else ""
        )
        + f", accuracy drop <= {limit:g} points"
    )
    misses = []
    if accept_drop is None and p.top1_agreement < MIN_AGREEMENT:
        misses.append(f"top-1 agreement {p.top1_agreement:.2%} < {MIN_AGREEMENT:.0%}")
    verdicts = p.verdict_agreement
    if accept_drop is None and verdicts is not None and verdicts < MIN_AGREEMENT:
        misses.append(
            f'the "none of these" verdict kept on {verdicts:.2%} of the images < '
            f"{MIN_AGREEMENT:.0%} (unknown {p.unknown:.1%}, PyTorch {p.reference_unknown:.1%})"
        )
    kept = p.probe_unknown_kept
    if accept_drop is None and kept is not None and kept < MIN_AGREEMENT:
        misses.append(
            f"of {PROBES} noise images, answered unknown {p.probe_unknown:.0%} where PyTorch "
            f"answers {p.reference_probe_unknown:.0%}: its score no longer tells them apart"
        )
    if drop is not None and drop > limit:
        misses.append(
            f"accuracy {p.accuracy:.2%} against PyTorch's {p.reference_accuracy:.2%} "
            f"(a drop of {drop:.2f} points > {limit:g})"
        )
    if misses:
        raise ExportError(
            f"{what} answers too differently from PyTorch on "
            f"{p.images} {check.source}: {'; '.join(misses)}. Nothing INT8 was written; to "
            "accept it, export with --accept-drop POINTS (accept_drop=...)"
        )
    return bar if drop is not None else bar + " (no labels here: agreement only)"
