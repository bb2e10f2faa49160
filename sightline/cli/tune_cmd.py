"""``sightline tune``: sweep a model's options with Optuna; every trial is a sightline run."""

from __future__ import annotations

import argparse
import json

from sightline.cli.options import add_data_options, data_kwargs, duration, positive_int
from sightline.errors import ConfigError
from sightline.plan import ModelChoice, TrainConfig, add_cli_options, cli_values, declared
from sightline.sweeps import PRUNERS  # its module imports no Optuna, nor PyTorch


def add_tune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="sweep a model's options with Optuna (each trial a run)",
        description="Search training options with Optuna's TPE sampler: every trial is a "
        "sightline run on the same data, scored by its validation accuracy, the poor ones "
        "pruned from their epochs. The study lives in SQLite beside the runs (or --storage: "
        "PostgreSQL lets several machines work on one study).",
        epilog="Examples:\n  sightline tune fashion-mnist --recipe fashion-mnist-fast --trials 20 "
        "--time 40m\n  sightline tune ./photos --pretrained --trials 10 --workers 2\n"
        "  sightline tune --resume --study NAME\n  sightline tune --show NAME\n"
        "  sightline tune --retrain NAME",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", nargs="?", default=None,
                   help="dataset name or image folder, as for `sightline train`")  # fmt: skip
    p.add_argument("--recipe", "-r", default=None, help="a named recipe to search around")
    s = p.add_argument_group("the sweep")
    s.add_argument("--trials", type=positive_int, default=None,
                   help="trials to finish (pruned ones count; default 20; with --resume: the "
                   "study's new total)")  # fmt: skip
    s.add_argument("--time", type=duration, default=None, metavar="DURATION",
                   help="the whole sweep's time (e.g. 30m, 2h): each trial gets its share as "
                   "its time budget, and no trial starts after it")  # fmt: skip
    s.add_argument("--space", metavar="FILE",
                   help="a JSON search space (default: around the plan's own options; see "
                   "the README)")  # fmt: skip
    s.add_argument("--storage", metavar="URL",
                   help="Optuna storage, e.g. postgresql://user:pass@host/db (default: "
                   "SQLite in the runs folder, studies.db)")  # fmt: skip
    s.add_argument("--study", metavar="NAME", help="the study's name (default: data-model-time)")
    s.add_argument("--workers", type=positive_int, default=1,
                   help="processes on this machine working on the study (the cores shared)")  # fmt: skip
    s.add_argument("--pruner", choices=PRUNERS, default="median",
                   help="stop poor trials early from their epochs (default median)")  # fmt: skip
    s.add_argument("--resume", action="store_true", help="continue the study --study NAME")
    s.add_argument("--show", metavar="STUDY", help="the study's trials, best and figures")
    s.add_argument("--retrain", metavar="STUDY",
                   help="train the best trial's options on train + validation, then evaluate "
                   "and report")  # fmt: skip
    s.add_argument("--worker", action="store_true",
                   help="work on the study --study in --storage as one more worker (what "
                   "--workers starts; another machine runs it as --resume does)")  # fmt: skip
    add_cli_options({"model": p}, ModelChoice)
    add_data_options(p)
    t = p.add_argument_group("training options held fixed (the space searches the others)")
    add_cli_options({"training": t, "model": p, "processes": t}, TrainConfig)
    p.add_argument("--runs-dir", default=None, help="where the trials' runs go (default ./runs)")
    p.add_argument("--json", action="store_true", help="JSON lines: one per trial, then the study")
    p.set_defaults(func=run_tune)


def run_tune(args: argparse.Namespace) -> int:
    import sightline.sweeps as sweeps

    say = _printer(args.json)
    if args.worker:
        if not args.study:
            raise ConfigError("--worker works on a study: name it with --study NAME")
        url = sweeps.storage_url(args.storage, args.runs_dir)
        sweeps.work(args.study, url, workers=args.workers, on_event=say)
        return 0
    if args.show:
        result = sweeps.show(args.show, args.storage, args.runs_dir)
        return _print_study(result, args.json)
    if args.retrain:
        result = sweeps.retrain(args.retrain, args.storage, args.runs_dir,
                              progress="quiet" if args.json else "auto",
                              on_event=say if args.json else None)  # fmt: skip
        if not args.json:
            accuracy = result.metrics.accuracy if result.metrics is not None else None
            print(f"Best trial retrained on train + validation: {result.run.path}"
                  + (f" (test accuracy {accuracy:.4f})" if accuracy is not None else ""))  # fmt: skip
        return 0
    options = {o.name: getattr(args, o.name, None) for o in declared(TrainConfig) if o.spec.cli}
    model = ModelChoice(**cli_values(args, ModelChoice))
    result = sweeps.tune(
        args.dataset, model.model, recipe=args.recipe, trials=args.trials, time_limit=args.time,
        space=args.space, storage=args.storage, study=args.study, workers=args.workers,
        resume=args.resume, pruner=args.pruner, data_options=data_kwargs(args),
        model_options=model.plan_options(), runs_dir=args.runs_dir, on_event=say, **options,
    )  # fmt: skip
    return _print_study(result, args.json)


def _printer(as_json: bool):
    def say(event: dict) -> None:
        if as_json:
            print(json.dumps(event, default=str), flush=True)
        elif event["kind"] == "study":
            print(f"Study {event['study']} in {event['storage']}: {event['trials']} trials, "
                  f"{event['workers']} worker(s); searching {', '.join(event['space'])}", flush=True)  # fmt: skip
        elif event["kind"] == "trial":
            value = "" if event["value"] is None else f" val_accuracy {event['value']:.4f}"
            params = ", ".join(f"{k}={_short(v)}" for k, v in event["params"].items())
            print(
                f"trial {event['number']}: {event['state'].lower()}{value}  ({params})", flush=True
            )
        elif event["kind"] == "message":
            print(event["text"], flush=True)

    return say


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _print_study(result, as_json: bool) -> int:
    from sightline.sweeps import table

    if as_json:
        print(json.dumps(result.to_dict(), default=str))
        return 0
    print(table(result.trials))
    if result.best:
        b = result.best
        print(f"Best: trial {b['number']}, val_accuracy {b['value']:.4f}: "
              + ", ".join(f"{k}={_short(v)}" for k, v in b["params"].items()))  # fmt: skip
        print(f"  its run: {b['run']}")
        print(f"  retrain it on train + validation: sightline tune --retrain {result.study}")
    print(f"Figures: {result.folder}")
    return 0
