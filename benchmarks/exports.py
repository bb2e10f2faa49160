"""Each export format of a run beside PyTorch: size on disk, images/s at batch 1 and 32 (2
threads, the prepared uint8 input, what predict feeds), and the accuracy its check measured
(export/report.json). All in one process, the formats timed in turn (issue 54).

    .venv/bin/python benchmarks/exports.py RUN [--formats onnx,onnx-int8,openvino,openvino-int8,
        litert,litert-int8] [--reps 5] [--accept-drop POINTS]

LiteRT's file takes one image per call (its batch is fixed when converted): "batch 32" is 32
calls, as an app classifying 32 photos makes them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import sightline
from sightline.infer.batched import inference_copy
from sightline.run import checkpoint as ckpt
from sightline.run.layout import RunLayout


def rate(fn, x: torch.Tensor, reps: int) -> float:
    fn(x)  # warm-up (and one-time compilation)
    start = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return reps * len(x) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--formats", default="onnx,onnx-int8,openvino,openvino-int8,litert,litert-int8")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--accept-drop", type=float, default=None, help="as sightline export's")
    args = p.parse_args()
    torch.set_num_threads(2)
    run = sightline.load_run(args.run)
    report = run.export(args.formats.split(","), accept_drop=args.accept_drop)
    net, meta = ckpt.load_model(run.model_file("best"), "cpu")
    net = inference_copy(net.float().eval())
    shape = tuple(run.preprocess.input_shape)
    x32 = torch.randint(0, 256, (32, *shape), dtype=torch.uint8)
    from sightline.infer.predict import Predictor

    torch_predictor = Predictor(net, run.preprocess, [], torch.device("cpu"))
    rows = [("PyTorch (inference copy)", RunLayout(run.path).model("best").stat().st_size,
             torch_predictor.scored_logits, None)]  # fmt: skip
    from sightline.infer.litert import load_litert
    from sightline.infer.onnx import OnnxModel
    from sightline.infer.openvino import load_openvino
    from sightline.infer.runtime import make_session

    for e in report.exports:
        if e.format.startswith("openvino"):
            model = load_openvino(e.path)  # all the machine's cores: 2 here
        elif e.format.startswith("litert"):
            model = load_litert(e.path)  # as many threads as cores
        elif e.format == "coreml":
            continue  # not run here
        else:
            model = OnnxModel(
                make_session(e.path, "cpu"),
                {**meta, "preprocess": run.preprocess.to_dict(), "classes": run.classes},
            )
        rows.append((e.format, e.size_bytes, model.scored_logits, e.parity))
    print(
        f"run {run.name} ({meta['model']['name']}, input {shape}), {torch.get_num_threads()} threads"
    )
    print(
        "| format | size | img/s batch 1 | img/s batch 32 | top-1 agreement | unknown verdicts kept "
        "| noise unknown (PyTorch) | accuracy (PyTorch) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, size, fn, parity in rows:
        b1, b32 = rate(fn, x32[:1], args.reps * 4), rate(fn, x32, args.reps)
        agree = f"{parity.top1_agreement:.2%}" if parity else "-"
        acc = (
            f"{parity.accuracy:.2%} ({parity.reference_accuracy:.2%})"
            if parity and parity.accuracy is not None
            else "-"
        )
        verdicts = (
            f"{parity.verdict_agreement:.2%}"
            if parity and parity.verdict_agreement is not None
            else "-"
        )
        noise = (
            f"{parity.probe_unknown:.0%} ({parity.reference_probe_unknown:.0%})"
            if parity and parity.probe_unknown is not None
            else "-"
        )
        print(
            f"| {name} | {size / 1e6:.1f} MB | {b1:.1f} | {b32:.1f} | {agree} | {verdicts} "
            f"| {noise} | {acc} |"
        )


if __name__ == "__main__":
    main()
