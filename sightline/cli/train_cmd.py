"""``sightline train``: train a model on a dataset or an image folder, then evaluate it."""

from __future__ import annotations

import argparse
import os

from sightline.cli.options import (
    add_data_options,
    data_kwargs,
    kv_pair,
    positive_float,
    positive_int,
)
from sightline.cli.train_events import event_printer, printer
from sightline.plan.config import MONITORS, OPTIMIZERS, SCHEDULES


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
    p.add_argument(
        "--model",
        "-m",
        default=None,
        help="model name (see `sightline models`; default: airnet for fashion-mnist, else fastcnn)",
    )
    p.add_argument(
        "--model-opt",
        action="append",
        type=kv_pair,
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. --model-opt hidden=256 (repeatable)",
    )
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="start from ImageNet weights (default model: efficientnet-lite0; "
        "images prepared at 224 px RGB); trains a head on frozen features unless --fine-tune",
    )
    p.add_argument(
        "--fine-tune",
        dest="freeze",
        action="store_false",
        default=None,
        help="with --pretrained: train the whole network, not only a head on frozen features",
    )
    p.add_argument(
        "--freeze",
        dest="freeze",
        action="store_true",
        help="keep the pretrained backbone fixed and train a head on its features, computed once "
        "(the default with --pretrained: seconds on a CPU)",
    )
    add_data_options(p)
    t = p.add_argument_group("training (unset options use the model's tuned defaults)")
    t.add_argument("--epochs", "-e", type=positive_int, help="passes over the training set")
    t.add_argument(
        "--time-budget",
        type=positive_float,
        metavar="SECONDS",
        help="train as many of the epochs as fit in this many seconds here (a few steps are timed "
        "first; the recipes set one)",
    )
    t.add_argument("--batch-size", "-b", type=positive_int, help="images per optimizer step")
    t.add_argument(
        "--optimizer", choices=OPTIMIZERS, help="sgd (with Nesterov momentum), adam or adamw"
    )
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--momentum", type=float, help="SGD momentum")
    t.add_argument(
        "--no-nesterov",
        dest="nesterov",
        action="store_false",
        default=None,
        help="SGD: plain momentum instead of Nesterov",
    )
    t.add_argument("--weight-decay", type=float, help="L2 weight decay")
    t.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning-rate schedule (onecycle: warm-up, then linear decay)",
    )
    t.add_argument("--warmup", type=float, help="fraction of steps for lr warm-up")
    t.add_argument(
        "--label-smoothing", type=float, help="label smoothing of the cross-entropy loss, e.g. 0.1"
    )
    t.add_argument(
        "--lookahead",
        dest="lookahead",
        action="store_true",
        default=None,
        help="every 5 steps restart from a moving average of the weights, averaging more towards "
        "the end (airbench's Lookahead); the run ends on the averaged weights",
    )
    t.add_argument(
        "--no-lookahead",
        dest="lookahead",
        action="store_false",
        help="no Lookahead (where a recipe has it)",
    )
    t.add_argument("--translate", type=int, help="augmentation: random shift up to N pixels")
    t.add_argument(
        "--shift-tta",
        type=int,
        metavar="N",
        help="test-time augmentation: also average the predictions "
        "over each image shifted by +-N pixels (3x the inference cost; for models trained with --translate)",
    )
    t.add_argument(
        "--reframe",
        type=float,
        metavar="SHARE",
        help="augmentation: share of images turned/scaled/blurred a little as a photo's framing would be "
        "(default: 0.5 for Fashion-MNIST and MNIST, whose photos are framed; 0 otherwise)",
    )
    t.add_argument(
        "--flip",
        dest="flip",
        action="store_true",
        default=None,
        help="augmentation: random horizontal flips",
    )
    t.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        help="augmentation: no flips (default: the dataset decides; never for digits)",
    )
    t.add_argument(
        "--alternate-flip",
        dest="alternate_flip",
        action="store_true",
        default=None,
        help="with flips: mirror each image in every other epoch instead of at random (airbench's "
        "alternating flip: over two epochs every image is seen both ways)",
    )
    t.add_argument(
        "--no-alternate-flip",
        dest="alternate_flip",
        action="store_false",
        help="a fresh random flip each epoch (where a recipe alternates)",
    )
    t.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed (data split, init, shuffling; default 0)",
    )
    t.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    t.add_argument(
        "--amp",
        dest="amp",
        action="store_true",
        default=None,
        help="mixed precision: bf16 (default: on for CUDA, and for convnets on a CPU with AMX)",
    )
    t.add_argument(
        "--no-amp", dest="amp", action="store_false", help="full float32 precision, also on CUDA"
    )
    t.add_argument(
        "--no-cuda-graphs",
        dest="cuda_graphs",
        action="store_false",
        default=None,
        help="one GPU: launch each step's kernels one by one instead of replaying a CUDA graph",
    )
    t.add_argument(
        "--no-device-warmup",
        dest="device_warmup",
        action="store_false",
        default=None,
        help="GPU: no untimed warm-up steps (first-use costs) before the first epoch's clock starts",
    )
    t.add_argument(
        "--monitor", choices=MONITORS, help="metric for best checkpoint and early stopping"
    )
    t.add_argument(
        "--patience", type=positive_int, help="early stopping after N epochs without improvement"
    )
    t.add_argument(
        "--min-delta", type=float, help="early stopping: smallest improvement that counts"
    )
    t.add_argument(
        "--checkpoint-every", type=int, help="also checkpoint every N steps (for long epochs)"
    )
    t.add_argument("--max-steps", type=positive_int, help="stop after N optimizer steps")
    t.add_argument(
        "--head-epochs",
        type=int,
        help="--fine-tune: first epochs with only the new head learning (default 1)",
    )
    t.add_argument(
        "--backbone-lr",
        type=float,
        help="--fine-tune: the pretrained layers' lr as a fraction of --lr (default 0.1)",
    )
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
    d.add_argument(
        "--sync-bn",
        dest="sync_bn",
        action="store_true",
        default=None,
        help="with several processes: BatchNorm statistics over all of them (default: on when a process "
        "gets fewer than 32 images per step)",
    )
    d.add_argument(
        "--no-sync-bn",
        dest="sync_bn",
        action="store_false",
        help="with several processes: per-process BatchNorm",
    )
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
    """The ``TrainConfig`` fields the command line sets (every field but the free-form extra)."""
    import dataclasses

    from sightline.plan.config import TrainConfig

    return [f.name for f in dataclasses.fields(TrainConfig) if f.name != "extra"]


def _ignored_with_resume(args: argparse.Namespace) -> list[str]:
    """Options that can't change a resumed run (it continues with its own settings)."""
    keys = [
        *train_keys(),
        "model",
        "classes",
        "val_split",
        "calibration_split",
        "data_seed",
        "channels",
        "size",
        "resize",
        "name",
        "cache_dir",
        "mirror",
    ]
    given = ["--" + k.replace("_", "-") for k in keys if getattr(args, k, None) is not None]
    if args.model_opt:
        given.append("--model-opt")
    if args.pretrained:
        given.append("--pretrained")
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
        options = {k: getattr(args, k) for k in train_keys()}
        # The rules (pretrained: a head on frozen features unless --fine-tune) live in the plan.
        model_options = {
            **dict(args.model_opt),
            **({"pretrained": True} if args.pretrained else {}),
        }
        result = run_training(
            args.dataset,
            args.model,
            recipe=args.recipe,
            data_options=data_kwargs(args),
            model_options=model_options,
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
