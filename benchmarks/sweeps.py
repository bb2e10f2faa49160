"""A sweep against the recipe it searches around: ``sightline tune fashion-mnist --recipe
fashion-mnist-fast`` with a time budget, its best trial retrained on train + validation and
evaluated, beside the recipe as shipped trained and evaluated in the same process; and trials
per hour with 1 and 2 workers on one study (SQLite beside the runs, or ``--storage``).

    .venv/bin/python benchmarks/sweeps.py [--trials 20] [--time 40m] [--workers 1]
        [--storage postgresql://...|--postgres] [--skip-recipe] [--pruner none] [--no-retrain]

Trials per hour: without ``--time`` each trial trains its own epochs (with ``--time`` a trial's
budget is the sweep's time shared, so more workers give each trial more time, not more
trials), and ``--pruner none`` keeps every trial whole. ``--postgres`` starts a throwaway
PostgreSQL server for the study (tests/postgres_server.py; Debian's ``postgresql``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch

import sightline
from sightline.cli.options import duration
from sightline.sweeps import retrain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="fashion-mnist-fast")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--time", type=duration, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--storage", default=None)
    parser.add_argument("--skip-recipe", action="store_true")
    parser.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    parser.add_argument("--no-retrain", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="a throwaway local server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if args.postgres:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from postgres_server import postgres

            args.storage = stack.enter_context(postgres())
        runs = Path(tmp) / "runs"
        if not args.skip_recipe:
            torch.manual_seed(0)
            start = time.perf_counter()
            shipped = sightline.run_training(recipe=args.recipe, runs_dir=runs, progress="quiet")
            print(f"recipe as shipped: test accuracy {shipped.metrics.accuracy:.4f} in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        start = time.perf_counter()
        result = sightline.tune(recipe=args.recipe, trials=args.trials, time_limit=args.time,
                                workers=args.workers, storage=args.storage, runs_dir=runs,
                                seed=0, pruner=args.pruner, on_event=_say)  # fmt: skip
        seconds = time.perf_counter() - start
        done = [t for t in result.trials if t["state"] in ("COMPLETE", "PRUNED")]
        print(f"sweep: {len(result.trials)} trials ({len(done)} finished or pruned) in "
              f"{seconds / 60:.1f} min with {args.workers} worker(s): "
              f"{len(done) / (seconds / 3600):.1f} trials/hour", flush=True)  # fmt: skip
        if result.best and not args.no_retrain:
            print(f"best trial {result.best['number']}: val {result.best['value']:.4f} "
                  f"{result.best['params']}", flush=True)  # fmt: skip
            start = time.perf_counter()
            best = retrain(result.study, args.storage, runs, progress="quiet")
            print(f"best retrained on train + validation: test accuracy "
                  f"{best.metrics.accuracy:.4f} in {time.perf_counter() - start:.0f} s")  # fmt: skip


def _say(event: dict) -> None:
    if event["kind"] == "trial":
        value = "" if event["value"] is None else f"{event['value']:.4f}"
        print(f"  trial {event['number']} {event['state'].lower()} {value}", flush=True)


if __name__ == "__main__":
    main()
