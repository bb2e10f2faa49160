"""``sightline runs``: every run with its status, best validation and test accuracy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sightline.cli.common import table


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

    rows_shown = [
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
    print(table(rows_shown, ["run", "status", "model", "data", "epochs", "best val", "test acc"]))
    for r in rows:
        if r.get("error"):
            print(f"{r['name']}: {r['error']}", file=sys.stderr)
    return 0
