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

from dataclasses import dataclass, field, replace
from typing import Any

from sightline.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    dataset: str  # the dataset it is tuned for (used when the caller names none)
    description: str
    model: str
    model_options: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(
        default_factory=dict
    )  # load_dataset options (classes, val_split)
    train_options: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    measured: str = ""  # what benchmarks/train.py measured, with the machine
    # What replaces the fields above on a CPU with AMX, where convnets train in bf16 2-3x faster
    # than in float32 and a deeper network becomes the quickest way to an accuracy: model,
    # model_options, train_options, measured (see ``for_machine``).
    on_amx: dict[str, Any] = field(default_factory=dict)
    # ... and on a CPU without AVX-512 (AVX2 x86, or another architecture), training in float32:
    # convolutions run at about half an AVX-512 core's rate there. A recipe's minutes are kept by
    # its ``time_budget`` on any CPU (the epochs that fit, timed there); this variant is for a
    # schedule chosen for another reason (cifar3-tutorial-cnn: a speed ratio against Keras).
    on_avx2: dict[str, Any] = field(default_factory=dict)
    variant: str = ""  # which of them this is: a key of VARIANTS, or "" for the recipe as written

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "dataset": self.dataset,
            "description": self.description,
            "model": self.model,
            "model_options": dict(self.model_options),
            "data_options": dict(self.data_options),
            "train_options": dict(self.train_options),
            "measured": self.measured,
        }
        for key, _ in VARIANTS.values():
            if getattr(self, key):
                out[key] = dict(getattr(self, key))
        if self.variant:
            out["variant"] = self.variant
        return out

    def variants(self) -> list[Recipe]:
        """This recipe as it trains on each kind of CPU it has a variant for."""
        return [self.with_variant(v) for v in VARIANTS if getattr(self, VARIANTS[v][0])]

    def with_variant(self, which: str) -> Recipe:
        """This recipe as it trains on that kind of CPU (``VARIANTS``; itself when it has no such
        variant)."""
        changes = getattr(self, VARIANTS[which][0])
        none = {key: {} for key, _ in VARIANTS.values()}  # a variant has no variants of its own
        return replace(self, **{**none, **changes}, variant=which) if changes else self


# variant: (the Recipe field holding it, what it is for, in words)
VARIANTS = {
    "cpu-amx": ("on_amx", "for a CPU with AMX: bf16"),
    "cpu-avx2": ("on_avx2", "for a CPU without AVX-512: float32, a shorter schedule"),
}


# ----------------------------------------------------------------------------- the recipes
# Each recipe's headline figure (``sightline recipes`` prints it as "measured"): the best current
# result with its machine, timed by benchmarks/train.py from process start to the printed test
# accuracy. Every run behind it: benchmarks/README.md, "Recipes: every measurement".
MEASURED = {
    "fashion-mnist-fast": "93.5 % (93.49-93.61, 3 seeds) in 74-75 s from process start, float32 "
    "on 2 CPU cores with AVX-512; every run: benchmarks/README.md",
    "fashion-mnist-fast/cpu-amx": "93.9 % (93.72-93.89, 3 seeds) in 51-52 s on 2 CPU cores with "
    "AMX (bf16); every run: benchmarks/README.md",
    "fashion-mnist-long": "94.68 % (94.63-94.70, 3 seeds) in 225-232 s from process start, "
    "bf16 on 2 cores of an AMD EPYC with AVX-512 BF16; 94.72 % in 243-259 s in float32 with "
    "AVX-512; every run: benchmarks/README.md",
    "fashion-mnist-long/cpu-amx": "94.75 % (1 seed) in 162 s on 2 CPU cores with AMX (bf16, 15 "
    "epochs without Lookahead); every run: benchmarks/README.md",
    "fashion-mnist-mlp": "89.1 % (89.09-89.12, 2 seeds) in 7 s on 2 CPU cores with AMX (the MLP "
    "stays float32), the Keras tutorial 87.7 % in 33-35 s; every run: benchmarks/README.md",
    "cifar3-fast": "96.33 / 95.90 % (seeds 0, 1) in 76 s from process start, float32 on 2 CPU "
    "cores with AVX-512 (no AMX); every run: benchmarks/README.md",
    "cifar3-tutorial-cnn": "90.65 % (90.60-90.70, 2 seeds) in 75 s, float32 on 2 CPU cores with "
    "AVX-512, the Keras tutorial 88.2 % in 156-178 s; every run: benchmarks/README.md",
    "cifar3-tutorial-cnn/cpu-avx2": "90.82 % (90.73-90.90, 2 seeds) in 88 s, 2.06x the Keras "
    "tutorial (87.22 % in 170-193 s), both float32 held to AVX2; every run: benchmarks/README.md",
    "cifar10-airbench": "94.06 % mean (93.93-94.16, 10 seeds) in 8.6-11.3 s from process start "
    "(2.7-3.4 s of training) on an NVIDIA H200 (bf16, CUDA graphs); every run: "
    "benchmarks/README.md",
}

# Seconds of training a recipe's epochs must fit on this machine (``time_budget``: a few steps are
# timed before the run; as many of its epochs as fit, at most the recipe's). Issue 12's limits
# from process start to the printed test accuracy, less ~10 s of start-up, data, the timing
# steps and the test evaluation, and a margin for a machine whose speed drifts while it trains.
FAST_BUDGET = 80  # fashion-mnist-fast: 93 % in 90 s
LONG_BUDGET = 300  # fashion-mnist-long: 94.5 % in 6 minutes
CIFAR3_BUDGET = 210  # cifar3-fast: 95 % in 4 minutes
# Recipes train without a validation split (every image helps at these budgets), so 2 % of the
# training images are kept aside instead, never trained on, to fit the run's calibration and
# its "none of these" threshold on (``load_dataset(calibration_split=)``): without them its
# probabilities would be uncalibrated and it could never answer unknown.
HELD_OUT = {"val_split": 0, "calibration_split": 0.02}

# fmt: off
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe(
        "fashion-mnist-fast", "fashion-mnist",
        "Fashion-MNIST, about 93.5 % in 75 s on 2 CPU cores with AVX-512 (float32): a narrow fastcnn (width 16: "
        "a quarter of the default's FLOPs, 3.5x its images/s on a CPU; pooling before BatchNorm, which then runs "
        "on a quarter of the pixels) for 12 epochs with Lookahead, on 58,800 of the 60,000 training "
        "images (2 % kept aside to calibrate, no validation split), label smoothing 0.1, flips and flip TTA, no photo re-framing; as many of the 12 epochs as fit in "
        "80 s of training here (a 2-core AVX2 CPU fits 5-6: 93 % in 1.5 minutes). On a CPU with AMX, where convnets "
        "train in bf16: airnet (width 32) for 4 epochs, ~94 % in under a minute",
        model="fastcnn", model_options={"width": 16, "pool_first": True},
        data_options=dict(HELD_OUT),
        # Lookahead + label smoothing 0.1 together save an epoch; the budget picks 6-12 of them.
        train_options=dict(epochs=12, batch_size=128, lr=0.3, label_smoothing=0.1, reframe=0.0, lookahead=True,
                           time_budget=FAST_BUDGET),
        measured=MEASURED["fashion-mnist-fast"],
        on_amx=dict(model="airnet", model_options={},
                    train_options=dict(epochs=4, batch_size=128, lr=0.3, label_smoothing=0.2, reframe=0.0,
                                       time_budget=FAST_BUDGET),
                    measured=MEASURED["fashion-mnist-fast/cpu-amx"]),
    ),
    Recipe(
        "fashion-mnist-long", "fashion-mnist",
        "Fashion-MNIST, about 94.7 % in 4-4.5 minutes on 2 CPU cores with AVX-512 (float32): airnet "
        "(airbench-style: a patch-whitening stem computed from the data, GELU conv groups; width 32) for 12 "
        "epochs with Lookahead (every 5 steps the network restarts from a moving average of its weights, "
        "airbench's setting) on 58,800 of the 60,000 training images, label smoothing 0.2, alternating flips (each image "
        "mirrored in every other epoch, airbench's) and flip TTA, no photo re-framing; as many of the 12 epochs as "
        "fit in 5 minutes of training here (a 2-core AVX2 CPU, whose convolutions run at half the rate, fits 7-8: "
        "~94.4 %). On a CPU with AMX, where it trains in bf16: 15 epochs, 94.75 % in under 3 minutes",
        model="airnet",
        data_options=dict(HELD_OUT),
        # Alternating flips and 12 epochs each add accuracy; the budget picks how many fit.
        train_options=dict(epochs=12, batch_size=128, lr=0.3, label_smoothing=0.2, reframe=0.0, lookahead=True,
                           alternate_flip=True, time_budget=LONG_BUDGET),
        measured=MEASURED["fashion-mnist-long"],
        on_amx=dict(model="airnet", model_options={},
                    train_options=dict(epochs=15, batch_size=128, lr=0.3, label_smoothing=0.2, reframe=0.0,
                                       time_budget=LONG_BUDGET),
                    measured=MEASURED["fashion-mnist-long/cpu-amx"]),
    ),
    Recipe(
        "fashion-mnist-mlp", "fashion-mnist",
        "The tutorials' own network (mlp: Flatten, Dense 128, Dense 10) on Fashion-MNIST, trained the "
        "sightline way: AdamW with warm-up and one-cycle decay at batch 128 on 58,800 of the 60,000 training images",
        model="mlp",
        data_options=dict(HELD_OUT),
        train_options=dict(epochs=10, batch_size=128, optimizer="adamw", lr=2e-3, weight_decay=1e-2,
                           schedule="onecycle", warmup=0.1),
        measured=MEASURED["fashion-mnist-mlp"],
    ),
    Recipe(
        "cifar3-fast", "cifar10",
        "CIFAR-10 airplane/automobile/bird (the CNN tutorial's task), >= 95 % in under 4 minutes on 2 CPU "
        "cores: fastcnn (pooling before BatchNorm) with flips and 2-pixel shifts for 12 epochs on 14,700 of the "
        "15,000 training images (as many of them as fit in 3.5 minutes of training here)",
        model="fastcnn", model_options={"pool_first": True},
        data_options={"classes": "airplane,automobile,bird", **HELD_OUT},
        train_options=dict(epochs=12, batch_size=128, lr=0.3, translate=2, time_budget=CIFAR3_BUDGET),
        measured=MEASURED["cifar3-fast"],
    ),
    Recipe(
        "cifar3-tutorial-cnn", "cifar10",
        "The CNN tutorial's own network (tutorial-cnn, dropout and all) on its task, trained the sightline "
        "way: AdamW at a higher peak lr with warm-up and one-cycle decay, flips, 6 epochs instead of Keras' 10 "
        "at a constant lr (5 on a CPU without AVX-512, where each takes longer)",
        model="tutorial-cnn",
        data_options={"classes": "airplane,automobile,bird", **HELD_OUT},
        train_options=dict(epochs=6, batch_size=128, optimizer="adamw", lr=4e-3, weight_decay=5e-2,
                           schedule="onecycle", warmup=0.1, flip=True),
        measured=MEASURED["cifar3-tutorial-cnn"],
        # Without AVX-512 Keras slows less than our convolutions: 5 epochs keep it 2x Keras' speed.
        on_avx2=dict(train_options=dict(epochs=5, batch_size=128, optimizer="adamw", lr=4e-3, weight_decay=5e-2,
                                        schedule="onecycle", warmup=0.1, flip=True),
                     measured=MEASURED["cifar3-tutorial-cnn/cpu-avx2"]),
    ),
    Recipe(
        "cifar10-airbench", "cifar10",
        "Full CIFAR-10, airbench-class: airnet with airbench94's network and parametrization (64, 256, 256 "
        "channels after a patch-whitening stem; identity-initialised convs, BatchNorms without a learned scale "
        "whose biases learn 64x faster, logits x 1/9), its optimizer (Nesterov SGD, momentum 0.85, lr 1.5 at "
        "batch 1024 with a one-cycle schedule), Lookahead, label smoothing 0.2, alternating flips and 2-pixel "
        "shifts, flip and 1-pixel shift TTA, 11 epochs on 49,000 of the 50,000 training images",
        model="airnet", model_options={"widths": [64, 256, 256], "airbench": True},
        data_options=dict(HELD_OUT),
        # airbench94's hyperparameters in mean-loss terms: its lr 11.5 per 1,024 images with a summed
        # loss is 1.5 here at batch 1024 (it scales with the batch); its weight decay is 1.33e-3 x lr.
        # Lookahead and alternating flips (airbench94's) save epochs; an 11th clears 94 %.
        train_options=dict(epochs=11, batch_size=1024, lr=1.5, momentum=0.85, weight_decay=1.33e-3, warmup=0.23,
                           translate=2, shift_tta=1, reframe=0.0, lookahead=True, alternate_flip=True),
        measured=MEASURED["cifar10-airbench"],
    ),
)}
# fmt: on


def list_recipes() -> list[Recipe]:
    return list(RECIPES.values())


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)} "
            f"(see `sightline recipes`)"
        ) from None


def for_machine(
    recipe: Recipe, model: str | None = None, device: str | None = None, amp: bool | None = None
) -> Recipe:
    """The recipe as it trains here, when training runs on a CPU (``device`` auto or cpu): its AMX
    variant on a CPU with AMX in bf16 (``amp`` not turned off), its AVX2 variant on a CPU without
    AVX-512; else the recipe as written (also on a GPU). A variant applies unless the caller asked
    for another model than its own (the recipe's then, or an error naming it)."""
    if not (recipe.on_amx or recipe.on_avx2):
        return recipe
    # imports PyTorch: only when asked
    from sightline.devices import cpu_has_amx, cpu_has_avx512, resolve_device

    if resolve_device(str(device) if device else "auto").type != "cpu":
        return recipe
    if recipe.on_amx and amp is not False and _fits(recipe, recipe.on_amx, model) and cpu_has_amx():
        return recipe.with_variant("cpu-amx")
    if recipe.on_avx2 and _fits(recipe, recipe.on_avx2, model) and not cpu_has_avx512():
        return recipe.with_variant("cpu-avx2")
    return recipe


def _fits(recipe: Recipe, variant: dict[str, Any], model: str | None) -> bool:
    return model in (None, variant.get("model", recipe.model))


# What a plain ``sightline train DATASET`` (no model, no recipe, all classes) trains on a CUDA GPU,
# where the recipe costs seconds; a CPU, where it costs minutes to hours, keeps the default model.
GPU_DEFAULT_RECIPES = {"cifar10": "cifar10-airbench"}


def gpu_default_recipe(
    dataset: Any,
    model: str | None,
    model_options: dict[str, Any],
    data_options: dict[str, Any],
    device: str | None,
) -> str | None:
    """The recipe a run that names none trains with on this device (``GPU_DEFAULT_RECIPES``), or
    None: only for a dataset named there, with no model, model options or class subset asked for,
    on a CUDA device (``device`` auto finding one, or cuda)."""
    if (
        not isinstance(dataset, str)
        or dataset not in GPU_DEFAULT_RECIPES
        or model is not None
        or model_options
        or data_options.get("classes")
    ):
        return None
    from sightline.devices import resolve_device  # imports PyTorch: only when it may apply

    return GPU_DEFAULT_RECIPES[dataset] if resolve_device(device or "auto").type == "cuda" else None


def apply_recipe(
    recipe: Recipe,
    model: str | None,
    model_options: dict[str, Any],
    data_options: dict[str, Any],
    train_options: dict[str, Any],
) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, model_options, data_options, train_options) with the recipe filling in what the
    caller left unset (None or absent). A recipe is tuned for its model: asking for another one
    with it is an error, not a silent mix of two sets of settings."""
    if model is not None and model != recipe.model:
        amx = (
            f" (on a CPU with AMX: {recipe.on_amx['model']})" if recipe.on_amx.get("model") else ""
        )
        raise ConfigError(
            f"recipe {recipe.name!r} trains {recipe.model}{amx}, not {model}: drop --model, or the recipe "
            f"(another model starts from its own tuned defaults)"
        )
    model_options = {**recipe.model_options, **model_options}
    data_options = {
        **recipe.data_options,
        **{k: v for k, v in data_options.items() if v is not None},
    }
    given = {k: v for k, v in train_options.items() if v is not None}
    train = {**train_options, **recipe.train_options, **given}
    # What the caller set (the rest is the recipe's, which device defaults may still adapt).
    variant = {"recipe_variant": recipe.variant} if recipe.variant else {}
    train["extra"] = {
        "recipe": recipe.name,
        **variant,
        "given": sorted(set(given) - {"extra"}),
        **(given.get("extra") or {}),
    }
    return recipe.model, model_options, data_options, train
