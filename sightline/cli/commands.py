"""``sightline datasets | models | summary | evaluate | predict | runs``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sightline.cli.options import image_size, kv_pair, positive_int
from sightline.errors import RunError


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------- datasets
def add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "datasets",
        help="list the built-in datasets",
        description="List the built-in datasets, their classes and where their files are.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--download",
        nargs="+",
        metavar="NAME",
        default=None,
        help="fetch these datasets now (checked against their checksums) instead of at first use",
    )
    p.set_defaults(func=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    from sightline.data import dataset_info, list_datasets
    from sightline.data.registry import get_dataset_spec

    for name in args.download or ():
        from sightline.data import load_dataset  # imports torch: only when there is work for it

        get_dataset_spec(name)  # only built-in datasets are downloaded: an error listing them
        data = load_dataset(name, val_split=0.0)  # downloads (or finds) and verifies every file
        info = dataset_info(name)
        where = (
            info["mirror_path"] if info["mirrored"] and not info["cached"] else info["cache_path"]
        )
        print(
            f"{data.name}: ready ({len(data.train):,} train / {len(data.test):,} test images) in {where}"
        )
    if args.download:
        return 0
    infos = [dataset_info(name) for name in list_datasets()]
    if args.json:
        print(json.dumps(infos, indent=2, default=str))
        return 0
    for info in infos:
        where = (
            "in mirror"
            if info["mirrored"]
            else "cached"
            if info["cached"]
            else f"downloads {info['download_size'] / 1e6:.0f} MB"
        )
        shape = "x".join(map(str, info["shape"]))
        print(
            f"{info['name']}  ({shape}, {info['train']:,} train / {info['test']:,} test, {where})"
        )
        print(f"    {info['description']}")
        print(f"    classes: {', '.join(info['classes'])}")
    print(
        "\nAlso: any folder of images with one subfolder per class, e.g. `sightline train ./photos`."
    )
    return 0


# ---------------------------------------------------------------------------- models
def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the model architectures",
        description="List the registered models and their options.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from sightline.models import DATASET_DEFAULT_MODELS, DEFAULT_MODEL, list_models

    entries = list_models()

    def default_for(name: str) -> list[str]:
        return sorted(d for d, m in DATASET_DEFAULT_MODELS.items() if m == name)

    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "description": e.description,
                        "options": e.options(),
                        "train_defaults": e.train_defaults,
                        "default": e.name == DEFAULT_MODEL,
                        "default_for": default_for(e.name),
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return 0
    for e in entries:
        mark = "  (default)" if e.name == DEFAULT_MODEL else ""
        datasets = default_for(e.name)
        mark += f"  (default for {', '.join(datasets)})" if datasets else ""
        print(f"{e.name}{mark}\n    {e.description}")
        if e.options():
            print("    options: " + ", ".join(f"{k}={v!r}" for k, v in e.options().items()))
    return 0


# ---------------------------------------------------------------------------- recipes
def add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipes",
        help="list the named training recipes",
        description="List the named recipes (sightline train --recipe NAME): model, options and what "
        "each one measured.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    from sightline.plan.recipes import VARIANTS, list_recipes

    recipes = list_recipes()
    if args.json:
        print(json.dumps([r.to_dict() for r in recipes], indent=2))
        return 0
    for r in recipes:
        options = {**r.model_options, **r.data_options, **r.train_options}
        print(f"{r.name}  ({r.dataset}, {r.model})\n    {r.description}")
        print("    " + ", ".join(f"{k}={v!r}" for k, v in options.items()))
        if r.measured:
            print(f"    measured: {r.measured}")
        for v in r.variants():
            options = {**v.model_options, **v.data_options, **v.train_options}
            print(
                f"    {VARIANTS[v.variant][1]}, chosen there by itself: {v.model}, "
                + ", ".join(f"{k}={val!r}" for k, val in options.items())
            )
            print(f"    measured: {v.measured}")
    print("\nUse: sightline train --recipe NAME [options that override the recipe's]")
    return 0


# ---------------------------------------------------------------------------- summary
def add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="layer-by-layer summary of a model or run",
        description="Print each layer, its output shape and parameter count, and the totals.",
        epilog="Examples:\n  sightline summary mlp\n  sightline summary tutorial-cnn --dataset cifar10 --num-classes 3\n  sightline summary runs/my-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a model name, a run folder or a .safetensors model file")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        help="take input shape and classes from this built-in dataset (default fashion-mnist)",
    )
    p.add_argument(
        "--input", type=str, help="input shape CxHxW, e.g. 3x64x64 (overrides --dataset)"
    )
    p.add_argument(
        "--num-classes", type=positive_int, help="number of classes (overrides --dataset)"
    )
    p.add_argument(
        "--model-opt",
        action="append",
        type=kv_pair,
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. --model-opt hidden=256 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_summary)


def _parse_input_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RunError(f"--input expects CxHxW like 1x28x28 or 3x32x32, got {text!r}") from None
    if c not in (1, 3):
        raise RunError(f"--input channels must be 1 or 3, got {c}")
    image_size(f"{h}x{w}")
    return c, h, w


def run_summary(args: argparse.Namespace) -> int:
    from sightline.models import create_model
    from sightline.models.summary import summary

    if Path(args.model).exists():
        model, _ = open_model(args.model, None)
    else:
        from sightline.data import get_dataset_spec

        spec = get_dataset_spec(args.dataset)
        shape = _parse_input_shape(args.input) if args.input else tuple(spec.shape)
        classes = args.num_classes or len(spec.classes)
        model = create_model(args.model, shape, classes, **dict(args.model_opt))
    s = summary(model)
    print(json.dumps(s.to_dict(), indent=2) if args.json else s)
    return 0


def open_model(source: str | None, runs_dir: str | None = None, which: str = "best", device="cpu"):
    """(model, metadata) from a .safetensors model file, a run folder or name, or the newest run."""
    from sightline.run.checkpoint import load_model

    if source and Path(source).is_file():
        return load_model(source, device)
    run = pick_run(source, runs_dir)
    return run.load_model(which, device), run.metadata(which)


def pick_run(ref: str | None, runs_dir: str | None):
    """The run a command works on; when it defaults to the newest, it says which (on stderr)."""
    from sightline.run import find_run

    run = find_run(ref, runs_dir)
    if ref is None:
        print(f"Using the newest run: {run.path.resolve()}", file=sys.stderr)
    return run


# ---------------------------------------------------------------------------- evaluate
def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="test a trained run: loss, accuracy, per-class metrics, confusion",
        description="Evaluate a run's best checkpoint on its dataset's test split, another split, or an image folder.",
    )
    p.add_argument("run", nargs="?", help="run folder or name (default: the newest run)")
    p.add_argument(
        "--data", help="a dataset name or image folder (default: the data the run was trained on)"
    )
    p.add_argument(
        "--split",
        default="test",
        choices=("test", "val", "train"),
        help="which split of the data to evaluate (default test)",
    )
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="the best epoch's weights (default) or the last saved",
    )
    p.add_argument(
        "--runs-dir",
        default=None,
        help="where run names are looked up (default: ./runs or $SIGHTLINE_RUNS_DIR)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    run = pick_run(args.run, args.runs_dir)
    metrics = run.evaluate(args.data, split=args.split, which=args.checkpoint, device=args.device)
    record = run.last_evaluation
    if args.json:
        print(json.dumps({"run": str(run.path.resolve()), **record, **metrics.to_dict()}, indent=2))
        return 0
    where = record.get("path") or record.get("dataset") or run.config["data"].get("name_or_path")
    print(f"Run {run.path.resolve()} ({args.checkpoint} checkpoint), {where} / {record['split']}")
    print(metrics.format_table())
    for path, reason in record["skipped"][:20]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if len(record["skipped"]) > 20:
        print(f"... and {len(record['skipped']) - 20} more skipped files", file=sys.stderr)
    print(f"\nSaved: {run.path.resolve() / 'evaluations' / (record['source'] + '.json')}")
    return 0


# ---------------------------------------------------------------------------- predict
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
    p.add_argument(
        "--checkpoint",
        default="best",
        choices=("best", "last"),
        help="the best epoch's weights (default) or the last saved",
    )
    p.add_argument(
        "--runs-dir",
        default=None,
        help="where run names are looked up (default: ./runs or $SIGHTLINE_RUNS_DIR)",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="auto (default): the run's current ONNX export in ONNX Runtime where sightline[onnx] is "
        "installed (`sightline export RUN` makes it), else PyTorch; torch: PyTorch; onnx: the "
        "export, or an error saying how to make it",
    )
    p.add_argument(
        "--onnx",
        default=None,
        metavar="FILE",
        help="classify with this .onnx file from `sightline export` (instead of --run)",
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
    from sightline.infer.predict import predict_files, save_seen

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
    """``--engine auto``: the run's ONNX export when ONNX Runtime is installed and the export is
    of the current checkpoint (the same predictions to 1e-4, checked at export, and several
    times faster: benchmarks/README.md); else None (PyTorch)."""
    from sightline.devices import resolve_device
    from sightline.errors import NotExportedError
    from sightline.infer.onnx import export_path, load_exported, runs_beside_torch

    if not runs_beside_torch(args.device) or not export_path(run, args.checkpoint).is_file():
        return None
    try:
        model = load_exported(run, args.checkpoint, str(resolve_device(args.device)))
    except NotExportedError:  # exported from an older checkpoint: PyTorch runs the current one
        return None
    print(
        f"Predicting with the run's ONNX export in ONNX Runtime ({export_path(run, args.checkpoint)}; "
        "--engine torch: PyTorch)",
        file=sys.stderr,
    )
    return model


def _open_onnx(args: argparse.Namespace):
    """The ``OnnxModel`` of ``--onnx FILE``, or of ``--run``'s export with ``--engine onnx``."""
    from sightline.infer.onnx import OnnxModel, load_exported, require_packages

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
def add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs", help="list training runs", description="List the run folders, newest first."
    )
    p.add_argument(
        "--runs-dir",
        default=None,
        help="the folder to list (default: ./runs or $SIGHTLINE_RUNS_DIR)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    from sightline.run import default_runs_dir, list_runs

    rows = [r.to_dict() for r in list_runs(args.runs_dir)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(
            f"No runs in {Path(args.runs_dir or default_runs_dir()).resolve()}. Start one with `sightline train`."
        )
        return 0

    def num(v):
        return f"{v:.4f}" if isinstance(v, float) else "-"

    table = [
        [
            r["name"],
            r["status"],
            r.get("model") or "-",
            Path(str(r.get("dataset") or "-")).name,
            f"{r.get('epochs_done', 0)}/{r.get('epochs') or '?'}",
            num(r.get("best_value")),
            num(r.get("test_accuracy")),
        ]
        for r in rows
    ]
    print(_table(table, ["run", "status", "model", "data", "epochs", "best val", "test acc"]))
    for r in rows:
        if r.get("error"):
            print(f"{r['name']}: {r['error']}", file=sys.stderr)
    return 0
