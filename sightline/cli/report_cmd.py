"""``sightline report``: a run's plots and its HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sightline.cli.common import pick_run
from sightline.cli.options import add_runs_dir


def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's plots and a self-contained HTML report",
        description="Evaluate a run and write <run>/plots/*.png and <run>/report.html (images embedded, no external assets).",
    )
    p.add_argument("run", nargs="?", help="run folder or name (default: the newest run)")
    p.add_argument("--output", "-o", help="HTML file (default: <run>/report.html)")
    add_runs_dir(p)
    p.add_argument(
        "--redraw",
        action="store_true",
        help="draw every figure again even when the saved ones are current",
    )
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from sightline.report import write_report

    run = pick_run(args.run, args.runs_dir)
    path = write_report(
        run,
        path=args.output,
        redraw=args.redraw,
        on_progress=lambda text: print(text, file=sys.stderr, flush=True),
    )
    print(f"Plots: {(run.path / 'plots').resolve()}")
    print(f"Report: {Path(path).resolve()}")
    return 0
