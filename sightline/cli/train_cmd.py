"""``sightline train``: train a model on a dataset or an image folder, then evaluate it."""

from __future__ import annotations

import argparse
import os

from sightline.cli.options import add_data_options, data_kwargs, positive_int
from sightline.cli.train_events import event_printer, printer
from sightline.plan import (
    DataOptions,
    ModelChoice,
    TrainConfig,
    add_cli_options,
    cli_flags,
    cli_values,
    declared,
)


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default: airnet on fashion-mnist)",
        description="Train a model, save the run folder (checkpoints, metrics), then evaluate it on the test split.",
        epilog="Examples:\n  sightline train fashion-mnist\n  sightline train mnist --model mlp --epochs 3\n"
        "  sightline train cifar10 --classes airplane,automobile,bird --model tutorial-cnn --patience 3\n"
        "  sightline train --recipe fashion-mnist-fast\n  sightline train ./my_photos --size 64x64\n  sightline train ./my_photos --pretrained\n  sightline train --resume runs/fashion-mnist-airnet-20260101-120000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset",
        nargs="?",
        default=None,
        help="dataset name (see `sightline datasets`) or image folder "
        "(default: the recipe's dataset, else fashion-mnist)",
    )
    p.add_argument(
        "--recipe",
        "-r",
        default=None,
        help="a named recipe: model, data split and training options measured "
        "together, e.g. fashion-mnist-fast (see `sightline recipes`); options given here override it",
    )
    # --model, --model-opt, --pretrained (plan/inputs.py) and the data group, each from its
    # one declaration; so are the training options below (plan/config.py).
    add_cli_options({"model": p}, ModelChoice)
    add_data_options(p)
    t = p.add_argument_group("training (unset options use the model's tuned defaults)")
    d = p.add_argument_group("several processes (torchrun; see the README)")
    d.add_argument(
        "--gpus",
        type=positive_int,
        metavar="N",
        help="train on N GPUs of this machine: one process per GPU, "
        "launched with torchrun (DistributedDataParallel); --batch-size stays the global batch",
    )
    d.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="train in N processes on this machine's CPUs "
        "(torchrun, gloo); the cores are shared out between them",
    )
    # Every TrainConfig option, from its one declaration (plan/config.py, plan/options.py).
    add_cli_options({"training": t, "model": p, "processes": d}, TrainConfig)
    r = p.add_argument_group("run")
    r.add_argument("--name", help="run folder name (default: <dataset>-<model>-<time>)")
    r.add_argument(
        "--runs-dir",
        default=None,
        help="where run folders go (default: ./runs or $SIGHTLINE_RUNS_DIR)",
    )
    r.add_argument(
        "--resume",
        metavar="RUN",
        help="continue an interrupted run folder exactly where it stopped",
    )
    r.add_argument(
        "--no-eval",
        action="store_true",
        help="skip the test-set evaluation (and the report) after training",
    )
    r.add_argument(
        "--no-report", action="store_true", help="skip the plots and HTML report after training"
    )
    r.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip the data check of an image folder before training (copies, leaks into test, "
        "class counts, odd images: `sightline check FOLDER` for all of it)",
    )
    r.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "json", "quiet"),
        default="auto",
        help="auto: a live bar on a terminal, epoch lines elsewhere (default)",
    )
    r.add_argument(
        "--quiet",
        "-q",
        dest="progress",
        action="store_const",
        const="quiet",
        help="print only the result lines (same as --progress quiet)",
    )
    r.add_argument(
        "--json",
        dest="progress",
        action="store_const",
        const="json",
        help="JSON-lines events on stdout",
    )
    p.set_defaults(func=run_train)


def train_keys() -> list[str]:
    """The ``TrainConfig`` options the command line sets (an option without a flag is not
    read: it keeps its default unless a recipe or the API sets it)."""
    return [o.name for o in declared(TrainConfig) if o.spec.cli]


def _ignored_with_resume(args: argparse.Namespace) -> list[str]:
    """Options that can't change a resumed run (it continues with its own settings)."""
    given = [
        cli_flags(o)[0][0]
        for cls in (TrainConfig, ModelChoice, DataOptions)
        for o in declared(cls)
        if o.spec.cli and getattr(args, o.name, None) is not None
    ]
    if args.name is not None:
        given.append("--name")
    if args.recipe:
        given.append("--recipe")
    if args.dataset is not None:
        given.append(args.dataset)
    return given


def run_train(args: argparse.Namespace) -> int:
    if args.gpus or args.nproc:
        from sightline.cli.launch import launch_train

        return launch_train(args)
    from sightline.pipeline import run_training
    from sightline.run import find_run

    if int(os.environ.get("RANK", "0") or 0) != 0:  # under torchrun, rank 0 alone prints
        args.progress = "quiet"
    say = (
        printer(args.progress) if int(os.environ.get("RANK", "0") or 0) == 0 else (lambda msg: None)
    )
    # With --json every event, the training's own included, comes from the one event printer.
    common = dict(
        evaluate=not args.no_eval,
        report=not (args.no_eval or args.no_report),
        check=args.check,
        progress="quiet" if args.progress == "json" else args.progress,
        on_event=event_printer(args.progress, say),
    )
    if args.resume:
        ignored = _ignored_with_resume(args)
        if ignored:
            say(
                f"--resume continues the run with its own saved settings; ignored: {', '.join(ignored)}"
            )
        result = run_training(resume=find_run(args.resume, args.runs_dir), **common)
    else:
        options = {k: getattr(args, k, None) for k in train_keys()}
        # The rules (pretrained: a head on frozen features unless --fine-tune) live in the plan.
        model = ModelChoice(**cli_values(args, ModelChoice))
        result = run_training(
            args.dataset,
            model.model,
            recipe=args.recipe,
            data_options=data_kwargs(args),
            model_options=model.plan_options(),
            name=args.name,
            runs_dir=args.runs_dir,
            **common,
            **options,
        )
    run = result.run
    if result.status == "interrupted":
        say(
            f"Run saved (interrupted) in {run.path}. Resume with: sightline train --resume {run.path}"
        )
        return 130
    say(f"Run saved in {run.path}")
    return 0
