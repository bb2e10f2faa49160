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
    p = sub.add_parser("datasets", help="list the built-in datasets", description="List the built-in datasets, their classes and where their files are.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    from sightline.data import dataset_info, list_datasets

    infos = [dataset_info(name) for name in list_datasets()]
    if args.json:
        print(json.dumps(infos, indent=2, default=str))
        return 0
    for info in infos:
        where = "in mirror" if info["mirrored"] else "cached" if info["cached"] else f"downloads {info['download_size'] / 1e6:.0f} MB"
        shape = "x".join(map(str, info["shape"]))
        print(f"{info['name']}  ({shape}, {info['train']:,} train / {info['test']:,} test, {where})")
        print(f"    {info['description']}")
        print(f"    classes: {', '.join(info['classes'])}")
    print("\nAlso: any folder of images with one subfolder per class, e.g. `sightline train ./photos`.")
    return 0


# ---------------------------------------------------------------------------- models
def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model architectures", description="List the registered models and their options.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from sightline.models import DEFAULT_MODEL, list_models

    entries = list_models()
    if args.json:
        print(json.dumps([{"name": e.name, "description": e.description, "options": e.options(),
                           "train_defaults": e.train_defaults, "default": e.name == DEFAULT_MODEL} for e in entries], indent=2))  # fmt: skip
        return 0
    for e in entries:
        mark = "  (default)" if e.name == DEFAULT_MODEL else ""
        print(f"{e.name}{mark}\n    {e.description}")
        if e.options():
            print("    options: " + ", ".join(f"{k}={v!r}" for k, v in e.options().items()))
    return 0


# ---------------------------------------------------------------------------- summary
def add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="layer-by-layer summary of a model or run",
                       description="Print each layer, its output shape and parameter count, and the totals.",
                       epilog="Examples:\n  sightline summary mlp\n  sightline summary tutorial-cnn --dataset cifar10 --num-classes 3\n  sightline summary runs/my-run",
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("model", help="a model name, a run folder or a .safetensors model file")
    p.add_argument("--dataset", default="fashion-mnist", help="take input shape and classes from this built-in dataset (default fashion-mnist)")
    p.add_argument("--input", type=str, help="input shape CxHxW, e.g. 3x64x64 (overrides --dataset)")
    p.add_argument("--num-classes", type=positive_int, help="number of classes (overrides --dataset)")
    p.add_argument("--model-opt", action="append", type=kv_pair, default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
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
        model, _ = open_model(args.model)
    else:
        from sightline.data import get_dataset_spec

        spec = get_dataset_spec(args.dataset)
        shape = _parse_input_shape(args.input) if args.input else tuple(spec.shape)
        classes = args.num_classes or len(spec.classes)
        model = create_model(args.model, shape, classes, **dict(args.model_opt))
    s = summary(model)
    print(json.dumps(s.to_dict(), indent=2) if args.json else s)
    return 0


def open_model(source: str | Path):
    """(model, metadata) from a run folder or a .safetensors model file."""
    from sightline.checkpoint import load_model
    from sightline.runs import load_run

    p = Path(source)
    if p.is_file():
        return load_model(p)
    run = load_run(p)
    return run.load_model(), run.metadata()


# ---------------------------------------------------------------------------- evaluate
def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="test a trained run: loss, accuracy, per-class metrics, confusion",
                       description="Evaluate a run's best checkpoint on its dataset's test split, another split, or an image folder.")  # fmt: skip
    p.add_argument("run", nargs="?", help="run folder or name (default: the newest run)")
    p.add_argument("--data", help="a dataset name or image folder (default: the data the run was trained on)")
    p.add_argument("--split", default="test", choices=("test", "val", "train"))
    p.add_argument("--checkpoint", default="best", choices=("best", "last"))
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_evaluate)


def _pick_run(name: str | None, runs_dir: str | None):
    from sightline.runs import latest_run, load_run

    return load_run(name, runs_dir) if name else latest_run(runs_dir)


def run_evaluate(args: argparse.Namespace) -> int:
    run = _pick_run(args.run, args.runs_dir)
    metrics = run.evaluate(args.data, split=args.split, which=args.checkpoint, device=args.device)
    if args.json:
        print(json.dumps({"run": str(run.path), "split": args.split, **metrics.to_dict()}, indent=2))
    else:
        print(f"Run {run.path} ({args.checkpoint} checkpoint), {args.data or run.config['data'].get('name_or_path')} / {args.split}")
        print(metrics.format_table())
        print(f"\nSaved: {run.path / 'evaluation.json'}")
    return 0


# ---------------------------------------------------------------------------- predict
def add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify image files, folders or globs",
                       description="Classify images with a trained run, using the preprocessing it was trained with.",
                       epilog="Examples:\n  sightline predict boot.jpg\n  sightline predict --run runs/my-run photos/ 'shots/*.png' --format csv",
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("inputs", nargs="+", help="image files, folders (recursive) or glob patterns")
    p.add_argument("--run", "-r", help="run folder/name or .safetensors model file (default: the newest run)")
    p.add_argument("--top-k", "-k", type=positive_int, default=3)
    p.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"))
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from sightline.checkpoint import load_model
    from sightline.data import Preprocess
    from sightline.devices import resolve_device
    from sightline.predict import predict_files

    device = resolve_device(args.device)
    if args.run and Path(args.run).is_file():
        model, meta = load_model(args.run, device)
    else:
        run = _pick_run(args.run, args.runs_dir)
        model, meta = run.load_model(args.checkpoint, device), run.metadata(args.checkpoint)
    report = predict_files(model, Preprocess.from_dict(meta["preprocess"]), meta["classes"], args.inputs,
                           top_k=min(args.top_k, len(meta["classes"])), device=device)  # fmt: skip
    out = {"table": report.to_table, "json": report.to_json, "csv": report.to_csv}[args.format]()
    print(out)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not report.predictions:
        print("error: no image could be classified", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------- runs
def add_runs(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("runs", help="list training runs", description="List the run folders, newest first.")
    p.add_argument("--runs-dir", default=None, help="default: ./runs or $SIGHTLINE_RUNS_DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    from sightline.runs import default_runs_dir, list_runs

    runs = list_runs(args.runs_dir)
    rows = []
    for r in runs:
        st, ev = r.status, r.evaluation or {}
        rows.append({
            "name": r.name, "path": str(r.path), "status": st.get("status"), "model": r.config["model"]["name"],
            "data": r.config["data"].get("name_or_path"), "epochs": f"{st.get('epochs_done', 0)}/{st.get('epochs', '?')}",
            "best": st.get("best_value"), "monitor": st.get("monitor"), "test_accuracy": ev.get("accuracy"),
        })  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"No runs in {args.runs_dir or default_runs_dir()}. Start one with `sightline train`.")
        return 0

    def pct(v):
        return f"{v:.4f}" if isinstance(v, float) else "-"

    print(_table([[r["name"], r["status"], r["model"], r["data"], r["epochs"], pct(r["best"]), pct(r["test_accuracy"])] for r in rows],
                 ["run", "status", "model", "data", "epochs", "best val", "test acc"]))  # fmt: skip
    return 0
