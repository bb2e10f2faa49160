"""``sightline predict``: classify image files, folders and globs with a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sightline.cli.common import open_model, pick_run
from sightline.cli.options import add_checkpoint, add_device, add_runs_dir, positive_int
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
    p.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="auto (default): the run's current ONNX export in ONNX Runtime where sightline[onnx] is "
        "installed (`sightline export RUN` makes it) and it is faster for this model here (timed "
        "once), else PyTorch; torch: PyTorch; onnx: the export, or an error saying how to make it",
    )
    p.add_argument(
        "--onnx",
        default=None,
        metavar="FILE",
        help="classify with this .onnx file from `sightline export` (instead of --run)",
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
    from sightline.data import Preprocess
    from sightline.devices import resolve_device
    from sightline.infer.predict import predict_files
    from sightline.infer.results import save_seen

    onnx = _open_onnx(args) if args.onnx or args.engine == "onnx" else None
    if onnx is None and args.engine == "auto" and not (args.run and Path(args.run).is_file()):
        run = pick_run(args.run, args.runs_dir)  # picked once: the newest run is named once
        args.run = str(run.path)
        onnx = _current_export(run, args)
    if onnx is not None:
        model, preprocess, classes, device = onnx, onnx.preprocess, onnx.classes, None
    else:
        device = resolve_device(args.device)
        model, meta = open_model(args.run, args.runs_dir, args.checkpoint, device)
        preprocess, classes = Preprocess.from_dict(meta["preprocess"]), meta["classes"]
    report = predict_files(
        model,
        preprocess,
        classes,
        args.inputs,
        top_k=min(args.top_k, len(classes)),
        device=device,
        keep_seen=args.show is not None,
        unknown=args.unknown,
    )
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


def _current_export(run, args: argparse.Namespace):
    """``--engine auto``: the run's ONNX export when ONNX Runtime is installed, the export is of
    the current checkpoint (the same predictions to 1e-4, checked at export) and it predicts
    faster than PyTorch for this model here (timed once, ``infer/engine.py``); else None
    (PyTorch). Either way it says which and why."""
    from sightline.devices import resolve_device
    from sightline.run.exported import auto_engine, export_path

    dev = str(resolve_device(args.device))
    model, choice = auto_engine(run, args.checkpoint, dev, needs_score=args.unknown != "off")
    if choice is not None:
        where = f" ({export_path(run, args.checkpoint)})" if model is not None else ""
        print(
            f"{choice.note}: predicting with it{where}; --engine torch|onnx chooses",
            file=sys.stderr,
        )
    return model


def _open_onnx(args: argparse.Namespace):
    """The ``OnnxModel`` of ``--onnx FILE``, or of ``--run``'s export with ``--engine onnx``."""
    from sightline.infer.onnx import OnnxModel, require_packages
    from sightline.run.exported import load_exported

    require_packages(["onnxruntime"], "--engine onnx")
    if args.onnx:
        if args.run:
            raise RunError(
                "give --onnx FILE or --run RUN, not both: the .onnx file holds its own model"
            )
        return OnnxModel.load(args.onnx, args.device)
    if args.run and Path(args.run).is_file():
        raise RunError(
            f"--engine onnx needs a run, not the model file {args.run}: give the run's folder, or --onnx FILE"
        )
    return load_exported(pick_run(args.run, args.runs_dir), args.checkpoint, args.device)


# ---------------------------------------------------------------------------- runs
