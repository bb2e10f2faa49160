"""The ``sightline`` command line: a thin layer over the Python API.

Each subcommand parses its arguments, calls the same functions a Python user would, and formats
the result. User errors (``SightlineError``) print one clear line and exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys

from sightline._version import __version__
from sightline.cli import (
    calibrate_cmd,
    check_cmd,
    datasets_cmd,
    evaluate_cmd,
    export_cmd,
    inspect_cmd,
    label_cmd,
    models_cmd,
    plot_cmd,
    predict_cmd,
    recipes_cmd,
    report_cmd,
    runs_cmd,
    serve_cmd,
    summary_cmd,
    train_cmd,
    tune_cmd,
)
from sightline.cli.options import Parser
from sightline.errors import SightlineError


def build_parser() -> argparse.ArgumentParser:
    # Building the parser imports no PyTorch (nor anything that does): `sightline --help`,
    # `datasets`, `models` and `runs` start in well under a second, and each subcommand's
    # run_* function imports what it needs.
    parser = Parser(
        prog="sightline",
        description="Train, evaluate and use image classifiers. Run `sightline COMMAND --help` for details.",
        epilog="Example: sightline train fashion-mnist  &&  sightline predict boot.jpg",
    )
    parser.add_argument("--version", action="version", version=f"sightline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    datasets_cmd.add_datasets(sub)
    models_cmd.add_models(sub)
    recipes_cmd.add_recipes(sub)
    summary_cmd.add_summary(sub)
    check_cmd.add_check(sub)
    label_cmd.add_label(sub)
    train_cmd.add_train(sub)
    tune_cmd.add_tune(sub)
    evaluate_cmd.add_evaluate(sub)
    calibrate_cmd.add_calibrate(sub)
    predict_cmd.add_predict(sub)
    export_cmd.add_export(sub)
    runs_cmd.add_runs(sub)
    plot_cmd.add_plot(sub)
    inspect_cmd.add_inspect(sub)
    report_cmd.add_report(sub)
    serve_cmd.add_serve(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(
        sys.argv[1:] if argv is None else argv
    )  # as typed: `train --nproc` relaunches it
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SightlineError as e:
        print(f"sightline {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sightline predict ... | head`
        return 0
