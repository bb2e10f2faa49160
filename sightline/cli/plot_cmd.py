"""``sightline plot``: one figure of a dataset or a run, saved as PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from sightline.cli.common import pick_run
from sightline.cli.options import add_runs_dir, class_list, positive_int
from sightline.errors import SightlineError
from sightline.plan import TrainConfig, add_cli_options
from sightline.run import RunLayout

# The training options that shape the learning-rate schedule plot.
SCHEDULE_OPTIONS = ("epochs", "lr", "schedule", "warmup", "batch_size")
PLOTS = ("samples", "predictions", "probabilities", "curves", "confusion", "top-losses", "schedule")


def add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="draw a figure: samples, predictions, curves, confusion, ...",
        description="Draw one figure and write it as PNG or SVG (headless).",
        epilog="Examples:\n  sightline plot samples fashion-mnist\n  sightline plot predictions --only-mistakes\n"
        "  sightline plot confusion runs/my-run --normalize -o confusion.svg\n"
        "  sightline plot schedule --model fastcnn --epochs 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=PLOTS, help="the figure: " + ", ".join(PLOTS))
    p.add_argument(
        "source",
        nargs="?",
        help="samples: a dataset name or folder (default fashion-mnist); others: a run (default: newest)",
    )
    p.add_argument(
        "--output",
        "-o",
        help="file to write (.png or .svg); default: <run>/plots/<kind>.png or ./<kind>.png",
    )
    p.add_argument(
        "--rows",
        type=positive_int,
        default=5,
        help="rows of images in a grid (default 5); top-losses shows rows x cols",
    )
    p.add_argument(
        "--cols",
        type=positive_int,
        default=5,
        help="columns of images in a grid (default 5; probabilities: at most 3 image + bars pairs)",
    )
    p.add_argument(
        "--random", action="store_true", help="samples: random images instead of the first ones"
    )
    p.add_argument("--seed", type=int, default=0, help="samples: seed of --random (default 0)")
    p.add_argument("--classes", type=class_list, help="samples: only these classes")
    p.add_argument(
        "--only-mistakes", action="store_true", help="predictions: show only wrong predictions"
    )
    p.add_argument("--normalize", action="store_true", help="confusion: row-normalised percentages")
    p.add_argument(
        "--split",
        default="test",
        choices=("test", "val", "train"),
        help="which split to draw (default test)",
    )
    p.add_argument("--model", default=None, help="schedule: the model whose tuned defaults to show")
    # The schedule's options as `sightline train` declares them (plan/config.py), the same flags.
    sched = p.add_argument_group("schedule (default: the model's tuned values)")
    add_cli_options({"training": sched}, TrainConfig, only=SCHEDULE_OPTIONS)
    add_runs_dir(p)
    p.set_defaults(func=run_plot)


def run_plot(args: argparse.Namespace) -> int:
    from sightline import plots

    if args.kind == "samples":
        from sightline.data import load_dataset

        data = load_dataset(
            args.source or "fashion-mnist", classes=args.classes, val_split=0, progress=False
        )
        splits = data.splits()
        split = "train" if args.split not in splits else args.split  # val_split=0: no val
        fig = plots.plot_samples(
            splits[split].images,
            splits[split].labels,
            data.classes,
            args.rows,
            args.cols,
            random=args.random,
            seed=args.seed,
            dark_background=data.preprocess.dark_background,
        )
        default = Path(f"{Path(data.name).name}-samples.png")
    elif args.kind == "schedule":
        fig, default = _schedule_figure(args)
    else:
        run = pick_run(args.source, args.runs_dir)
        fig, name = _run_figure(run, args)
        if not args.output:  # into the run's plots/, through its writer
            from sightline.plots import figure_bytes
            from sightline.run import RunWriter

            print(RunWriter(run.path).write_plot(f"{name}.png", figure_bytes(fig)).resolve())
            return 0
        default = Path(f"{name}.png")
    path = plots.save_figure(fig, Path(args.output) if args.output else default)
    print(path.resolve())
    return 0


def _run_figure(run, args: argparse.Namespace):
    """(the figure, its name) from the registry the report draws from (``report.figures``)."""
    from sightline import plots
    from sightline.report import FIGURES, RunView

    name = {
        "confusion": "confusion-normalized" if args.normalize else "confusion",
        "predictions": "mistakes" if args.only_mistakes else "predictions",
    }.get(args.kind, args.kind)
    view = RunView(
        run, split=args.split, rows=args.rows, cols=args.cols, top_k=args.rows * args.cols
    )
    if args.kind == "confusion":  # numbers only: the saved evaluation, without loading the images
        for true, pred, n in plots.most_confused(
            view.confusion_metrics.confusion, run.classes, k=5
        ):
            print(f"most confused: {true} -> {pred}: {n}")
    fig = FIGURES[name].draw(view)
    if fig is None:
        raise SightlineError(f"{run.path.resolve()} {FIGURES[name].missing}")
    return fig, name


def _schedule_figure(args: argparse.Namespace):
    """A run's schedule (``plot schedule RUN``), or a model's tuned one on a dataset's real
    training split (``plot schedule [DATASET] --model M --epochs N``), both from plan_steps."""
    from sightline import plots
    from sightline.data import find_dataset_spec
    from sightline.models import default_model, get_model_entry
    from sightline.plan import plan_steps, resolve_config

    is_dataset = args.source and (find_dataset_spec(args.source) or Path(args.source).is_dir())
    if args.source and (not is_dataset or RunLayout(args.source).config.is_file()):  # a run
        from sightline.report import schedule_figure

        run = pick_run(args.source, args.runs_dir)
        return schedule_figure(run, 0), RunLayout(run.path).plot("schedule.png")
    entry = get_model_entry(args.model or default_model(args.source or "fashion-mnist"))
    cfg = resolve_config(
        entry.train_defaults,
        epochs=args.epochs,
        lr=args.lr,
        schedule=args.schedule,
        warmup=args.warmup,
        batch_size=args.batch_size,
    )
    plan = plan_steps(_train_size(args.source or "fashion-mnist", args.classes), cfg)
    return plots.plot_lr_schedule(
        cfg.lr, cfg.schedule, cfg.warmup, cfg.epochs, plan.steps_per_epoch
    ), Path("schedule.png")


def _train_size(source: str, classes: list[str] | None) -> int:
    """Training images after the default 10 % validation split: a built-in dataset's from its
    registry counts (no download needed), a folder's by loading it."""
    from sightline.data import find_dataset_spec, load_dataset

    spec = find_dataset_spec(source)
    if spec is None or classes:
        return len(load_dataset(source, classes=classes, progress=False).train)
    per_class = spec.num_train / len(spec.classes)  # the built-ins are (near) balanced
    return spec.num_train - len(spec.classes) * round(per_class * 0.1)


# ---------------------------------------------------------------------------- inspect
