"""``sightline train``: train a model on a dataset or an image folder, then evaluate it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sightline.cli.options import add_data_options, data_kwargs, kv_pair, positive_int
from sightline.train.config import MONITORS, OPTIMIZERS, SCHEDULES


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (default: fastcnn on fashion-mnist)",
        description="Train a model, save the run folder (checkpoints, metrics), then evaluate it on the test split.",
        epilog="Examples:\n  sightline train fashion-mnist\n  sightline train mnist --model mlp --epochs 3\n"
        "  sightline train cifar10 --classes airplane,automobile,bird --model tutorial-cnn --patience 3\n"
        "  sightline train ./my_photos --size 64x64\n  sightline train --resume runs/fashion-mnist-fastcnn-20260101-120000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", nargs="?", default="fashion-mnist", help="dataset name (see `sightline datasets`) or image folder (default: fashion-mnist)")
    p.add_argument("--model", "-m", default=None, help="model name (see `sightline models`; default: fastcnn)")
    p.add_argument("--model-opt", action="append", type=kv_pair, default=[], metavar="KEY=VALUE", help="model option, e.g. --model-opt hidden=256 (repeatable)")
    add_data_options(p)
    t = p.add_argument_group("training (unset options use the model's tuned defaults)")
    t.add_argument("--epochs", "-e", type=positive_int)
    t.add_argument("--batch-size", "-b", type=positive_int)
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--momentum", type=float)
    t.add_argument("--no-nesterov", dest="nesterov", action="store_false", default=None)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--schedule", choices=SCHEDULES)
    t.add_argument("--warmup", type=float, help="fraction of steps for lr warm-up")
    t.add_argument("--label-smoothing", type=float)
    t.add_argument("--translate", type=int, help="augmentation: random shift up to N pixels")
    t.add_argument("--flip", dest="flip", action="store_true", default=None, help="augmentation: random horizontal flips")
    t.add_argument("--no-flip", dest="flip", action="store_false")
    t.add_argument("--seed", type=int, default=None, help="random seed (data split, init, shuffling; default 0)")
    t.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    t.add_argument("--amp", dest="amp", action="store_true", default=None, help="mixed precision (default: on for CUDA)")
    t.add_argument("--no-amp", dest="amp", action="store_false")
    t.add_argument("--monitor", choices=MONITORS, help="metric for best checkpoint and early stopping")
    t.add_argument("--patience", type=positive_int, help="early stopping after N epochs without improvement")
    t.add_argument("--min-delta", type=float, help="early stopping: smallest improvement that counts")
    t.add_argument("--checkpoint-every", type=int, help="also checkpoint every N steps (for long epochs)")
    t.add_argument("--max-steps", type=positive_int, help="stop after N optimizer steps")
    r = p.add_argument_group("run")
    r.add_argument("--name", help="run folder name (default: <dataset>-<model>-<time>)")
    r.add_argument("--runs-dir", default=None, help="where run folders go (default: ./runs or $SIGHTLINE_RUNS_DIR)")
    r.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder exactly where it stopped")
    r.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation (and the report) after training")
    r.add_argument("--no-report", action="store_true", help="skip the plots and HTML report after training")
    r.add_argument("--progress", choices=("auto", "bar", "lines", "json", "quiet"), default="auto")
    r.add_argument("--quiet", "-q", dest="progress", action="store_const", const="quiet")
    r.add_argument("--json", dest="progress", action="store_const", const="json", help="JSON-lines events on stdout")
    p.set_defaults(func=run_train)


TRAIN_KEYS = (
    "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "weight_decay", "schedule", "warmup",
    "label_smoothing", "translate", "flip", "seed", "device", "amp", "monitor", "patience", "min_delta",
    "checkpoint_every", "max_steps",
)  # fmt: skip


def run_train(args: argparse.Namespace) -> int:
    import sightline
    from sightline.models import DEFAULT_MODEL, create_model, get_model_entry

    say = _printer(args.progress)
    get_model_entry(args.model or DEFAULT_MODEL)  # fail fast on a typo, before loading data
    if args.resume:
        say(f"Resuming {args.resume}")
        run = sightline.resume(args.resume, progress=args.progress)
    else:
        data = sightline.load_dataset(args.dataset, **data_kwargs(args), progress=args.progress not in ("quiet", "json"))
        say(data.describe())
        for path, reason in data.skipped[:20]:
            say(f"  skipped {path}: {reason}")
        if len(data.skipped) > 20:
            say(f"  ... and {len(data.skipped) - 20} more skipped files")
        import torch

        torch.manual_seed(args.seed or 0)
        model = create_model(args.model or DEFAULT_MODEL, data.input_shape, data.num_classes, **dict(args.model_opt))
        summ = sightline.summary(model)
        say(f"Model {model.sightline_config['name']}: {summ.total:,} parameters ({summ.trainable:,} trainable)")
        options: dict[str, Any] = {k: getattr(args, k) for k in TRAIN_KEYS}
        run = sightline.fit(model, data, name=args.name, runs_dir=args.runs_dir, progress=args.progress, **options)
    status = run.status
    say(f"Training {status['status']}: best {status['monitor']} {status['best_value']:.4f} at epoch {status['best_epoch']}"
        if status.get("best_value") is not None else f"Training {status['status']}")  # fmt: skip
    result: dict[str, Any] = {"run": str(run.path), "status": status["status"]}
    if status["status"] == "interrupted":
        say(f"Run saved (interrupted) in {run.path}")
        return 130
    if not args.no_eval:
        metrics = _evaluate_after_training(run, say)
        if metrics is not None:
            result.update(test_accuracy=metrics.accuracy, test_loss=metrics.loss)
        if not args.no_report:
            from sightline.report import write_report

            report = write_report(run, metrics=metrics)
            say(f"Plots: {run.path / 'plots'}")
            say(f"Report: {report}")
            result["report"] = str(report)
    say(f"Run saved in {run.path}")
    if args.progress == "json":
        print(json.dumps({"event": "result", **result}), flush=True)
    return 0


def _evaluate_after_training(run, say):
    data = run.load_data()
    if data.test is None:
        say("No test split: skipped the final evaluation (use `sightline evaluate` with --data).")
        return None
    metrics = run.evaluate(data, split="test")
    say(f"Test accuracy: {metrics.accuracy:.4f}  (loss {metrics.loss:.4f}, {metrics.count:,} images)")
    say(f"Metrics: {run.path / 'evaluation.txt'}")
    return metrics


def _printer(progress: str):
    # Human messages go to stderr in JSON mode (stdout is for the JSON stream), else stdout.
    stream = sys.stderr if progress == "json" else sys.stdout

    def say(msg: str) -> None:
        if progress != "quiet" or msg.startswith(("Test accuracy", "Run saved", "Report")):
            print(msg, file=stream, flush=True)

    return say
