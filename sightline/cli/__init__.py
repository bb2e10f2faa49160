"""The ``sightline`` command line: a thin layer over the Python API.

Each subcommand parses its arguments, calls the same functions a Python user would, and formats
the result. User errors (``SightlineError``) print one clear line and exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys

from sightline._version import __version__
from sightline.cli import commands, export_cmd, serve_cmd, train_cmd, view_cmds
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
    commands.add_datasets(sub)
    commands.add_models(sub)
    commands.add_recipes(sub)
    commands.add_summary(sub)
    train_cmd.add_train(sub)
    commands.add_evaluate(sub)
    commands.add_predict(sub)
    export_cmd.add_export(sub)
    commands.add_runs(sub)
    view_cmds.add_plot(sub)
    view_cmds.add_inspect(sub)
    view_cmds.add_report(sub)
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
