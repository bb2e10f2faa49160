"""The parser class, argument types and option groups shared by several subcommands."""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from sightline.plan import (
    DataOptions,
    add_cli_options,
    class_list,  # noqa: F401 - parsed where the options are declared; other commands' flags use them
    cli_type,
    cli_values,
    declared_option,
    image_size,  # noqa: F401
    kv_pair,  # noqa: F401
)


class Parser(argparse.ArgumentParser):
    """The parser of ``sightline`` and of every subcommand (``parser_class`` of the subparsers).

    Differences from argparse's defaults, all about mistakes at the command line:

    * No abbreviations: ``--epoch 3`` would otherwise silently mean ``--epochs 3``, and adding
      an option later could turn a working abbreviation into an error or another option.
    * A misspelled option, subcommand or choice gets a "did you mean" from difflib.
    * An error is one line on stderr that names the subcommand, with a pointer to its
      ``--help``, instead of the whole usage block (which for ``train`` is 20 lines that hide
      the message). The exit code stays argparse's 2.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = "" if "did you mean" in message else f"; see: {self.prog} --help"
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")

    def parse_args(
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:  # type: ignore[override]
        # argparse reports a subcommand's unknown options from the top parser, as "sightline:
        # error: unrecognized arguments: --epoch 3"; this names the subcommand that was given
        # them, and the option that was probably meant.
        argv = list(sys.argv[1:] if args is None else args)
        ns, extras = self.parse_known_args(argv, namespace)
        if extras:
            owner = self._owner_of(extras[0], argv, ns)
            owner.error(owner._unknown_message(extras))
        return ns

    def _owner_of(self, extra: str, argv: list[str], ns: argparse.Namespace) -> Parser:
        """The subparser whose arguments ``extra`` was among (self when it came before the
        subcommand's name)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and action.choices:
                command = getattr(ns, action.dest or "", None)
                sub = action.choices.get(command) if command else None
                if (
                    isinstance(sub, Parser)
                    and command in argv
                    and extra in argv[argv.index(command) + 1 :]
                ):
                    return sub._owner_of(extra, argv[argv.index(command) + 1 :], ns)
        return self

    def _unknown_message(self, extras: list[str]) -> str:
        options = [e for e in extras if e.startswith("-") and len(e) > 1]
        if not options:  # a value after all positionals: the options' values were consumed
            return f"unexpected argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}"
        known = [s for a in self._all_actions() for s in a.option_strings]
        described = []
        for option in options:
            name = option.split("=", 1)[0]
            # What used to be an accepted abbreviation (--val for --val-split), else a near miss.
            longer = [k for k in known if k.startswith(name) and name.startswith("--")]
            close = longer if len(longer) == 1 else _close(name, known)
            described.append(f"{option} (did you mean {close[0]}?)" if close else option)
        return f"unknown option{'s' if len(options) > 1 else ''} {', '.join(described)}"

    def _all_actions(self) -> list[argparse.Action]:
        return [a for a in self._actions if a.help is not argparse.SUPPRESS]

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's hook for `choices` (subcommands included): "invalid choice: 'trian' (choose
        # from 'datasets', 'models', ...)" becomes "unknown command 'trian' (did you mean train?)".
        if action.choices is None or value in action.choices:
            return
        choices = [str(c) for c in action.choices]
        close = _close(str(value), choices)
        tail = f"did you mean {close[0]}?" if close else f"choose from {', '.join(choices)}"
        if isinstance(action, argparse._SubParsersAction):
            raise argparse.ArgumentError(None, f"unknown command {value!r} ({tail})")
        raise argparse.ArgumentError(action, f"invalid choice {value!r} ({tail})")


def _close(word: str, candidates: list[str]) -> list[str]:
    # 0.7 catches typos and swapped letters (trian, --epoch, --bach-size) but not unrelated
    # words that merely share a few letters (--bogus-thing vs --label-smoothing is 0.6).
    return difflib.get_close_matches(word, candidates, n=1, cutoff=0.7)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# The data options' text, parsed and checked from their one declaration (plan/inputs.py).
val_split = cli_type(declared_option(DataOptions, "val_split"))
calibration_split = cli_type(declared_option(DataOptions, "calibration_split"))


def duration(text: str) -> float:
    """'90', '90s', '30m', '1.5h' → seconds (argparse's type)."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    t = text.strip().lower()
    scale = units.get(t[-1:])
    try:
        value = float(t[:-1] if scale else t) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90s, 30m or 2h, got {text!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def add_data_options(p: argparse.ArgumentParser) -> None:
    """The "data" group of flags: every ``DataOptions`` option, from its declaration."""
    add_cli_options({"data": p.add_argument_group("data")}, DataOptions)


def data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``load_dataset``'s options from the data flags given (checked: DataError), and --flip."""
    kw = DataOptions(**cli_values(args, DataOptions)).loader_options()
    if getattr(args, "flip", None) is not None:
        kw["flip"] = args.flip
    return kw


# ----------------------------------------------------------------------------- shared by commands
def add_runs_dir(p: argparse.ArgumentParser) -> None:
    """``--runs-dir``: where the run a command names is looked up."""
    p.add_argument(
        "--runs-dir",
        default=None,
        help="where run names are looked up (default: ./runs or $SIGHTLINE_RUNS_DIR)",
    )


def add_checkpoint(p: argparse.ArgumentParser, *aliases: str) -> None:
    """``--checkpoint best|last``: which of a run's model files a command uses."""
    p.add_argument(
        "--checkpoint",
        *aliases,
        default="best",
        choices=("best", "last"),
        help="the best epoch's weights (default) or the last saved",
    )


def add_engine(p: argparse.ArgumentParser, what: str) -> None:
    """``--engine``: what ``what`` runs on (the run's one rule: sightline/run/predictor.py)."""
    from sightline.run import ENGINES

    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help=f"what {what} on: auto (default): the fastest here, timed once, of PyTorch and the "
        "run's current float exports whose runtimes are installed (`sightline export RUN --format "
        "onnx openvino litert` makes them); torch: PyTorch; onnx, openvino, litert: that export, "
        "or an error saying how to make it",
    )


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
