"""The command-line parser on its own: no training, no datasets, no PyTorch.

What a user gets when they mistype: no silent abbreviations, a "did you mean" for options,
subcommands and choices, a one-line error that points to the subcommand's --help, exit code 2,
and a help line for every option. Also that building the parser (and so `sightline --help`)
imports no PyTorch, which is what keeps the quick commands quick.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from sightline.cli import build_parser, main
from sightline.cli.options import Parser


def _error(args: list[str], capsys) -> list[str]:
    """Parse ``args``, expect argparse's exit 2, return the stderr lines."""
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.splitlines()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_parser_uses_the_shared_class_without_abbreviations():
    parser = build_parser()
    subs = _subparsers(parser)
    assert {"train", "evaluate", "predict", "runs", "models", "datasets"} <= set(subs)
    for p in [parser, *subs.values()]:
        assert isinstance(p, Parser) and p.allow_abbrev is False, p.prog


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epoch", "3"],
        ["train", "--batch", "8"],
        ["runs", "--js"],
        ["predict", "x.png", "--top", "2"],
    ],
)
def test_abbreviations_are_rejected(args, capsys):
    (line,) = _error(args, capsys)
    assert "unknown option" in line and "did you mean" in line


def test_misspelled_option_gets_did_you_mean(capsys):
    assert _error(["train", "--epoch", "3"], capsys) == [
        "sightline train: error: unknown option --epoch (did you mean --epochs?)"
    ]
    assert _error(["train", "--bach-size=8"], capsys) == [
        "sightline train: error: unknown option --bach-size=8 (did you mean --batch-size?)"
    ]
    assert _error(["runs", "--jsn"], capsys) == [
        "sightline runs: error: unknown option --jsn (did you mean --json?)"
    ]


def test_unrelated_unknown_option_points_to_help(capsys):
    assert _error(["train", "--bogus-thing"], capsys) == [
        "sightline train: error: unknown option --bogus-thing; see: sightline train --help"
    ]
    # Before the subcommand: the top-level parser's option.
    assert _error(["--verbose", "runs"], capsys) == [
        "sightline: error: unknown option --verbose; see: sightline --help"
    ]


def test_misspelled_subcommand_and_choice(capsys):
    assert _error(["trian"], capsys) == [
        "sightline: error: unknown command 'trian' (did you mean train?)"
    ]
    (line,) = _error(["train", "--optimizer", "sgdd"], capsys)
    assert (
        line
        == "sightline train: error: argument --optimizer: invalid choice 'sgdd' (did you mean sgd?)"
    )
    (line,) = _error(["xyzzy"], capsys)
    assert (
        line.startswith("sightline: error: unknown command 'xyzzy' (choose from ")
        and "train" in line
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--epochs", "0"],
            "sightline train: error: argument --epochs/-e: must be from 1 to 10,000, got 0",
        ),
        (
            ["train", "--size", "abc"],
            "sightline train: error: argument --size: expected a size like 64 or 64x48",
        ),
        (
            ["train", "--val-split", "2"],
            "sightline train: error: argument --val-split: validation fraction must be in [0, 1)",
        ),
        (["predict"], "sightline predict: error: the following arguments are required: inputs"),
        (["train", "fashion-mnist", "extra"], "sightline train: error: unexpected argument: extra"),
    ],
)
def test_invalid_values_are_one_line_with_a_help_hint(args, message, capsys):
    lines = _error(args, capsys)
    assert len(lines) == 1 and "usage:" not in lines[0]
    assert lines[0].startswith(message)
    assert lines[0].endswith(f"; see: sightline {args[0]} --help")


def test_every_option_has_help():
    parser = build_parser()
    missing = []
    for name, sub in {"": parser, **_subparsers(parser)}.items():
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"sightline {name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without a help line:\n" + "\n".join(missing)


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SIGHTLINE_RUNS_DIR": os.devnull + "-no-such-dir"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_help_path_imports_no_torch():
    # A fresh interpreter: this test process has long imported torch.
    r = _python(
        "import contextlib, io, sys, sightline, sightline.cli\n"
        "sightline.cli.build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    sightline.cli.main(['--help'])\n"
        "assert 'usage: sightline' in out.getvalue()\n"
        "for cmd in ('train', 'predict', 'plot'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        sightline.cli.main([cmd, '--help'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert sightline.load_dataset.__name__ == 'load_dataset'\n"
    )
    assert r.returncode == 0, r.stderr


def test_quick_commands_import_no_torch():
    r = _python(
        "import contextlib, io, sys\n"
        "from sightline.cli import main\n"
        "for cmd in (['datasets'], ['models'], ['models', '--json'], ['runs']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(cmd) == 0, cmd\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    assert r.returncode == 0, r.stderr


def test_one_declaration_makes_the_flag_its_help_and_its_check():
    """Issue 52: an option is declared once (plan/options.py); a new one needs no flag code,
    no check code: a config with one more field shows it in --help and checks its bounds."""
    import argparse
    import dataclasses

    from sightline.errors import ConfigError
    from sightline.plan.config import TrainConfig
    from sightline.plan.option_faces import add_cli_options
    from sightline.plan.options import option

    @dataclasses.dataclass
    class WithMixup(TrainConfig):
        mixup: float = option(0.0, "augmentation: mix pairs of images (share)", low=0, high=1)
        mix_labels: bool = option(False, "also mix their labels", off_help="mix images only")

    parser = argparse.ArgumentParser(prog="sightline train")
    added = add_cli_options({"training": parser}, WithMixup)
    assert "mixup" in added and "epochs" in added
    text = parser.format_help()
    assert "--mixup MIXUP" in text and "mix pairs of images" in text
    assert "--mix-labels" in text and "--no-mix-labels" in text and "mix images only" in text
    args = parser.parse_args(["--mixup", "0.2", "--no-mix-labels"])
    assert args.mixup == 0.2 and args.mix_labels is False and args.epochs is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--mixup", "2"])  # the flag checks the declared bounds
    assert WithMixup(mixup=0.5).mixup == 0.5
    with pytest.raises(ConfigError, match=r"mixup must be from 0 to 1, not 1.5"):
        WithMixup(mixup=1.5)  # and so does the config, from every face
    with pytest.raises(ConfigError, match="mix_labels must be true or false"):
        WithMixup(mix_labels="yes")


def test_one_declaration_makes_a_data_flag_its_request_field_and_its_check():
    """Issue 52: a data option is declared once too (plan/inputs.py): one more field of
    ``DataOptions`` is a flag in the "data" group of --help, a field of the web job request in
    /openapi.json with its help and bounds, and a check with its message on every face."""
    import dataclasses

    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sightline.cli.options import data_kwargs
    from sightline.errors import DataError
    from sightline.plan.inputs import DataOptions, data_option
    from sightline.plan.option_faces import add_cli_options
    from sightline.serve.jobs.request import job_request_model, train_request

    @dataclasses.dataclass
    class WithBlur(DataOptions):
        blur: float | None = data_option(None, "augmentation: blur share of images", low=0, high=1)

    parser = argparse.ArgumentParser(prog="sightline train")
    data = parser.add_argument_group("data")
    assert add_cli_options({"data": data}, WithBlur)[-1] == "blur"
    text = parser.format_help()
    assert "data:\n" in text and "--blur BLUR" in text and "blur share of images" in text
    assert "--val-split VAL_SPLIT" in text and "--mirror MIRROR" in text  # the declared ones
    args = parser.parse_args(["--blur", "0.5", "--data-seed", "3"])
    assert args.blur == 0.5 and args.classes is None
    assert data_kwargs(args) == {"seed": 3}  # the real DataOptions: blur is this test's own
    assert WithBlur(**{"blur": 0.5}).loader_options() == {"blur": 0.5}
    with pytest.raises(SystemExit):
        parser.parse_args(["--blur", "2"])  # the flag checks the declared bounds

    # The job request: a field, in the schema with its help and bounds, and checked (400).
    request = job_request_model(data=WithBlur)
    app = fastapi.FastAPI()

    def create(body):  # the model is this test's own: no annotation to resolve by name
        return train_request(body, []).data_options

    create.__annotations__ = {"body": request, "return": dict}
    app.post("/api/jobs")(create)
    c = TestClient(app)
    spec = c.get("/openapi.json").json()["components"]["schemas"]["JobRequest"]
    blur = spec["properties"]["blur"]
    assert blur["description"] == "augmentation: blur share of images"
    assert blur["minimum"] == 0 and blur["maximum"] == 1 and blur["type"] == ["number", "null"]
    assert "mirror" not in spec["properties"]  # declared api=False: a path on the server
    assert c.post("/api/jobs", json={"dataset": "mnist", "blur": 0.25}).json() == {"blur": 0.25}
    assert c.post("/api/jobs", json={"blur": True}).status_code == 422  # pydantic: no number
    with pytest.raises(DataError, match=r"blur must be from 0 to 1, not 1.5"):
        train_request(request(dataset="mnist", blur=1.5), [])
    with pytest.raises(DataError, match=r"blur must be a finite number"):
        WithBlur(blur="much")  # type: ignore[arg-type]
