"""Argument types and option groups shared by several subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """'28', '28x28' or '32,48' (height x width)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 64x48, got {text!r}") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < 8 or max(nums) > 1024:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH between 8 and 1024, got {text!r}")
    return nums[0], nums[1]


def val_split(text: str) -> float | str:
    if text.lower() == "test":
        return "test"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction like 0.1, 0 for none, or 'test', got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"validation fraction must be in [0, 1), got {value}")
    return value


def kv_pair(text: str) -> tuple[str, Any]:
    """KEY=VALUE with VALUE parsed as JSON when it can be (numbers, lists, true/false)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().replace("-", "_"), value


def class_list(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected class names or indices separated by commas")
    return names


def add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--classes", type=class_list, help="keep only these classes, e.g. airplane,automobile,bird or 0,1,2")
    g.add_argument("--val-split", type=val_split, default=None, help="validation fraction carved from train (default 0.1), 0 for none, or 'test'")
    g.add_argument("--data-seed", type=int, default=None, help="seed of the validation split (default 0)")
    g.add_argument("--channels", type=int, choices=(1, 3), help="image folders: 1 = grayscale, 3 = RGB (default: detect)")
    g.add_argument("--size", type=image_size, help="image folders: model input size, e.g. 64 or 64x48")
    g.add_argument("--resize", choices=("squash", "crop", "pad"), help="image folders: how other sizes are fitted (default pad)")
    g.add_argument("--cache-dir", help="dataset download cache (default: ~/.cache/sightline or $SIGHTLINE_CACHE_DIR)")
    g.add_argument("--mirror", help="local folder with the dataset files (default: $SIGHTLINE_DATA_MIRROR)")


def data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw = {
        "classes": args.classes,
        "val_split": args.val_split,
        "seed": args.data_seed,
        "channels": args.channels,
        "size": args.size,
        "resize": args.resize,
        "cache_dir": args.cache_dir,
        "mirror": args.mirror,
    }
    if getattr(args, "flip", None) is not None:
        kw["flip"] = args.flip
    return {k: v for k, v in kw.items() if v is not None}
