"""INT8 LiteRT (``--format litert-int8``): Google's ai-edge-quantizer on the float .tflite
(``run/export_litert.py``): the network's convolutions with int8 weights (per output channel),
their activations quantised to int8 at run time, image by image ("dynamic range": XNNPACK's
int8 kernels on phones and CPUs), for a file a quarter the size in its layers.

Why dynamic and not static (activations' ranges fitted once on training images), measured on
the squares run of the tests and a pretrained EfficientNet-Lite0 run (benchmarks/README.md):
static INT8 clips each layer's output to the ranges the training images reach, and an image
unlike them, which the "none of these" score must see as far away, is clipped back among them:
static INT8 on the convolutions answered unknown for 20 % of the squares' test images (PyTorch:
0 %), with int16 activations too; dynamic ranges kept every verdict and every answer.

Kept float (said in the report): depthwise convolutions, the classifier's and the score's
matrix products (quantised, the score moved 10x more), the input's cast and normalisation.
"""

from __future__ import annotations

from importlib.metadata import version

from sightline.errors import ExportError
from sightline.run.quantize import Quantised

QUANTISED_TFL_OPS = ("CONV_2D",)
KEPT_FLOAT = {
    "depthwise convolutions": "one filter per channel: ranges that differ by orders of magnitude",
    "fully connected layers": "the classifier's logits and the score's distances: a 256-level "
    "grid moved the score 10x more",
    "input cast and normalisation": "uint8 in, float maths",
}


def quantise_litert(model: bytes) -> Quantised:
    """``model`` (a float .tflite of ``export_litert.convert``) with its convolutions' weights in
    INT8 and their activations quantised at run time (no calibration images needed)."""
    from ai_edge_quantizer import qtyping, quantizer

    from sightline.infer.litert import quiet_litert

    try:
        with quiet_litert():
            q = quantizer.Quantizer(bytearray(model))
            for op in QUANTISED_TFL_OPS:
                q.add_dynamic_config(".*", qtyping.TFLOperationName(op), 8)
            blob = bytes(q.quantize(enable_progress_report=False).quantized_model)
    except Exception as e:  # noqa: BLE001 - the quantiser fails in many types
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        first = (lines or [type(e).__name__])[0][:300]
        raise ExportError(
            f"ai-edge-quantizer could not quantise the LiteRT model: {first}"
        ) from None
    quantised = _int8_ops(blob)
    if quantised == 0:
        raise ExportError(
            "the LiteRT model has no convolution to quantise: INT8 would gain nothing"
        )
    return Quantised(
        blob,
        quantised,
        dict(KEPT_FLOAT),
        0,
        f"ai-edge-quantizer {version('ai-edge-quantizer')}: dynamic-range INT8 on "
        + ", ".join(QUANTISED_TFL_OPS)
        + " (int8 weights per channel, activations quantised per image at run time)",
    )


def _int8_ops(model: bytes) -> int:
    """How many ops of ``QUANTISED_TFL_OPS`` take int8 weights in ``model``."""
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.Model.GetRootAs(model, 0)
    names = {getattr(schema.BuiltinOperator, op) for op in QUANTISED_TFL_OPS}
    count = 0
    for s in range(tree.SubgraphsLength()):
        graph = tree.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = tree.OperatorCodes(op.OpcodeIndex())
            if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) in names:
                count += graph.Tensors(op.Inputs(1)).Type() == schema.TensorType.INT8
    return count
