"""``sightline plot | inspect | report``: pictures of data, runs and the inside of a network."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sightline.cli.options import class_list, positive_int
from sightline.errors import SightlineError

PLOTS = ("samples", "predictions", "probabilities", "curves", "confusion", "top-losses", "schedule")


def add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw a figure: samples, predictions, curves, confusion, ...",
                       description="Draw one figure and write it as PNG or SVG (headless).",
                       epilog="Examples:\n  sightline plot samples fashion-mnist\n  sightline plot predictions --only-mistakes\n"
                              "  sightline plot confusion runs/my-run --normalize -o confusion.svg\n"
                              "  sightline plot schedule --model fastcnn --epochs 10",
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("kind", choices=PLOTS)
    p.add_argument("source", nargs="?", help="samples: a dataset name or folder (default fashion-mnist); others: a run (default: newest)")
    p.add_argument("--output", "-o", help="file to write (.png or .svg); default: <run>/plots/<kind>.png or ./<kind>.png")
    p.add_argument("--rows", type=positive_int, default=5)
    p.add_argument("--cols", type=positive_int, default=5)
    p.add_argument("--random", action="store_true", help="samples: random images instead of the first ones")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", type=class_list, help="samples: only these classes")
    p.add_argument("--only-mistakes", action="store_true", help="predictions: show only wrong predictions")
    p.add_argument("--normalize", action="store_true", help="confusion: row-normalised percentages")
    p.add_argument("--split", default="test", choices=("test", "val", "train"))
    p.add_argument("--model", default=None, help="schedule: the model whose tuned defaults to show")
    p.add_argument("--epochs", type=positive_int)
    p.add_argument("--lr", type=float)
    p.add_argument("--schedule", choices=("constant", "onecycle", "cosine", "linear"))
    p.add_argument("--warmup", type=float)
    p.add_argument("--batch-size", type=positive_int)
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=run_plot)


def _run(source: str | None, runs_dir: str | None):
    from sightline.runs import latest_run, load_run

    return load_run(source, runs_dir) if source else latest_run(runs_dir)


def run_plot(args: argparse.Namespace) -> int:
    from sightline import plots

    if args.kind == "samples":
        from sightline.data import load_dataset

        data = load_dataset(args.source or "fashion-mnist", classes=args.classes, val_split=0, progress=False)
        split = data.splits().get(args.split, data.train)
        fig = plots.plot_samples(split.images, split.labels, data.classes, args.rows, args.cols, random=args.random,
                                 seed=args.seed, dark_background=data.preprocess.dark_background)  # fmt: skip
        default = Path(f"{data.name}-samples.png")
    elif args.kind == "schedule":
        fig, default = _schedule_figure(args), Path("schedule.png")
    else:
        run = _run(args.source, args.runs_dir)
        fig = _run_figure(run, args)
        default = run.path / "plots" / f"{args.kind}{'-normalized' if args.normalize else ''}.png"
    path = plots.save_figure(fig, Path(args.output) if args.output else default)
    print(path)
    return 0


def _run_figure(run, args: argparse.Namespace):
    from sightline import plots

    if args.kind == "curves":
        st = run.status
        if not run.history:
            raise SightlineError(f"{run.path} has no finished epoch yet: nothing to plot")
        stopped = st.get("epochs_done") if st.get("status") == "early_stopped" else None
        return plots.plot_curves(run.history, best_epoch=st.get("best_epoch"), stopped_epoch=stopped)
    data = run.load_data()
    split = data.splits().get(args.split)
    if split is None:
        raise SightlineError(f"the run's data has no {args.split!r} split; it has: {', '.join(data.splits())}")
    m = run.evaluate(split, split=args.split, save=False)
    classes, dark = run.classes, run.preprocess.dark_background
    if args.kind == "confusion":
        for true, pred, n in plots.most_confused(m.confusion, classes, k=5):
            print(f"most confused: {true} -> {pred}: {n}")
        return plots.plot_confusion(m.confusion, classes, normalize=args.normalize)
    if args.kind == "predictions":
        return plots.plot_predictions(split.images, split.labels, m.probabilities, classes, args.rows, args.cols,
                                      only_mistakes=args.only_mistakes, dark_background=dark)  # fmt: skip
    if args.kind == "probabilities":
        return plots.plot_probability_grid(split.images, split.labels, m.probabilities, classes, args.rows, min(args.cols, 4), dark_background=dark)
    return plots.plot_top_losses(split.images, split.labels, m.probabilities, m.losses, classes, k=args.rows * args.cols, dark_background=dark)


def _schedule_figure(args: argparse.Namespace):
    from sightline import plots
    from sightline.models import DEFAULT_MODEL, get_model_entry
    from sightline.train.config import resolve_config

    entry = get_model_entry(args.model or DEFAULT_MODEL)
    cfg = resolve_config(entry.train_defaults, epochs=args.epochs, lr=args.lr, schedule=args.schedule,
                         warmup=args.warmup, batch_size=args.batch_size)  # fmt: skip
    steps = -(-54_000 // cfg.batch_size)  # Fashion-MNIST with the default 10 % validation split
    return plots.plot_lr_schedule(cfg.lr, cfg.schedule, cfg.warmup, cfg.epochs, steps)


# ---------------------------------------------------------------------------- inspect
def add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="look inside a trained network for one image",
                       description="Write the output of every layer (or --layers), the learned filters and a saliency map for one image.",
                       epilog="Example:\n  sightline inspect runs/my-run boot.jpg --layers stage1.conv.relu,stage3.conv.relu",
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("run", help="run folder or name")
    p.add_argument("image", help="an image file")
    p.add_argument("--layers", type=class_list, help="layer names as shown by `sightline summary` (default: all)")
    p.add_argument("--output-dir", "-o", help="default: <run>/inspect/<image name>/")
    p.add_argument("--method", choices=("gradcam", "gradient"), default="gradcam", help="saliency method")
    p.add_argument("--filters-layer", help="conv layer whose filters to draw (default: the first)")
    p.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from sightline import inspect as insp
    from sightline.plots import save_figure

    run = _run(args.run, args.runs_dir)
    model, pre = run.load_model(), run.preprocess
    result = insp.inspect_image(model, pre, args.image, layers=args.layers, classes=run.classes, method=args.method)
    out = Path(args.output_dir) if args.output_dir else run.path / "inspect" / Path(args.image).stem
    paths = [save_figure(insp.plot_activations(result.outputs), out / "activations.png"),
             save_figure(insp.plot_saliency(result.input, result.saliency, title=f"predicted {result.predicted}"), out / "saliency.png")]  # fmt: skip
    if any(m.__class__.__name__ == "Conv2d" for m in model.modules()):
        paths.append(save_figure(insp.plot_filters(model, layer=args.filters_layer), out / "filters.png"))
    else:
        paths.append(save_figure(insp.plot_dense_weights(model, pre.input_shape), out / "dense-weights.png"))
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"predicted {result.predicted}")
    for p in paths:
        print(p)
    return 0


# ---------------------------------------------------------------------------- report
def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a run's plots and a self-contained HTML report",
                       description="Evaluate a run and write <run>/plots/*.png and <run>/report.html (images embedded, no external assets).")  # fmt: skip
    p.add_argument("run", nargs="?", help="run folder or name (default: the newest run)")
    p.add_argument("--output", "-o", help="HTML file (default: <run>/report.html)")
    p.add_argument("--runs-dir", default=None)
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from sightline.report import write_report

    run = _run(args.run, args.runs_dir)
    path = write_report(run, path=args.output)
    print(f"Plots: {run.path / 'plots'}")
    print(f"Report: {path}")
    return 0
