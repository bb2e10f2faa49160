"""``sightline summary``: a model's layers, output shapes and parameter counts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sightline.cli.common import open_model
from sightline.cli.options import image_size, positive_int
from sightline.errors import RunError
from sightline.plan import ModelChoice, add_cli_options, cli_values


def add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="layer-by-layer summary of a model or run",
        description="Print each layer, its output shape and parameter count, and the totals.",
        epilog="Examples:\n  sightline summary mlp\n  sightline summary tutorial-cnn --dataset cifar10 --num-classes 3\n  sightline summary runs/my-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a model name, a run folder or a .safetensors model file")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        help="take input shape and classes from this built-in dataset (default fashion-mnist)",
    )
    p.add_argument(
        "--input", type=str, help="input shape CxHxW, e.g. 3x64x64 (overrides --dataset)"
    )
    p.add_argument(
        "--num-classes", type=positive_int, help="number of classes (overrides --dataset)"
    )
    add_cli_options({"model": p}, ModelChoice, only=("model_options",))  # --model-opt
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_summary)


def _parse_input_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise RunError(f"--input expects CxHxW like 1x28x28 or 3x32x32, got {text!r}") from None
    if c not in (1, 3):
        raise RunError(f"--input channels must be 1 or 3, got {c}")
    image_size(f"{h}x{w}")
    return c, h, w


def run_summary(args: argparse.Namespace) -> int:
    from sightline.models import create_model, summary

    if Path(args.model).exists():
        model, _ = open_model(args.model, None)
    else:
        from sightline.data import get_dataset_spec

        spec = get_dataset_spec(args.dataset)
        shape = _parse_input_shape(args.input) if args.input else tuple(spec.shape)
        classes = args.num_classes or len(spec.classes)
        model = create_model(
            args.model, shape, classes, **cli_values(args, ModelChoice).get("model_options", {})
        )
    s = summary(model)
    print(json.dumps(s.to_dict(), indent=2) if args.json else s)
    return 0
