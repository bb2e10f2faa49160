"""Training recipes: training options chosen from the data, for what the user did not set.

``folder_recipe`` is the recipe for a user's own image folder, trained from scratch. A model's
``train_defaults`` are tuned for the built-in datasets (fastcnn: SGD at lr 0.2, batch 64, 3
epochs of 54,000 images). On a folder of 200 images that is 9 optimizer steps, 2 of them of
warm-up: the loss explodes (34 after 3 epochs) and the model stays at chance. The recipe keeps
what transfers and changes what does not:

* **Steps, not epochs.** Epochs are scaled so that any folder gets ``MIN_STEPS`` optimizer
  steps (at most ``MAX_EPOCHS`` epochs), never fewer epochs than the model's own.
* **Small folders** (< ``SMALL_FOLDER`` training images) also get batches of ``SMALL_BATCH``
  (more steps per image seen), AdamW at ``ADAMW_LR`` instead of a model's high-lr SGD (with
  the model's warm-up and decay), and random shifts of ~6 % of the side (``translate``): with
  few images, overfitting is what limits accuracy. Larger folders keep the model's tuned
  optimizer, batch and augmentation: there the short budget is the limit, and shifts slow it.
* **Flips** are turned off when the class names are digits or letters (a mirrored 3 is not a
  3, a mirrored b is a d).
* **Which epoch is "best".** A validation split of a few dozen images cannot tell epochs apart
  (one image is several per cent); the best checkpoint then follows the training loss, which
  under a decaying learning rate is the end of training. This is the one rule a pretrained run
  (a head on frozen features, or fine-tuning) takes from this recipe: its other options are its own.

Measured with fastcnn on a busy 2-core CPU, test accuracy (old: the model's defaults alone):

    data (training images)                    old       recipe
    MNIST 0-4, 20 per class (90)              20.0 %    98.0 %
    issue 10's digit folder (180, 40x40)      20.0 %    99.0-99.2 %
    CIFAR-10 plane/car/bird, 200 each (540)   42.3 %    86.7 %
    CIFAR-10, 500 per class (4,500)           45.3 %    62.5 %
    Fashion-MNIST, 2,000 per class (18,000)   90.3 %    88.7 % with AdamW and shifts: so
                                                        > 5,000 images keep the model's

On the digit folder (batch 32, 2 px shifts, 270 steps, seed 0 unless said): AdamW lr 1e-3 /
2e-3 / 3e-3 / 5e-3 reach 98.2 / 98.4 / 97.6 / 98.0 %, SGD lr 0.05 96.8 %, lr 0.2 96.4 %; no
shifts 96.4 %, 3 px 97.6 %; AdamW 2e-3 over 3 seeds: 180 steps 97.4 %, 270 steps 98.0 %
(means), batch 16 for 300 steps 96.8 %. The best checkpoint by the val_loss of 20 images
scored 95.8 % where the last one scored 98.4 %.
See benchmarks/folder_train.py.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sightline.data.dataset import Dataset
from sightline.plan.config import DEFAULTS, steps_per_epoch

MIN_STEPS = 300  # optimizer steps a from-scratch model needs, however few the images
MAX_EPOCHS = 100  # ... but no more passes than this over a tiny folder
SMALL_FOLDER = 5_000  # training images below which the small-folder settings apply
SMALL_BATCH = 32
ADAMW_LR = 2e-3  # the middle of the measured plateau (1e-3..5e-3), and DEFAULTS' own lr
ADAMW_WEIGHT_DECAY = 5e-4
SGD_LR = 0.05  # for an SGD the user asks for on a model tuned for Adam
SMALL_VAL = 200  # validation images below which the best checkpoint follows the training loss
TRANSLATE_SHARE = 0.06  # random shifts of up to this share of the image side ...
MAX_TRANSLATE = 4  # ... in pixels, at most

# A class folder named like one character, or "digit_3", "letter-b", "char A", "class 7".
_GLYPH = re.compile(
    r"^(?:digit|letter|char|character|class|num|number)?[\s_-]*[0-9a-z]$", re.IGNORECASE
)
_NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def looks_like_glyphs(classes: list[str]) -> bool:
    """True when every class name is one digit or letter (or a number word): characters,
    which horizontal flips turn into other characters or none."""
    return all(_GLYPH.match(c.strip()) or c.strip().lower() in _NUMBER_WORDS for c in classes)


def is_user_folder(data: Dataset) -> bool:
    """True for data loaded from an image folder; False for a built-in dataset or a Dataset
    made in memory (neither was chosen by a user's folder, so the recipe does not apply)."""
    from sightline.data.registry import find_dataset_spec

    source = (data.load_options or {}).get("name_or_path")
    if not source or data.load_options.get("in_memory"):
        return False
    return find_dataset_spec(str(source)) is None


def folder_recipe(
    data: Dataset, model_name: str, given: dict[str, Any], pretrained: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Training options for a user folder, for the keys not in ``given`` (the user's own,
    non-None options), and the note lines that say what was chosen and why.

    Precedence stays: the user's options > this recipe > the model's train_defaults > DEFAULTS.
    """
    from sightline.models import get_model_entry

    if pretrained or given.get("freeze"):
        # Pretrained weights have their own defaults (a head on frozen features:
        # FROZEN_HEAD_DEFAULTS; fine-tuning: FINE_TUNE_DEFAULTS); only the choice of the best
        # epoch comes from the folder. Measured: on 540 CIFAR photos, the frozen head's epoch 1
        # of 40 picked by 60 validation images scored 96.2 %, its last 97.5 % (3,000 test images).
        monitor = _small_val_monitor(data, given)
        return ({"monitor": "loss"}, [monitor]) if monitor else ({}, [])
    model = {**DEFAULTS, **get_model_entry(model_name).train_defaults}
    n_train = len(data.train)
    small = n_train < SMALL_FOLDER
    out: dict[str, Any] = {}
    notes: list[str] = []

    def choose(key: str, value: Any) -> bool:
        if key in given or model.get(key) == value:
            return False
        out[key] = value
        return True

    # Batch and epochs: enough optimizer steps, however few the images.
    batch = _batch(n_train, model, given)
    if "batch_size" not in given:
        choose("batch_size", batch)
    per_epoch = steps_per_epoch(n_train, batch)
    if "epochs" not in given:
        epochs = recipe_epochs(per_epoch, model["epochs"])
        if choose("epochs", epochs):
            notes.append(
                f"epochs {epochs}: {n_train:,} training images make {_steps(per_epoch)} of {batch} per epoch; "
                f"a model learning from scratch needs about {MIN_STEPS} steps"
                f"{f' (capped at {MAX_EPOCHS} epochs)' if epochs == MAX_EPOCHS else ''}"
            )
    short = short_of_recipe(data, model_name, given)
    if short is not None:  # the caller's epochs stand; they should know what they cost
        notes.append(
            f"warning: {short['epochs']} epoch{'s' if short['epochs'] != 1 else ''} × "
            f"{_steps(short['steps_per_epoch'])} = {_steps(short['steps'])}; the recipe would train "
            f"{short['recipe_steps']:,} ({short['recipe_epochs']} epochs): a model learning from "
            f"scratch needs about {MIN_STEPS}"
        )

    # Optimizer and learning rate, as a pair: an lr only means something with its optimizer.
    if small and "optimizer" not in given and "lr" not in given and model["optimizer"] == "sgd":
        choose("optimizer", "adamw")
        choose("lr", ADAMW_LR)
        choose("weight_decay", ADAMW_WEIGHT_DECAY)
        notes.append(
            f"optimizer adamw, lr {ADAMW_LR:g} with warm-up: {model_name}'s SGD at lr {model['lr']:g} is tuned "
            f"for large datasets and can diverge on a folder of fewer than {SMALL_FOLDER:,} images"
        )
    elif "optimizer" in given and "lr" not in given and given["optimizer"] != model["optimizer"]:
        lr = SGD_LR if given["optimizer"] == "sgd" else ADAMW_LR
        if choose("lr", lr):
            notes.append(
                f"lr {lr:g} for --optimizer {given['optimizer']} ({model_name}'s lr {model['lr']:g} "
                f"is for {model['optimizer']})"
            )

    # Augmentation suited to the images.
    side = min(data.input_shape[1:])
    shift = max(1, min(MAX_TRANSLATE, round(side * TRANSLATE_SHARE)))
    if small and "translate" not in given and choose("translate", shift):
        notes.append(f"augmentation: random shifts of up to {shift} px")
    if "flip" not in given and looks_like_glyphs(data.classes) and data.flip:
        out["flip"] = False
        names = ", ".join(data.classes[:6]) + (" ..." if len(data.classes) > 6 else "")
        notes.append(
            f"no horizontal flips: the class names ({names}) look like digits or letters, "
            f"which a mirror image changes (--flip to flip anyway)"
        )

    # The best checkpoint, when validation is too small to choose it.
    monitor = _small_val_monitor(data, given)
    if monitor and choose("monitor", "loss"):
        notes.append(monitor)
    if out:  # in words every face shares: the CLI's flags and the web form's fields
        notes.append("options you set (epochs, lr, ...) override these")
    return out, notes


def _small_val_monitor(data: Dataset, given: dict[str, Any]) -> str | None:
    """The note for following the training loss (the end of training) to the best checkpoint,
    when the validation split is too small to tell epochs apart and ``monitor`` is not given;
    else None."""
    n_val = len(data.val) if data.val is not None else 0
    if not 0 < n_val < SMALL_VAL or "monitor" in given:
        return None
    return (
        f"best checkpoint by training loss (the end of training): {n_val} validation images are too "
        f"few to tell epochs apart (one image is {100 / n_val:.0f} %)"
    )


def recipe_epochs(per_epoch: int, model_epochs: int) -> int:
    """The recipe's epochs for ``per_epoch`` optimizer steps an epoch: ``MIN_STEPS`` steps in
    all, at most ``MAX_EPOCHS`` epochs, never fewer epochs than the model's own."""
    return min(MAX_EPOCHS, max(model_epochs, math.ceil(MIN_STEPS / per_epoch)))


def short_of_recipe(data: Dataset, model_name: str, given: dict[str, Any]) -> dict[str, int] | None:
    """When the caller's own ``epochs`` train fewer optimizer steps than the recipe would (and
    fewer than ``MIN_STEPS``), the numbers to warn with: epochs, steps_per_epoch, steps,
    recipe_epochs, recipe_steps; else None. The recipe keeps given epochs, so a 5-image folder
    asked for 5 epochs trains 5 steps where it would have trained 100: a user should see it."""
    from sightline.models import get_model_entry

    epochs = given.get("epochs")
    if given.get("freeze") or "max_steps" in given or not isinstance(epochs, int) or epochs < 1:
        return None  # no epochs of theirs, or the steps chosen outright (max_steps)
    model = {**DEFAULTS, **get_model_entry(model_name).train_defaults}
    n_train = len(data.train)
    batch = _batch(n_train, model, given)
    if not isinstance(batch, int) or batch < 1 or n_train < 1:
        return None  # a bad batch size: the config's own check says so
    per_epoch = steps_per_epoch(n_train, batch)
    wanted = recipe_epochs(per_epoch, model["epochs"])
    if epochs >= wanted or epochs * per_epoch >= MIN_STEPS:
        return None
    return {
        "epochs": epochs,
        "steps_per_epoch": per_epoch,
        "steps": epochs * per_epoch,
        "recipe_epochs": wanted,
        "recipe_steps": wanted * per_epoch,
    }


def _batch(n_train: int, model: dict[str, Any], given: dict[str, Any]) -> Any:
    """The batch size: the caller's, else ``SMALL_BATCH`` for a small folder where the model's
    is larger (more steps per image seen), else the model's."""
    if "batch_size" in given:
        return given["batch_size"]
    if n_train < SMALL_FOLDER and model["batch_size"] > SMALL_BATCH:
        return SMALL_BATCH
    return model["batch_size"]


def _steps(n: int) -> str:
    return f"{n:,} step{'s' if n != 1 else ''}"
