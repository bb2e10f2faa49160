"""``sightline predict``: classify image files, folders and globs with a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sightline.cli.common import pick_run
from sightline.cli.options import (
    add_checkpoint,
    add_device,
    add_engine,
    add_runs_dir,
    positive_int,
)
from sightline.errors import RunError


def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify image files, folders or globs",
        description="Classify images with a trained run, using the preprocessing it was trained with.",
        epilog="Examples:\n  sightline predict boot.jpg\n  sightline predict --run runs/my-run photos/ 'shots/*.png' --format csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", help="image files, folders (recursive) or glob patterns")
    p.add_argument(
        "--run", "-r", help="run folder/name or .safetensors model file (default: the newest run)"
    )
    p.add_argument(
        "--top-k",
        "-k",
        type=positive_int,
        default=3,
        help="how many classes to show per image (default 3)",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=("table", "json", "csv"),
        default="table",
        help="output format (default table)",
    )
    add_checkpoint(p)
    add_runs_dir(p)
    add_device(p)
    add_engine(p, "predictions run")
    p.add_argument(
        "--onnx",
        default=None,
        metavar="FILE",
        help="classify with this .onnx file from `sightline export` (instead of --run)",
    )
    p.add_argument(
        "--openvino",
        default=None,
        metavar="FILE",
        help="classify with this .xml from `sightline export --format openvino` (instead of --run)",
    )
    p.add_argument(
        "--litert",
        default=None,
        metavar="FILE",
        help="classify with this .tflite from `sightline export --format litert` (instead of --run)",
    )
    p.add_argument(
        "--unknown",
        default="auto",
        metavar="auto|off|THRESHOLD",
        help="answer 'unknown' (the closest class still shown) for an image unlike every class the "
        "run was trained on: auto (default) at the run's own threshold, which keeps 95 %% of its "
        "validation images; off: never; a number: that threshold on the ood_score",
    )
    p.add_argument(
        "--show",
        nargs="?",
        const="seen",
        default=None,
        metavar="FOLDER",
        help="save what the model saw for each image (after framing and inversion), enlarged, "
        "in FOLDER (default ./seen)",
    )
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from sightline.infer import PredictionReport, expand_inputs, save_seen
    from sightline.run import ENGINES

    files, problems = expand_inputs(args.inputs)
    predictor = _open_predictor(args, len(files))
    if predictor.note:
        print(f"{predictor.note}; --engine {'|'.join(ENGINES[1:])} chooses", file=sys.stderr)
    found = predictor.predict_images(
        [(str(f), f) for f in files],
        top_k=min(args.top_k, len(predictor.classes)),
        keep_seen=args.show is not None,
        unknown=args.unknown,
    )
    report = PredictionReport(found.predictions, problems + found.skipped)
    out = {"table": report.to_table, "json": report.to_json, "csv": report.to_csv}[args.format]()
    print(out)
    if args.show is not None and report.predictions:
        written = save_seen(report, args.show)
        print(
            f"What the model saw: {len(written)} images in {Path(args.show).resolve()} "
            f"(first: {written[0].name})",
            file=sys.stderr,
        )
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not report.predictions:
        print("error: no image could be classified", file=sys.stderr)
        return 1
    return 0


def _open_predictor(args: argparse.Namespace, images: int):
    """The ``Predictor`` of ``--onnx FILE``, of a ``--run`` model file, or of the run (the
    engine chosen by the run's one rule: ``sightline.run.predictor``)."""
    from sightline.run import file_predictor

    exported = [
        (flag, f)
        for flag, f in (
            ("--onnx", args.onnx),
            ("--openvino", args.openvino),
            ("--litert", args.litert),
        )
        if f
    ]
    if exported:
        if args.run or len(exported) > 1:
            given = " and ".join(flag for flag, _ in exported) + (" and --run" if args.run else "")
            raise RunError(f"give one model: {given} each name one (an export holds its own model)")
        return file_predictor(exported[0][1], "onnx", args.device)
    if args.run and Path(args.run).is_file():
        return file_predictor(args.run, args.engine, args.device)
    run = pick_run(args.run, args.runs_dir)  # picked once: the newest run is named once
    return run.predictor(
        args.checkpoint, args.engine, args.device, images, needs_score=args.unknown != "off"
    )
