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

from sightline.errors import ConfigError

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
MONITORS = ("val_accuracy", "val_loss", "accuracy", "loss")

# fmt: off
DEFAULTS: dict[str, Any] = dict(
    epochs=10,             # passes over the training set
    time_budget=None,      # seconds of training: as many of the epochs as fit here, timed on a few
                           # steps before the run (train/time_budget.py); None = all the epochs
    batch_size=256,
    optimizer="adamw",     # sgd (Nesterov momentum) | adam | adamw
    lr=2e-3,               # peak learning rate
    momentum=0.9,          # SGD only
    nesterov=True,         # SGD only
    weight_decay=5e-4,
    schedule="onecycle",   # constant | onecycle (warm-up then linear decay) | cosine | linear
    warmup=0.15,           # fraction of all steps spent warming up
    label_smoothing=0.0,
    lookahead=False,       # airbench's Lookahead: every 5 steps the network restarts from a moving
                           # average of its weights, averaging more towards the end (train/lookahead.py)
    translate=0,           # augmentation: random shift of up to N pixels
    shift_tta=0,           # inference also averages over the images shifted +-N px (airbench's
                           # translate TTA: 3x the forward passes; for models trained with translate)
    flip=None,             # augmentation: horizontal flips; None = the dataset decides (never digits)
    alternate_flip=False,  # with flips: each image mirrored in every other epoch (which ones first is
                           # drawn once) instead of a fresh coin each epoch: airbench's alternating flip
    reframe=None,          # augmentation: share of images re-framed as a photo would be (data.augment);
                           # None = the data decides: 0.5 where photos are framed as objects or digits
    seed=0,
    device="auto",         # auto | cpu | cuda | cuda:N | mps
    amp=None,              # mixed precision; None = on for CUDA and for convnets on an AMX CPU
    cuda_graphs=None,      # one GPU: each step's forward and backward replayed as a CUDA graph
                           # (train/cuda_graphs.py); None = on, False = eager steps
    device_warmup=None,    # a few untimed steps before the first epoch pay a GPU's one-off costs, then
                           # the state is put back (train/warmup.py); None = on for CUDA, off on a CPU
    monitor="val_accuracy",  # metric for the best checkpoint and early stopping
    patience=None,         # early stopping: epochs without improvement; None = off
    min_delta=0.0,         # early stopping: smallest change that counts as improvement
    checkpoint_every=0,    # also checkpoint every N steps mid-epoch (0 = end of epoch only)
    max_steps=None,        # stop after this many optimizer steps in all (tests, quick looks);
                           # the lr schedule still follows the planned epochs
    freeze=False,          # transfer learning: keep the (pretrained) backbone fixed and train
                           # only the head, on features computed once (see train/frozen.py)
    head_epochs=0,         # fine-tuning: first epochs with only the head learning
    backbone_lr=1.0,       # fine-tuning: the backbone's lr as a fraction of the head's
    sync_bn=None,          # under torchrun: BatchNorm statistics over all ranks' images;
                           # None = on when a rank gets fewer than 32 images per step
)
# fmt: on


@dataclass
class TrainConfig:
    epochs: int = DEFAULTS["epochs"]
    time_budget: float | None = DEFAULTS["time_budget"]
    batch_size: int = DEFAULTS["batch_size"]
    optimizer: str = DEFAULTS["optimizer"]
    lr: float = DEFAULTS["lr"]
    momentum: float = DEFAULTS["momentum"]
    nesterov: bool = DEFAULTS["nesterov"]
    weight_decay: float = DEFAULTS["weight_decay"]
    schedule: str = DEFAULTS["schedule"]
    warmup: float = DEFAULTS["warmup"]
    label_smoothing: float = DEFAULTS["label_smoothing"]
    lookahead: bool = DEFAULTS["lookahead"]
    translate: int = DEFAULTS["translate"]
    shift_tta: int = DEFAULTS["shift_tta"]
    flip: bool | None = DEFAULTS["flip"]
    alternate_flip: bool = DEFAULTS["alternate_flip"]
    reframe: float | None = DEFAULTS["reframe"]
    seed: int = DEFAULTS["seed"]
    device: str = DEFAULTS["device"]
    amp: bool | None = DEFAULTS["amp"]
    cuda_graphs: bool | None = DEFAULTS["cuda_graphs"]
    device_warmup: bool | None = DEFAULTS["device_warmup"]
    monitor: str = DEFAULTS["monitor"]
    patience: int | None = DEFAULTS["patience"]
    min_delta: float = DEFAULTS["min_delta"]
    checkpoint_every: int = DEFAULTS["checkpoint_every"]
    max_steps: int | None = DEFAULTS["max_steps"]
    freeze: bool = DEFAULTS["freeze"]
    head_epochs: int = DEFAULTS["head_epochs"]
    backbone_lr: float = DEFAULTS["backbone_lr"]
    sync_bn: bool | None = DEFAULTS["sync_bn"]
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (dataset options, ...)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"invalid training option: {msg}")

        self._check_types(bad)
        if not 1 <= self.epochs <= MAX_EPOCHS:
            raise bad(f"epochs must be from 1 to {MAX_EPOCHS:,}, not {self.epochs:,}")
        if self.time_budget is not None and not 0 < self.time_budget <= MAX_TIME_BUDGET:
            raise bad(
                f"time_budget is seconds of training, more than 0 and at most {MAX_TIME_BUDGET:,.0f} "
                f"(30 days), not {self.time_budget!r}"
            )
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise bad(f"batch_size must be from 1 to {MAX_BATCH_SIZE:,}, not {self.batch_size:,}")
        if self.optimizer not in OPTIMIZERS:
            raise bad(f"optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise bad(f"schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0 < self.lr <= MAX_LR:
            raise bad(f"lr must be more than 0 and at most {MAX_LR:g}, not {self.lr:g}")
        if not 0.0 <= self.momentum < 1.0:
            raise bad(f"momentum must be in [0, 1), not {self.momentum}")
        if not 0 <= self.seed <= MAX_SEED:
            raise bad(f"seed must be from 0 to 2^63 - 1, not {self.seed}")
        if not 0.0 <= self.warmup < 1.0:
            raise bad(f"warmup is a fraction of all steps in [0, 1), not {self.warmup}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise bad(f"label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0 <= self.weight_decay <= 1:
            raise bad(f"weight_decay must be from 0 to 1, not {self.weight_decay}")
        if not 0 <= self.translate <= MAX_SHIFT:
            raise bad(f"translate must be from 0 to {MAX_SHIFT} pixels, not {self.translate}")
        if not 0 <= self.shift_tta <= MAX_SHIFT or (self.shift_tta and self.freeze):
            raise bad(
                f"shift_tta must be from 0 to {MAX_SHIFT} pixels, and 0 for a head trained on frozen "
                f"features, not {self.shift_tta}"
            )
        if self.min_delta < 0:
            raise bad(f"min_delta must be >= 0, not {self.min_delta}")
        if self.reframe is not None and not 0.0 <= self.reframe <= 1.0:
            raise bad(f"reframe is a share of the images in [0, 1], not {self.reframe}")
        if self.monitor not in MONITORS:
            raise bad(f"monitor {self.monitor!r}; choose one of {', '.join(MONITORS)}")
        if self.patience is not None and not 1 <= self.patience <= MAX_EPOCHS:
            raise bad(f"patience must be from 1 to {MAX_EPOCHS:,} epochs, not {self.patience}")
        if self.checkpoint_every < 0:
            raise bad(f"checkpoint_every must be >= 0 steps, not {self.checkpoint_every}")
        if self.head_epochs < 0 or (self.head_epochs and self.head_epochs >= self.epochs):
            raise bad(
                f"head_epochs must be from 0 to epochs - 1 ({self.epochs - 1}), not {self.head_epochs}"
            )
        if not 0.0 < self.backbone_lr <= 1.0:
            raise bad(f"backbone_lr is a fraction of the lr in (0, 1], not {self.backbone_lr}")
        if self.max_steps is not None and self.max_steps < 1:
            raise bad(f"max_steps must be at least 1, not {self.max_steps}")

    def _check_types(self, bad: Any) -> None:
        """Each option has its field's type: a whole number for an int (1e3 from JSON is 1000),
        a finite number for a float, true or false for a bool. Strings and numbers from JSON,
        YAML or a form never reach the loop as something else (inf as an lr, 2.5 epochs)."""
        for f in dataclasses.fields(self):
            kinds = {k.strip() for k in str(f.type).split("|")}
            value = getattr(self, f.name)
            if value is None and "None" in kinds or f.name == "extra":
                continue
            if "bool" in kinds:
                ok = isinstance(value, bool)
                want = "true or false" + (" or null" if "None" in kinds else "")
            elif "int" in kinds:
                if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                    value = int(value)
                    setattr(self, f.name, value)
                ok = isinstance(value, int) and not isinstance(value, bool)
                want = "a whole number"
            elif "float" in kinds:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                ok = ok and math.isfinite(value)
                want = "a finite number"
            else:  # str
                ok, want = isinstance(value, str), "a string"
            if not ok:
                raise bad(f"{f.name} must be {want}, not {value!r}")

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
        return cls(**values)


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
