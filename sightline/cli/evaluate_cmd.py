"""``sightline evaluate``: a run on its test split, another dataset or a labelled folder."""

from __future__ import annotations

import argparse
import json
import sys

from sightline.cli.common import pick_run
from sightline.cli.options import add_checkpoint, add_device, add_runs_dir


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
    add_checkpoint(p)
    add_runs_dir(p)
    add_device(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    run = pick_run(args.run, args.runs_dir)
    metrics = run.evaluate(args.data, split=args.split, which=args.checkpoint, device=args.device)
    record = run.last_evaluation
    if args.json:
        print(json.dumps({"run": str(run.path.resolve()), **metrics.to_dict(), **record}, indent=2))
        return 0
    where = record.get("path") or record.get("dataset") or run.config["data"].get("name_or_path")
    print(f"Run {run.path.resolve()} ({args.checkpoint} checkpoint), {where} / {record['split']}")
    print(metrics.format_table())
    clean = record.get("without_copies")
    if clean:
        print(f"Without the {clean['copies']:,} copies of training images: accuracy "
              f"{clean['accuracy']:.4f} on {clean['count']:,} images")  # fmt: skip
    for path, reason in record["skipped"][:20]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if len(record["skipped"]) > 20:
        print(f"... and {len(record['skipped']) - 20} more skipped files", file=sys.stderr)
    print(f"\nSaved: {run.path.resolve() / 'evaluations' / (record['source'] + '.json')}")
    return 0


# ---------------------------------------------------------------------------- predict
