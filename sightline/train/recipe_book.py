"""Named training recipes: a model, its options, the data split and the training options that
together reach a measured accuracy in a measured time, selectable by name.

    sightline train --recipe fashion-mnist-fast
    sightline.run_training(recipe="fashion-mnist-fast")
    sightline recipes            # the list, with what each one measured

A recipe only fills in what the caller left unset: the user's options > the recipe > the
model's train_defaults > DEFAULTS. The run's config.json records the recipe's name, so a run can
always say where its settings came from. Every figure quoted here is measured from process start
to the printed test accuracy by ``benchmarks/train.py`` (median over seeds; see its README) on
the machine named there.

Listing recipes must not import PyTorch: this module holds plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sightline.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    dataset: str  # the dataset it is tuned for (used when the caller names none)
    description: str
    model: str
    model_options: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)  # load_dataset options (classes, val_split)
    train_options: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    measured: str = ""  # what benchmarks/train.py measured, with the machine

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "description": self.description, "model": self.model,
                "model_options": dict(self.model_options), "data_options": dict(self.data_options),
                "train_options": dict(self.train_options), "measured": self.measured}  # fmt: skip


# ----------------------------------------------------------------------------- the recipes
# What benchmarks/train.py measured, process start to printed test accuracy (see benchmarks/README.md).
MEASURED = {
    "fashion-mnist-fast": "93.0 % (92.96-93.04, 3 seeds) in 104-125 s on a slow 2-core CPU; with label smoothing 0.1 "
                          "(before): 92.9 % (92.8-93.1) in 101-112 s, 81 s on a quiet machine",
    "fashion-mnist-long": "94.2 % in 294 s (1 seed, 2 CPU cores); 7 epochs: 94.3 % in 371 s. With fastcnn (9 epochs, "
                          "before airnet): 93.8 % in 359 s",
    "fashion-mnist-mlp": "89.2 % (88.9-89.2, 3 seeds) in 10-11 s on 2 CPU cores; the Keras tutorial in the same "
                         "benchmark: 87.6 % (87.2-87.8, its best epoch) in 28-36 s",
    "cifar3-fast": "95.9 % (95.8-96.0, 2 seeds) in 137-142 s on 2 CPU cores",
    "cifar3-tutorial-cnn": "90.4 % (90.1-90.6, 2 seeds) in 148-153 s on 2 CPU cores; the Keras tutorial in the "
                           "same benchmark: 86.8 % (86.0-87.5, its best epoch) in 334-352 s",
}

# fmt: off
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        "fashion-mnist-fast", "fashion-mnist",
        "Fashion-MNIST, about 93 % in 1.5 minutes on 2 CPU cores: a narrow fastcnn (width 16: a quarter of the "
        "default's FLOPs, 3.5x its images/s on a CPU) for 7 epochs instead of a wide one for 3, on all "
        "60,000 training images (no validation split), label smoothing 0.2, flips and flip TTA, no photo re-framing",
        model="fastcnn", model_options={"width": 16},
        data_options={"val_split": 0},
        train_options=dict(epochs=7, batch_size=128, lr=0.3, label_smoothing=0.2, reframe=0.0),
        measured=MEASURED["fashion-mnist-fast"],
    ),
    Recipe(
        "fashion-mnist-long", "fashion-mnist",
        "Fashion-MNIST, the best in about 5-6 minutes on 2 CPU cores: airnet (airbench-style: a patch-whitening "
        "stem computed from the data, GELU conv groups; width 32) for 6 epochs on all 60,000 training "
        "images, label smoothing 0.2, flips and flip TTA, no photo re-framing",
        model="airnet",
        data_options={"val_split": 0},
        train_options=dict(epochs=6, batch_size=128, lr=0.3, label_smoothing=0.2, reframe=0.0),
        measured=MEASURED["fashion-mnist-long"],
    ),
    Recipe(
        "fashion-mnist-mlp", "fashion-mnist",
        "The tutorials' own network (mlp: Flatten, Dense 128, Dense 10) on Fashion-MNIST, trained the "
        "sightline way: AdamW with warm-up and one-cycle decay at batch 128 on all 60,000 training images",
        model="mlp",
        data_options={"val_split": 0},
        train_options=dict(epochs=10, batch_size=128, optimizer="adamw", lr=2e-3, weight_decay=1e-2,
                           schedule="onecycle", warmup=0.1),
        measured=MEASURED["fashion-mnist-mlp"],
    ),
    Recipe(
        "cifar3-fast", "cifar10",
        "CIFAR-10 airplane/automobile/bird (the CNN tutorial's task), >= 95 % in under 4 minutes on 2 CPU "
        "cores: fastcnn with flips and 2-pixel shifts for 12 epochs on all 15,000 training images",
        model="fastcnn",
        data_options={"classes": "airplane,automobile,bird", "val_split": 0},
        train_options=dict(epochs=12, batch_size=128, lr=0.3, translate=2),
        measured=MEASURED["cifar3-fast"],
    ),
    Recipe(
        "cifar3-tutorial-cnn", "cifar10",
        "The CNN tutorial's own network (tutorial-cnn, dropout and all) on its task, trained the sightline "
        "way: AdamW at a higher peak lr with warm-up and one-cycle decay, flips, 6 epochs instead of Keras' 10 "
        "at a constant lr",
        model="tutorial-cnn",
        data_options={"classes": "airplane,automobile,bird", "val_split": 0},
        train_options=dict(epochs=6, batch_size=128, optimizer="adamw", lr=4e-3, weight_decay=5e-2,
                           schedule="onecycle", warmup=0.1, flip=True),
        measured=MEASURED["cifar3-tutorial-cnn"],
    ),
)}
# fmt: on


def list_recipes() -> list[Recipe]:
    return list(RECIPES.values())


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)} "
                          f"(see `sightline recipes`)") from None  # fmt: skip


def apply_recipe(recipe: Recipe, model: str | None, model_options: dict[str, Any], data_options: dict[str, Any],
                 train_options: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:  # fmt: skip
    """(model, model_options, data_options, train_options) with the recipe filling in what the
    caller left unset (None or absent). A recipe is tuned for its model: asking for another one
    with it is an error, not a silent mix of two sets of settings."""
    if model is not None and model != recipe.model:
        raise ConfigError(f"recipe {recipe.name!r} trains {recipe.model}, not {model}: drop --model, or the recipe "
                          f"(another model starts from its own tuned defaults)")  # fmt: skip
    model_options = {**recipe.model_options, **model_options}
    data_options = {**recipe.data_options, **{k: v for k, v in data_options.items() if v is not None}}
    given = {k: v for k, v in train_options.items() if v is not None}
    train = {**train_options, **recipe.train_options, **given}
    # What the caller set (the rest is the recipe's, which device defaults may still adapt).
    train["extra"] = {"recipe": recipe.name, "given": sorted(set(given) - {"extra"}), **(given.get("extra") or {})}
    return recipe.model, model_options, data_options, train
