"""``sightline export``: a run's model as ONNX (float32, INT8), each checked against PyTorch
(``sightline.run.exports``) and reported in the run's export/report.json."""

from __future__ import annotations

import argparse
import shlex
import sys

from sightline.cli.options import add_checkpoint, add_runs_dir
from sightline.errors import ExportError


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's model (ONNX, INT8), checked against PyTorch",
        description="Write a run's model as an ONNX file (uint8 images in, logits out; normalisation and "
        "flip TTA inside) with its preprocessing and classes as metadata, after checking "
        "that ONNX Runtime's logits match PyTorch's on the run's test images (max abs "
        "difference <= 1e-4). `predict --engine onnx` and `serve --engine onnx` use it. "
        "--format onnx-int8 also writes an INT8 copy (export/best.int8.onnx), refused unless "
        "it keeps 99 %% of PyTorch's answers and loses at most 0.5 points of accuracy. Every "
        "format's check goes to export/report.json.",
        epilog="Examples:\n  sightline export runs/my-run\n  sightline export my-run -o model.onnx --checkpoint last\n"
        "  sightline export my-run --format onnx onnx-int8\n\n"
        'Needs the ONNX packages: pip install "sightline[onnx]"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", nargs="?", help="run folder or name (default: the newest run)")
    p.add_argument(
        "--format",
        nargs="+",
        default=["onnx"],
        metavar="FORMAT",
        help="one or more of: onnx (float32, the default), onnx-int8 (with the onnx it is made "
        "from), openvino (an IR: .xml + .bin), openvino-int8 (NNCF's INT8 of it), litert (a .tflite "
        "for phones), litert-int8 (its INT8 copy, with it), coreml (an .mlpackage, zipped, for iOS and macOS), package (a zip of the model(s), MODEL_CARD.md "
        "and a predict.py needing ONNX Runtime only)",
    )
    p.add_argument(
        "--accept-drop",
        type=float,
        default=None,
        metavar="POINTS",
        help="INT8: accept an accuracy drop up to POINTS against PyTorch, whatever the top-1 "
        "agreement (default: refuse under 99%% agreement or over a 0.5 point drop)",
    )
    add_checkpoint(p, "--which")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="PATH",
        help="where to write the .onnx file (default: RUN/export/best.onnx, or last.onnx)",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset version (default: the exporter's own; 20 with torch 2.13)",
    )
    p.add_argument("--no-check", action="store_true", help="skip the parity check against PyTorch")
    add_runs_dir(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_export)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.0f} kB"


def run_export(args: argparse.Namespace) -> int:
    import json

    from sightline.cli.common import pick_run
    from sightline.infer import require_packages

    # Before the run is opened or torch imported: a missing package is the first thing to fix.
    require_packages(
        ["onnx", "onnxscript"] + ([] if args.no_check else ["onnxruntime"]), "ONNX export"
    )
    from sightline.run import export_onnx, parse_formats

    formats = parse_formats(args.format)
    run = pick_run(args.run, args.runs_dir)
    if formats != ["onnx"] or args.accept_drop is not None:
        if args.output is not None or args.opset is not None or args.no_check:
            raise ExportError(
                "-o, --opset and --no-check go with --format onnx alone; the other formats are "
                "written into the run's export/ folder, each checked"
            )
        return _print_report(run.export(formats, args.checkpoint, args.accept_drop), args.json)
    result = export_onnx(
        run, args.output, which=args.checkpoint, opset=args.opset, check=not args.no_check
    )
    recorded = None
    if args.output is None and result.parity is not None:  # in the run's export/ folder, checked
        from sightline.run import record_onnx

        recorded = record_onnx(run, result, args.checkpoint)
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "path": str(result.path.resolve()),
                    "sidecar": str(result.sidecar.resolve()),
                    "size_bytes": result.size_bytes,
                    "seconds": round(result.seconds, 2),
                    **({"report": str(recorded.path.resolve())} if recorded else {}),
                    **result.metadata,
                },
                indent=2,
            )
        )
        return 0
    meta = result.metadata
    c, h, w = meta["preprocess"]["channels"], *meta["preprocess"]["size"]
    where = shlex.quote(str(result.path))
    print(
        f"Exported {result.path.resolve()} ({_size(result.size_bytes)}, ONNX opset {result.opset}, "
        f"{result.seconds:.1f} s)"
    )
    print(
        f"  model {meta['model']['name']} of run {meta['run']} ({meta['source']}, sha256 {meta['source_sha256'][:12]}…), "
        f"{len(meta['classes'])} classes"
    )
    print(
        f"  input: uint8 images N x {c} x {h} x {w}, prepared as in training; output: logits N x {len(meta['classes'])}"
        + ("; flip TTA inside" if meta["flip_tta"] else "")
        + (f"; ±{meta['shift_tta']} px shift TTA inside" if meta.get("shift_tta") else "")
    )
    print(
        f"  metadata: preprocessing, classes, model, checkpoint, versions (in the file, and in {result.sidecar.name})"
    )
    p = result.parity
    if p is None:
        print("  parity: not checked (--no-check)")
    else:
        print(
            f"  parity with PyTorch on {p.images} {p.source}: max abs difference {p.max_abs_diff:.2g}, "
            f"mean {p.mean_abs_diff:.2g}, top-1 agreement {p.top1_agreement:.1%}"
        )
    if recorded is not None:
        print(
            f"  report: {recorded.path.resolve()}; model card: "
            f"{recorded.path.with_name('MODEL_CARD.md').resolve()}"
        )
    run_ref = shlex.quote(str(run.path))
    print("Use it:")
    print(f"  sightline predict --onnx {where} IMAGES...")
    if args.output is None:
        which = "" if args.checkpoint == "best" else " --checkpoint last"
        print(
            f"  sightline predict --run {run_ref}{which} IMAGES...   (ONNX Runtime while the export is current)"
        )
        if args.checkpoint == "best":
            print(
                "  sightline serve      (this run's predictions through ONNX Runtime while the export is current)"
            )
    print(f"  python: sightline.load_onnx({str(result.path)!r}).predict_files([...])")
    return 0


def _print_report(report, as_json: bool) -> int:
    """The formats written and each one's check beside PyTorch."""
    import json

    if as_json:
        print(json.dumps({**report.to_dict(), "report": str(report.path.resolve())}, indent=2))
        return 0
    names = {"onnx": "ONNX float32", "onnx-int8": "ONNX INT8", "openvino": "OpenVINO IR, float32",
             "openvino-int8": "OpenVINO IR, INT8 (NNCF)", "litert": "LiteRT, float32", "litert-int8": "LiteRT, INT8 convolutions", "coreml": "Core ML, float32"}  # fmt: skip
    for e in report.exports:
        print(
            f"Exported {e.path.resolve()} ({names.get(e.format, e.format)}, {_size(e.size_bytes)}, {e.seconds:.1f} s)"
        )
        p = e.parity
        if p is not None:
            acc = (
                f"; accuracy {p.accuracy:.2%} (PyTorch {p.reference_accuracy:.2%})"
                if p.accuracy is not None
                else ""
            )
            unknown = (
                f"; answered unknown {p.unknown:.1%} (PyTorch {p.reference_unknown:.1%})"
                if p.unknown is not None
                else ""
            )
            print(
                f"  on {p.images} {p.source}: top-1 agreement {p.top1_agreement:.2%}, logits max "
                f"difference {p.max_abs_diff:.2g} (mean {p.mean_abs_diff:.2g}){acc}{unknown}"
            )
            if p.probe_unknown is not None:
                print(f"  on noise: answered unknown {p.probe_unknown:.0%} (PyTorch "
                      f"{p.reference_probe_unknown:.0%})")  # fmt: skip
        print(f"  bar: {e.bar}; " + (f"run by {e.runtime}" if p is not None else e.runtime))
        if e.kept_float:
            print(f"  kept in float: {', '.join(e.kept_float)}")
        if e.note:
            print(f"  note: {e.note}", file=sys.stderr)
    from sightline.run import predict_flag

    runnable = [e.path for e in report.exports if predict_flag(e.path)]
    print(
        f"Report: {report.path.resolve()}; model card: {report.path.with_name('MODEL_CARD.md').resolve()}"
    )
    if report.package is not None:
        print(
            f"Package: {report.package.resolve()} (the model, its card and a predict.py that needs ONNX Runtime only)"
        )
    if runnable:
        path = shlex.quote(str(runnable[-1]))
        print(f"Use it: sightline predict {predict_flag(runnable[-1])} {path} IMAGES...")
    return 0
