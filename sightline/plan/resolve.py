"""One request → one plan, every rule applied once, in one visible order.

A face (``fit``, ``run_training``, ``sightline train``, ``POST /api/jobs``) turns what it was
asked into a ``TrainRequest``. Two steps resolve it, because some rules need the loaded data:

    resolve(request)            before the data: the recipe (named, its machine variant, or the
                                GPU's), the dataset, pretrained weights (their input size and
                                channels; a head on frozen features unless fine-tuned), the model
    complete(plan, data, model) after it: the folder recipe, the training config (DEFAULTS ←
                                the model's ← frozen-head / fine-tune ← recipe ← folder recipe ←
                                the caller's), the data's framing augmentation, the device's
                                defaults

The caller's own options always win; every other layer fills only what is still unset. The
plan's ``notes`` say what was chosen and why (``topic``: "recipe" or "device"). What only a
measurement on this machine can tell (bf16 or float32, how many epochs fit a time budget) and
the world size under torchrun are settled by the trainer (``train/machine.py``,
``train/distributed.py``), which adds its own notes.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sightline.errors import ConfigError, DataError
from sightline.plan import capacity
from sightline.plan.config import TrainConfig, check_option_names, resolve_config

DEFAULT_DATASET = "fashion-mnist"


@dataclass
class TrainRequest:
    """What a face was asked, before any rule: ``None`` (or absent) means "not given"."""

    dataset: Any = None  # a dataset name, an image folder, or a Dataset
    model: str | None = None
    recipe: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # load_dataset options
    model_options: dict[str, Any] = field(default_factory=dict)  # incl. pretrained=True
    train_options: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields


@dataclass
class Plan:
    """How a run trains: its data, its model and, once ``complete``, its full ``config``."""

    dataset: Any
    data_options: dict[str, Any]
    model: str
    model_options: dict[str, Any]
    train_options: dict[str, Any]  # the caller's and the recipe's, before the data's rules
    given: set[str]  # the training options the caller set (no rule changes those)
    recipe: str | None = None
    config: TrainConfig | None = None
    notes: list[dict[str, str]] = field(default_factory=list)
    # The caller's epochs train fewer steps than the folder recipe would: the numbers
    # (``folder_recipe.short_of_recipe``), for a face to warn with; its note says it in words.
    short_of_recipe: dict[str, int] | None = None

    @property
    def pretrained(self) -> bool:
        return bool(self.model_options.get("pretrained"))

    @property
    def seed(self) -> int | None:
        return self.train_options.get("seed")

    def note(self, topic: str, text: str) -> None:
        self.notes.append({"topic": topic, "text": text})


# ----------------------------------------------------------------------------- before the data
def resolve(request: TrainRequest, *, model_config: dict[str, Any] | None = None) -> Plan:
    """The plan's data and model for ``request``; ConfigError / ModelError / DataError for a
    request that cannot be right (checked before any data is loaded). ``model_config``: the
    ``sightline_config`` of a model the caller built itself (its name and options then stand)."""
    train = dict(request.train_options)
    check_option_names(train)
    model, model_options = request.model, dict(request.model_options)
    if model_config is not None:
        if model_options:
            raise ConfigError("model_options only apply when the model is given by name")
        model, model_options = model_config["name"], dict(model_config["options"])
    data_options = {k: v for k, v in request.data_options.items() if v is not None}
    dataset = request.dataset
    # The options the caller set; a caller that merged a recipe's options into its own says which
    # were its own in extra["given"] (as ``apply_recipe`` does).
    extra = train.get("extra") or {}
    given = set(extra.get("given", [k for k, v in train.items() if v is not None and k != "extra"]))
    plan = Plan(dataset, data_options, model or "", model_options, train, given, request.recipe)

    if plan.recipe is None and model_config is None:
        from sightline.plan.recipes import gpu_default_recipe

        plan.recipe = gpu_default_recipe(
            dataset, model, model_options, data_options, train.get("device")
        )
        if plan.recipe is not None:
            plan.note(
                "recipe",
                f"GPU: training {dataset} with recipe {plan.recipe}, its best here "
                f"(--model NAME trains a model with its own defaults instead)",
            )
    if plan.recipe is not None:
        model = _apply_named_recipe(plan, model)
    plan.dataset = DEFAULT_DATASET if plan.dataset is None else plan.dataset
    model = _apply_pretrained(plan, model, built=model_config is not None)
    from sightline.models import default_model

    plan.model = model or default_model(plan.dataset)
    if model_config is None:
        from sightline.models.registry import check_model_options

        check_model_options(plan.model, plan.model_options)
    return plan


def _apply_named_recipe(plan: Plan, model: str | None) -> str:
    """The recipe's model and options under the caller's own; says what it chose."""
    from sightline.plan.recipes import VARIANTS, apply_recipe, for_machine, get_recipe

    if plan.model_options.get("pretrained"):
        raise ConfigError(
            f"recipe {plan.recipe!r} trains its model from scratch: drop pretrained or the recipe"
        )
    train = plan.train_options
    r = for_machine(get_recipe(plan.recipe), model, train.get("device"), train.get("amp"))
    model, plan.model_options, plan.data_options, plan.train_options = apply_recipe(
        r, model, plan.model_options, plan.data_options, train
    )
    if plan.dataset is None:
        plan.dataset = r.dataset
    elif isinstance(plan.dataset, (str, os.PathLike)) and str(plan.dataset) != r.dataset:
        plan.note(
            "recipe",
            f"recipe {r.name} is tuned for {r.dataset}, not {plan.dataset}: "
            "its settings may not suit these images",
        )
    where = f" (its variant {VARIANTS[r.variant][1]})" if r.variant else ""
    options = ", ".join(f"{k} {v}" for k, v in {**r.data_options, **r.train_options}.items())
    plan.note("recipe", f"recipe {r.name}{where}: {r.model} {plan.model_options or ''}, {options}")
    return model


def _apply_pretrained(plan: Plan, model: str | None, *, built: bool) -> str | None:
    """Pretrained weights: the model that has them, its input size and channels (unless the
    caller chose others), and a head trained on frozen features unless ``freeze`` is False
    (fine-tuning). ``freeze`` without pretrained weights is an error for a model built by name
    (a model the caller built may have a backbone of its own to keep fixed)."""
    from sightline.plan.transfer import (
        default_pretrained_model,
        pretrained_input,
        transfer_data_options,
    )

    freeze = plan.train_options.get("freeze")
    if not plan.pretrained:
        if freeze is not None and not built:
            raise ConfigError(
                "freeze and fine-tune (--freeze, --fine-tune) go with pretrained weights "
                "(--pretrained): they choose how those weights are trained"
            )
        return model
    if model is None and not built:
        model = _pick_backbone(plan)
    model = model or default_pretrained_model()
    pretrained_input(model)  # ConfigError when the model has no pretrained weights
    if plan.model_options.get("weights"):  # a file that is not there: said before the data loads
        from sightline.models.pretrained import find_local_weights
        from sightline.models.timm_models import architecture

        find_local_weights(architecture(model), str(plan.model_options["weights"]))
    from sightline.data import Dataset

    if not isinstance(
        plan.dataset, Dataset
    ):  # prepared at the size and channels the weights expect
        plan.data_options = transfer_data_options(model, plan.data_options)
    if freeze is None:
        plan.train_options["freeze"] = True
        plan.given.add("freeze")
    return model


def _pick_backbone(plan: Plan) -> str | None:
    """The folder recipe's backbone for a folder or labels file (its images counted from the
    listing, nothing decoded), said in a note; None for anything else."""
    from sightline.data.folders import list_images
    from sightline.data.registry import find_dataset_spec
    from sightline.plan.transfer import pick_backbone

    source = plan.dataset
    if not isinstance(source, (str, os.PathLike)) or (
        isinstance(source, str) and find_dataset_spec(source) is not None
    ):
        return None
    try:
        listing = list_images(source)
    except (DataError, OSError):
        return None  # loading says what is wrong with it
    images = sum(len(f) for scan in listing.scans.values() for f in scan.values())
    device = str(plan.train_options.get("device") or "auto")
    on_gpu = device.startswith("cuda") or (device == "auto" and _cuda_available())
    name, why = pick_backbone(images, plan.train_options.get("time_budget"), on_gpu)
    plan.note("model", why)
    return name


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# ----------------------------------------------------------------------------- after the data
def complete(plan: Plan, data: Any, model: Any) -> Plan:
    """``plan`` with its training ``config``: the folder recipe for a user's folder, the
    config's layers, the data's framing augmentation and the device's defaults for ``model``."""
    from sightline.devices import resolve_device
    from sightline.models import get_model_entry
    from sightline.models.hardware import cpu_bf16_is_fast
    from sightline.plan.device import adapt_to_device

    train = dict(plan.train_options)
    if plan.recipe is None:
        train = _with_folder_recipe(plan, data, train)
    # reframe resolved here so the run's config.json says what it trained with
    cfg = settle(_config(get_model_entry(plan.model).train_defaults, plan.pretrained, train), data)
    skew = imbalance(data)
    if skew is not None:
        c_large, large, c_small, small = skew
        plan.note("data", (
            f"a loss for imbalanced classes: {c_large} has {large:,} training images, {c_small} "
            f"only {small:,} ({large / small:.0f}x); the loss adds each class's log share to the "
            "logits, so the model predicts as if the classes were balanced (--no-balance: the "
            "plain loss)" if cfg.balance else
            f"the plain loss, as asked, though {c_large} has {large / small:.0f}x the training "
            f"images of {c_small}: watch the balanced accuracy"))  # fmt: skip
    _, h, w = data.input_shape
    device_type = resolve_device(cfg.device).type
    fast_bf16 = device_type == "cpu" and cpu_bf16_is_fast(model)
    cfg, device_notes = adapt_to_device(
        cfg, device_type, plan.given, len(data.train), h * w, fast_bf16=fast_bf16
    )
    for line in device_notes:
        plan.note("device", line)
    plan.config = cfg
    return plan


def settle(cfg: TrainConfig, data: Any) -> TrainConfig:
    """``cfg`` with what the data decides settled: the share of reframed images (``reframe``,
    by how the data framed its items) and the loss for imbalanced classes (``balance``, by how imbalanced its
    training classes are). The trainer trains a settled config as it is."""
    from sightline.data.augment import default_reframe

    if cfg.reframe is None:
        cfg = dataclasses.replace(cfg, reframe=default_reframe(data.preprocess.fit))
    if cfg.balance is None:
        cfg = dataclasses.replace(cfg, balance=imbalance(data) is not None)
    return cfg


def imbalance(data: Any) -> tuple[str, int, str, int] | None:
    """(the largest class, its training images, the smallest, its images) when the largest has
    ``UNBALANCED`` times the smallest's (the check's and the loader's rule), else None."""
    from sightline.data.folder_choices import UNBALANCED

    counts = Counter(data.train.labels.tolist())
    held = [(counts[i], c) for i, c in enumerate(data.classes) if counts[i] > 0]
    if len(held) < 2:
        return None
    (small, c_small), (large, c_large) = min(held), max(held)
    return (c_large, large, c_small, small) if large >= UNBALANCED * small else None


def run_preprocess(cfg: TrainConfig, data: Any) -> Any:
    """The ``Preprocess`` a run trained with ``cfg`` on ``data`` saves with its model: the data's,
    evaluated on mirrored images where it trains on them (flip TTA) and on shifted ones with
    ``shift_tta``. ConfigError for a shift too large for the images."""
    try:
        return dataclasses.replace(
            data.preprocess, flip_tta=cfg.flips(data.flip), shift_tta=cfg.shift_tta
        )
    except ValueError as e:  # a shift too large for the images
        size = data.preprocess.size
        raise ConfigError(f"{e} for {size[0]}x{size[1]} images") from None


def _config(model_defaults: dict[str, Any], pretrained: bool, train: dict[str, Any]) -> TrainConfig:
    try:
        return resolve_config(model_defaults, pretrained=pretrained, **train)
    except TypeError as e:  # a value of the wrong type reaching the config's checks
        raise ConfigError(f"invalid training option: {e}") from None


def _with_folder_recipe(plan: Plan, data: Any, train: dict[str, Any]) -> dict[str, Any]:
    """``train`` completed by the folder recipe when ``data`` is a user's folder (only for
    options the caller left unset), with notes saying what was chosen and why."""
    from sightline.plan.folder_recipe import folder_recipe, is_user_folder, short_of_recipe

    if not is_user_folder(data):
        return train
    given = {k: v for k, v in train.items() if v is not None}
    chosen, notes = folder_recipe(data, plan.model, given, plan.pretrained)
    if not plan.pretrained:
        plan.short_of_recipe = short_of_recipe(data, plan.model, given)
    for line in notes:
        plan.note("recipe", line)
    if data.preprocess.channels == 3 and not plan.pretrained:
        from sightline.models.pretrained import weights_available

        if weights_available():
            # A suggestion, not the default: it changes the model, the input size (224 px) and the
            # cost of predicting (README.md: 97.5 % vs 86.6 % from scratch).
            plan.note(
                "recipe",
                "Tip: for photos, --pretrained (ImageNet features + a new head) is usually far "
                "better with few images: 97.5 % vs 86.6 % from scratch on 600 CIFAR-10 photos",
            )
    out = {**train, **chosen}
    if "extra" not in given:  # the run's config.json then says why it was trained this way
        out["extra"] = {"recipe": "folder", "chosen": chosen, "notes": [*data.notes, *notes]}
    return out


# ----------------------------------------------------------------------------- checking only
def check(request: TrainRequest) -> Plan:
    """``resolve`` and the training options' own checks, without loading any data: what a
    server runs before it queues a job, so a queued job starts with options known to be valid."""
    plan = resolve(request)
    cfg = planned_config(plan)
    if cfg.device not in (None, "auto"):
        from sightline.devices import resolve_device

        resolve_device(str(cfg.device))  # ConfigError for a device this machine lacks
    expected = capacity.expected_input(plan.dataset, plan.data_options)
    if expected is not None:
        check_fits(plan, *expected, cfg=cfg)
    return plan


def check_fits(
    plan: Plan, input_shape: tuple[int, ...], num_classes: int, cfg: TrainConfig | None = None
) -> None:
    """ConfigError when the plan's model and batch would not fit the machine's memory
    (``capacity.py``): before the model is built, whichever face asks."""
    cfg = cfg or planned_config(plan)
    capacity.check_fits(
        plan.model, plan.model_options, input_shape, num_classes, cfg.batch_size,
        cfg.device, frozen=cfg.freeze,
    )  # fmt: skip


def planned_config(plan: Plan) -> TrainConfig:
    """The training config the plan's options make before the data's rules: their checks."""
    from sightline.models import get_model_entry

    return _config(get_model_entry(plan.model).train_defaults, plan.pretrained, plan.train_options)
