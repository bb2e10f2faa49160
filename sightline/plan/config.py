"""Training configuration: every knob in one visible place.

Values resolve in three layers, later ones winning:
  1. ``DEFAULTS`` below (sensible for any model),
  2. the model's own ``train_defaults`` from the registry (what that architecture is tuned for),
  3. what the user passes to ``fit(...)`` or on the command line.
The resolved config is written to the run folder, so a run can always say how it was trained.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sightline.data.image_options import AUGMENT_POLICIES as POLICIES
from sightline.errors import ConfigError
from sightline.plan.options import check_options, defaults, option

# What any machine can be asked: beyond these an option is a typo, or a way to hold the only
# worker for years (a server checks every job against them before it queues it).
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_LR = 10.0  # the largest the recipes use is 1.5 (SGD, batch 1024)
MAX_SHIFT = 64  # pixels of translate / shift_tta
MAX_TIME_BUDGET = 30 * 24 * 3600.0  # seconds
MAX_SEED = 2**63 - 1  # torch.manual_seed's range

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "onecycle", "cosine", "linear")
TRACKERS = ("tensorboard", "mlflow")  # train/callbacks: one concern each
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")


# Every training option, declared once (plan/options.py): its type, default, valid values and
# help. The command line's flags, the checks and their messages are made from these fields;
# ``DEFAULTS`` below is their defaults. The comments say why a default is what it is.
# fmt: off
@dataclass
class TrainConfig:
    epochs: int = option(10, "passes over the training set", low=1, high=MAX_EPOCHS, short="-e")
    time_budget: float | None = option(
        None, "train as many of the epochs as fit in this many seconds here (a few steps are "
        "timed first; the recipes set one)", why="none: all the epochs; a budget is timed on "
        "a few steps of this machine (train/time_budget.py)", low=0, low_open=True,
        high=MAX_TIME_BUDGET,
        high_text=f"{MAX_TIME_BUDGET:,.0f} seconds (30 days)", metavar="SECONDS")
    batch_size: int = option(256, "images per optimizer step", low=1, high=MAX_BATCH_SIZE,
                             short="-b")
    optimizer: str = option("adamw", "sgd (with Nesterov momentum), adam or adamw",
                            choices=OPTIMIZERS)
    lr: float = option(2e-3, "peak learning rate", low=0, low_open=True, high=MAX_LR)
    momentum: float = option(0.9, "SGD momentum", low=0, high=1, high_open=True)
    nesterov: bool = option(True, "SGD: Nesterov momentum", on=None,
                            off_help="SGD: plain momentum instead of Nesterov")
    weight_decay: float = option(5e-4, "L2 weight decay", low=0, high=1)
    schedule: str = option("onecycle", "learning-rate schedule (onecycle: warm-up, then linear "
                           "decay)", choices=SCHEDULES)
    warmup: float = option(0.15, "fraction of steps for lr warm-up", low=0, high=1,
                           high_open=True)
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss, e.g. 0.1",
                                    low=0, high=1, high_open=True)
    balance: bool | None = option(
        None, "imbalanced classes: the logit-adjusted loss, which trains the model to predict as "
        "if the classes were balanced (default: on when the largest class has 5x the training "
        "images of the smallest)",
        off_help="the plain loss, however imbalanced the classes",
        why="the data decides: on imbalanced classes the plain loss learns to answer the common "
        "ones (long-tailed CIFAR-10: benchmarks/README.md)")
    # train/lookahead.py
    lookahead: bool = option(
        False, "every 5 steps restart from a moving average of the weights, averaging more "
        "towards the end (airbench's Lookahead); the run ends on the averaged weights",
        off_help="no Lookahead (where a recipe has it)")
    translate: int = option(0, "augmentation: random shift up to N pixels", low=0,
                            high=MAX_SHIFT, unit="pixels")
    shift_tta: int = option(
        0, "test-time augmentation: also average the predictions over each image shifted by "
        "+-N pixels (3x the inference cost; for models trained with --translate)", metavar="N",
        why="off: airbench's translate TTA triples the forward passes, and pays only for a "
        "model trained with shifts")
    flip: bool | None = option(None, "augmentation: random horizontal flips",
                               why="the dataset decides: a mirrored digit is another symbol",
                               off_help="augmentation: no flips (default: the dataset decides; "
                               "never for digits)")
    alternate_flip: bool = option(
        False, "with flips: mirror each image in every other epoch instead of at random "
        "(airbench's alternating flip: over two epochs every image is seen both ways)",
        off_help="a fresh random flip each epoch (where a recipe alternates)")
    reframe: float | None = option(
        None, "augmentation: share of images turned/scaled/blurred a little as a photo's framing "
        "would be (default: 0.5 for Fashion-MNIST and MNIST, whose photos are framed; 0 "
        "otherwise)", low=0, high=1, metavar="SHARE", why="the data decides: photos framed "
        "as objects or digits are never framed as exactly as the dataset's own images")
    # data/policies.py and train/mixing.py: batched on the device, driven by the run's generator.
    augment: str = option(
        "none", "augmentation policy on top of flips and shifts: trivial (TrivialAugment: one "
        "colour or geometric operation per image at a random strength) or randaugment (two, at "
        "strength 9/30)", choices=POLICIES, metavar="POLICY",
        why="none: at the folder recipe's 300 steps each policy cost 0.3-0.5 point "
        "(benchmarks/README.md, augment.py)")
    mixup: float = option(0.0, "mixup: blend image pairs and their labels, the blend drawn from "
                          "Beta(ALPHA, ALPHA) per batch (0: off; 0.2-0.8 usual)", low=0, high=10,
                          metavar="ALPHA")
    cutmix: float = option(0.0, "cutmix: paste a box of another image and mix the labels by its "
                           "area, Beta(ALPHA, ALPHA) (0: off; 1.0 usual; with --mixup each "
                           "batch takes one)", low=0, high=10, metavar="ALPHA")
    seed: int = option(0, "random seed (data split, init, shuffling; default 0)", low=0,
                       high=MAX_SEED, high_text="2^63 - 1")
    device: str = option("auto", "auto (default), cpu, cuda, cuda:N or mps")
    amp: bool | None = option(
        None, "mixed precision: bf16 (default: on for CUDA, and for convnets on a CPU with AMX)",
        why="the machine decides: bf16 is faster only where the hardware has it (timed: "
        "train/cpu_precision.py)",
        off_help="full float32 precision, also on CUDA")
    cuda_graphs: bool | None = option(
        None, "one GPU: replay each step's forward and backward as a CUDA graph", on=None,
        why="on: small steps are bound by kernel launches (train/cuda_graphs.py)",
        off_help="one GPU: launch each step's kernels one by one instead of replaying a CUDA "
        "graph")
    device_warmup: bool | None = option(
        None, "GPU: untimed warm-up steps before the first epoch's clock starts", on=None,
        why="on for CUDA: a GPU's one-off costs (kernel choice, graphs) are not training "
        "(train/warmup.py)",
        off_help="GPU: no untimed warm-up steps (first-use costs) before the first epoch's "
        "clock starts")
    monitor: str = option("val_accuracy", "metric for best checkpoint and early stopping",
                          choices=MONITORS)
    patience: int | None = option(None, "early stopping after N epochs without improvement",
                                  low=1, high=MAX_EPOCHS, unit="epochs")
    min_delta: float = option(0.0, "early stopping: smallest improvement that counts", low=0)
    checkpoint_every: int = option(0, "also checkpoint every N steps (for long epochs)", low=0,
                                   unit="steps")
    track: str | None = option(None, "log the run to an experiment tracker as it trains: "
                               "tensorboard (event files in the run's tensorboard/ folder) or "
                               "mlflow (a tracking server or MLflow's local store)",
                               choices=TRACKERS, metavar="TRACKER")
    track_uri: str | None = option(
        None, "--track mlflow: the tracking server or store (default $MLFLOW_TRACKING_URI, else "
        "MLflow's own sqlite:///mlflow.db here); --track tensorboard: the events' folder "
        "(default the run's tensorboard/)", api=False, metavar="URI",
        why="a server's own trackers are its settings (MLFLOW_TRACKING_URI), never a client's "
        "address or path")
    max_steps: int | None = option(None, "stop after N optimizer steps", low=1,
                                   why="none: for tests and quick looks; the lr schedule still "
                                   "follows the planned epochs")
    # Transfer learning, on features computed once (train/frozen.py).
    freeze: bool = option(
        False, "keep the pretrained backbone fixed and train a head on its features, computed "
        "once (the default with --pretrained: seconds on a CPU)", group="model", off="--fine-tune",
        off_help="with --pretrained: train the whole network, not only a head on frozen features")
    head_epochs: int = option(0, "--fine-tune: first epochs with only the new head learning "
                              "(default 1)")
    backbone_lr: float = option(1.0, "--fine-tune: the pretrained layers' lr as a fraction of "
                                "--lr (default 0.1)", low=0, low_open=True, high=1)
    sync_bn: bool | None = option(
        None, "with several processes: BatchNorm statistics over all of them (default: on when a "
        "process gets fewer than 32 images per step)", group="processes",
        why="BatchNorm statistics of under 32 images are noise",
        off_help="with several processes: per-process BatchNorm")
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (dataset options, ...)
    # fmt: on

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"invalid training option: {msg}")

        check_options(self, bad)  # each option's type, choices and bounds (plan/options.py)
        # What one option cannot say alone:
        if self.shift_tta and self.freeze or not 0 <= self.shift_tta <= MAX_SHIFT:
            raise bad(
                f"shift_tta must be from 0 to {MAX_SHIFT} pixels, and 0 for a head trained on frozen "
                f"features, not {self.shift_tta}"
            )
        if self.freeze and (self.augment != "none" or self.cutmix):
            raise bad(
                "augment and cutmix change the images, and a head on frozen features sees each "
                "image's features computed once: use them with --fine-tune or from scratch"
            )
        if self.head_epochs < 0 or (self.head_epochs and self.head_epochs >= self.epochs):
            raise bad(
                f"head_epochs must be from 0 to epochs - 1 ({self.epochs - 1}), not {self.head_epochs}"
            )


    @property
    def monitor_mode(self) -> str:
        """'max' for accuracies, 'min' for losses."""
        return "max" if self.monitor.endswith("accuracy") else "min"

    def flips(self, dataset_default: bool) -> bool:
        """Whether the run mirrors its images: ``flip``, else the dataset's default. A run that
        does is also evaluated on them (flip TTA)."""
        return bool(dataset_default if self.flip is None else self.flip)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        values.setdefault("reframe", 0.0)  # runs from before reframing were trained without it
        if d.get("track_dir") and "track_uri" not in d:  # its name in sightline 0.1's first days
            values["track_uri"] = d["track_dir"]
        return cls(**values)


DEFAULTS: dict[str, Any] = defaults(TrainConfig)  # each option's default, by name


# Training only a head on frozen features: a linear model on 1,280 numbers per image. Epochs
# cost milliseconds, so many; AdamW at 1e-3 with a little weight decay, no label smoothing
# (measured on 600 CIFAR-10 photos: see benchmarks/transfer.py).
FROZEN_HEAD_DEFAULTS: dict[str, Any] = dict(
    epochs=40,
    batch_size=32,
    optimizer="adamw",
    lr=1e-3,
    weight_decay=1e-2,
    schedule="cosine",
    warmup=0.05,
    label_smoothing=0.0,
    translate=0,
)


# Fine-tuning pretrained weights: the new head learns alone for an epoch, then everything, the
# backbone at a tenth of the lr (its features are already good; large steps would erase them).
FINE_TUNE_DEFAULTS: dict[str, Any] = dict(epochs=4, head_epochs=1, backbone_lr=0.1)


def check_option_names(options: dict[str, Any]) -> None:
    """ConfigError naming the keys of ``options`` that are no training option."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigError(
            f"unknown training option(s): {', '.join(unknown)}; valid: {', '.join(sorted(names - {'extra'}))}"
        )


def resolve_config(
    model_defaults: dict[str, Any] | None = None, pretrained: bool = False, **user: Any
) -> TrainConfig:
    """DEFAULTS ← model's train_defaults (← FROZEN_HEAD_DEFAULTS with freeze=True, or
    FINE_TUNE_DEFAULTS for ``pretrained`` weights trained whole) ← user options (None means
    "not given")."""
    check_option_names(user)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = dict(DEFAULTS)
    values.update({k: v for k, v in (model_defaults or {}).items() if k in names})
    if user.get("freeze"):
        values.update(FROZEN_HEAD_DEFAULTS)
    elif pretrained:
        values.update(FINE_TUNE_DEFAULTS)
    values.update({k: v for k, v in user.items() if v is not None})
    return TrainConfig(**values)


# ----------------------------------------------------------------------------- the step plan
def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over ``n`` images."""
    steps = math.ceil(n / batch_size)
    # A trailing batch of one sample can't train BatchNorm: fold it into the one before.
    return steps - 1 if n % batch_size == 1 and steps > 1 else steps


@dataclass(frozen=True)
class StepPlan:
    """How many steps a run takes: the one place the training loop, the schedule plot and the
    report get these numbers from.

    ``total_steps`` is what the learning-rate schedule spans (all planned epochs); ``stop_step``
    is where training ends: ``max_steps`` cuts the run short without squeezing the schedule, so
    a short look at a recipe trains at the learning rates the full run would use.
    """

    train_size: int
    steps_per_epoch: int
    total_steps: int
    stop_step: int


def plan_steps(train_size: int, cfg: TrainConfig) -> StepPlan:
    if train_size < 1:
        raise ConfigError("the training split is empty: nothing to train on")
    per_epoch = steps_per_epoch(train_size, cfg.batch_size)
    total = cfg.epochs * per_epoch
    stop = total if cfg.max_steps is None else min(total, cfg.max_steps)
    return StepPlan(train_size, per_epoch, total, stop)
