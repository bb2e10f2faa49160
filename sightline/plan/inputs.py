"""The data options and the model options, each declared once (plan/options.py), as the
training options are in plan/config.py: what a run trains on (``DataOptions``) and which model
it trains (``ModelChoice``). ``sightline train``'s data and model flags, the web job request's
fields and their OpenAPI schema, the checks and their messages, and the README's table of
options are made from these fields.

Unlike ``TrainConfig`` these are what a face was asked, not a resolved config: None means "not
given" (the dataset, the recipe or the plan decides; each help says what then).
"""

from __future__ import annotations

import argparse
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sightline.data.image_options import IMAGE_CHANNELS, MAX_SIDE, MIN_SIDE, RESIZE_MODES
from sightline.errors import ConfigError, DataError
from sightline.plan.config import MAX_SEED, TrainConfig
from sightline.plan.option_faces import markdown_table
from sightline.plan.options import check_options, check_types, declared, option


# ----------------------------------------------------------------------------- command-line text
def class_list(text: str) -> list[str]:
    """'airplane,automobile' or '0,1,2' → the names (or indices) as given."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected class names or indices separated by commas")
    return names


def fraction_or_test(text: str) -> float | str:
    """'0.1' → 0.1; 'test' → 'test' (its bounds are the option's: ``DataOptions.val_split``)."""
    if text.lower() == "test":
        return "test"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction like 0.1, 0 for none, or 'test', got {text!r}"
        ) from None


def image_size(text: str) -> tuple[int, int]:
    """'28', '28x28' or '32,48' (height x width), each side within what the loaders take."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size like 64 or 64x48, got {text!r}"
        ) from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < MIN_SIDE or max(nums) > MAX_SIDE:
        raise argparse.ArgumentTypeError(
            f"size must be HEIGHTxWIDTH between {MIN_SIDE} and {MAX_SIDE}, got {text!r}"
        )
    return nums[0], nums[1]


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


# ----------------------------------------------------------------------------- the declarations
data_option = functools.partial(option, group="data")
model_option = functools.partial(option, group="model")


# fmt: off
@dataclass
class DataOptions:
    """What a run trains on, besides the dataset itself (``load_dataset``'s options)."""

    classes: list[str | int] | None = data_option(
        None, "keep only these classes, e.g. airplane,automobile,bird or 0,1,2", parse=class_list)
    # None: 0.1 (load_dataset's default). 'test': the test split validates; nothing is carved.
    val_split: float | Literal["test"] | None = data_option(
        None, "validation fraction carved from train (default 0.1), 0 for none, or 'test'",
        low=0, high=1, high_open=True, called="validation fraction", parse=fraction_or_test)
    # Calibrating on images the model was trained on would make it overconfident.
    calibration_split: float | None = data_option(
        None, "with --val-split 0: a fraction of train kept aside, never trained on, to "
        "calibrate the run and its 'none of these' threshold on (the recipes keep 0.02)",
        low=0, high=1, high_open=True)
    # Its own seed: the split stays the same whatever --seed a run trains with.
    data_seed: int | None = data_option(None, "seed of the validation split (default 0)", low=0,
                                        high=MAX_SEED, high_text="2^63 - 1")
    # Below: how an image folder's images are prepared (a built-in dataset has its own).
    channels: int | None = data_option(
        None, "image folders: 1 = grayscale, 3 = RGB (default: detect)", choices=IMAGE_CHANNELS)
    size: int | list[int] | None = data_option(
        None, "image folders: model input size, e.g. 64 or 64x48", low=MIN_SIDE, high=MAX_SIDE,
        unit="pixels a side", parse=image_size)
    resize: str | None = data_option(
        None, "image folders: how other sizes are fitted (default pad)", choices=RESIZE_MODES)
    # Paths on the machine that trains: never from a web client (api=False).
    cache_dir: str | None = data_option(
        None, "dataset download cache (default: ~/.cache/sightline or $SIGHTLINE_CACHE_DIR)",
        api=False)
    mirror: str | None = data_option(
        None, "local folder with the dataset files (default: $SIGHTLINE_DATA_MIRROR)", api=False)
    # fmt: on

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """DataError with the loaders' own messages (channels, resize, size), then each
        option's type, choices and bounds. (The loaders import PyTorch: only when given.)"""
        check_types(self, DataError)
        if self.channels is not None or self.resize is not None:
            from sightline.data.preprocess import check_image_options

            check_image_options(self.channels, self.resize)  # the one check the loaders make
        if self.size is not None:
            from sightline.data.image_options import parse_size

            parse_size(self.size)
        check_options(self, DataError)

    def loader_options(self) -> dict[str, Any]:
        """``load_dataset``'s keyword arguments for the options given (an empty list of
        classes is none given: all of them)."""
        out = {}
        for o in declared(type(self)):
            value = getattr(self, o.name)
            if value is not None and not (isinstance(value, list) and not value):
                out[LOADER_NAMES.get(o.name, o.name)] = value
        if "size" in out:
            from sightline.data.image_options import parse_size

            out["size"] = list(parse_size(out["size"]) or ())
        if "classes" in out:
            out["classes"] = list(out["classes"])
        return out


LOADER_NAMES = {"data_seed": "seed"}  # what load_dataset calls an option, where not its name


# fmt: off
@dataclass
class ModelChoice:
    """Which model a run trains: its name, its options, and where its weights start."""

    # None: the recipe's, else the dataset's default (models.registry.default_model).
    model: str | None = model_option(
        None, "model name (see `sightline models`; default: airnet for fashion-mnist, else "
        "fastcnn)", short="-m")
    # Checked against the model's own builder (models.registry.check_model_options).
    model_options: dict[str, Any] = model_option(
        {}, "model option, e.g. --model-opt hidden=256 (repeatable)", flag="--model-opt",
        metavar="KEY=VALUE", parse=kv_pair, repeat=True)
    # The plan's rule: a head on frozen features unless fine-tuned (plan/resolve.py).
    pretrained: bool = model_option(
        False, "start from ImageNet weights (default model: for a folder, EfficientNet-Lite2 or "
        "-Lite0 by its size and --time-budget, else efficientnet-lite0; images prepared at the "
        "weights' size, RGB); trains a head on frozen features unless --fine-tune", off=None)
    # A path on the machine that trains: never from a web client (api=False).
    weights: str | None = model_option(
        None, "a file of pretrained weights (.safetensors or .pth state dict) to start from, "
        "or a folder holding one named for the model; implies --pretrained", metavar="FILE",
        api=False)
    # fmt: on

    def __post_init__(self) -> None:
        check_options(self, ConfigError)

    def plan_options(self) -> dict[str, Any]:
        """The plan's ``model_options``: the model's own, with ``pretrained=True`` where asked
        (as a switch or as a model option)."""
        out = dict(self.model_options)
        if out.pop("pretrained", False) or self.pretrained or self.weights:
            out["pretrained"] = True
        if self.weights:  # made absolute: the run's record says which file it began from
            out["weights"] = str(Path(self.weights).expanduser().resolve())
        return out


def options_table() -> str:
    """The README's table of options: the model's, the data's, then training's."""
    return "\n".join(
        f"{title}\n\n{markdown_table(cls)}"
        for title, cls in (
            ("Model options (`ModelChoice`, `sightline/plan/inputs.py`):", ModelChoice),
            ("Data options (`DataOptions`, `sightline/plan/inputs.py`):", DataOptions),
            ("Training options (`TrainConfig`, `sightline/plan/config.py`; in the job request "
             "under `options`, `epochs`, `batch_size`, `lr` and `patience` also at the top):",
             TrainConfig),
        )  # fmt: skip
    )
