"""What a sweep searches: one range per option, around the plan's own choice.

A ``Space`` maps an option to a ``Dim``: a float or int range (log-spaced where the option spans
decades) or a list of choices. Training options keep their names (``lr``, ``weight_decay``,
``label_smoothing``, ``translate``, ``epochs``, ...); a model option is ``model.<name>``
(``model.width``). ``default_space`` centres every range on what the plan would train with for
this data, model and recipe (``plan.preview``: the same rules as ``sightline train``), so the
default sweep explores around a good run rather than the whole of each option's range. A space
file (``--space FILE``, JSON) gives a space of one's own:

    {"lr": {"low": 0.01, "high": 0.5, "log": true},
     "batch_size": {"choices": [128, 256, 512]},
     "label_smoothing": {"low": 0.0, "high": 0.2},
     "model.width": {"choices": [32, 64]}}

Every value a range can give is checked against the option's own declaration before a trial
runs (a typo, an unknown option or a value out of its bounds is refused at once, naming it).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightline.errors import ConfigError

MODEL_PREFIX = "model."
# The training options a default space searches, and how (the plan's value ``v``):
# lr and weight decay over a factor around v (log), label smoothing 0-0.2, shifts 0-2v (the
# augmentation's strength), the batch at v/2, v and 2v, epochs from half of v to v (a sweep
# spends its budget on many trials, and the plan's epochs are its upper end).
LR_FACTOR = 4.0
WEIGHT_DECAY_FACTOR = 10.0


@dataclass(frozen=True)
class Dim:
    """One option's range: ``low``..``high`` (float or int; ``log``: log-spaced) or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any, name: str) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(name, list(self.choices))
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    def ends(self) -> list[Any]:
        """The values to check against the option's declaration: each choice, or both ends."""
        if self.choices is not None:
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.integer else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log, "int": self.integer}


Space = dict[str, Dim]


def suggest(space: Space, trial: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """One trial's (training options, model options) drawn from ``space``."""
    return split({name: dim.suggest(trial, name) for name, dim in space.items()})


def split(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's values by name → (training options, model options without ``model.``)."""
    train, model = {}, {}
    for name, value in params.items():
        if name.startswith(MODEL_PREFIX):
            model[name[len(MODEL_PREFIX) :]] = value
        else:
            train[name] = value
    return train, model


def default_space(config: Any, model_options: dict[str, Any], frozen: bool = False) -> Space:
    """The space around a settled plan: ``config`` (its ``TrainConfig``) and its model's
    options; ``frozen``: a head on frozen features (no batch, shifts or width to search)."""
    space: Space = {
        "lr": Dim(config.lr / LR_FACTOR, config.lr * LR_FACTOR, log=True),
        "label_smoothing": Dim(0.0, 0.2),
    }
    wd = config.weight_decay
    space["weight_decay"] = (
        Dim(wd / WEIGHT_DECAY_FACTOR, wd * WEIGHT_DECAY_FACTOR, log=True)
        if wd > 0
        else Dim(1e-6, 1e-2, log=True)
    )
    if config.epochs > 1:
        space["epochs"] = Dim(max(1, config.epochs // 2), config.epochs, integer=True)
    if frozen:
        return space
    b = config.batch_size
    space["batch_size"] = Dim(choices=tuple(sorted({max(8, b // 2), b, b * 2})))
    space["translate"] = Dim(0, max(2, 2 * int(config.translate or 0)), integer=True)
    width = model_options.get("width")
    if isinstance(width, int) and width >= 8:
        space[MODEL_PREFIX + "width"] = Dim(choices=tuple(sorted({width // 2, width, width * 2})))
    return space


def load_space(path: str | os.PathLike) -> Space:
    """A space file (JSON; see the module's words); ConfigError naming what is wrong."""
    p = Path(path).expanduser()
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read the search space {p}: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(f"the search space {p} is not JSON: {e}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"the search space {p} must be a JSON object of option: range")
    return {name: parse_dim(name, spec, p) for name, spec in raw.items()}


def parse_dim(name: str, spec: Any, where: Any = "space") -> Dim:
    """One option's range as a space file, a dict or ``Dim.to_dict`` writes it; ConfigError
    naming ``where`` and the option when it is no range."""
    where = f"{where}: {name}"
    if isinstance(spec, list):
        spec = {"choices": spec}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: give {{'low', 'high'}} or {{'choices': [...]}}, not {spec!r}")
    unknown = set(spec) - {"low", "high", "log", "int", "choices"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list")
        return Dim(choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"{where}: low and high must be numbers with low <= high")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range must start above 0")
    integer = bool(spec.get("int", isinstance(low, int) and isinstance(high, int)))
    return Dim(low, high, log=log, integer=integer)


def check_space(space: Space, model: str) -> None:
    """Every value ``space`` can give, checked by its option's declaration (ConfigError)."""
    import dataclasses

    from sightline.models import get_model_entry
    from sightline.plan.config import TrainConfig
    from sightline.plan.options import check_options

    names = {f for f in TrainConfig.__dataclass_fields__ if f != "extra"}
    model_options = get_model_entry(model).options()
    for name, dim in space.items():
        if name.startswith(MODEL_PREFIX):
            option = name[len(MODEL_PREFIX) :]
            if option not in model_options:
                raise ConfigError(
                    f"{model} has no option {option!r} to search; its options: "
                    f"{', '.join(sorted(model_options)) or 'none'}"
                )
            continue
        if name not in names:
            raise ConfigError(
                f"cannot search {name!r}: not a training option (model options are "
                f"'model.<name>'); see `sightline train --help`"
            )
        for value in dim.ends():
            # the option's own checks (type, bounds, choices), as for `sightline train`
            check_options(dataclasses.replace(TrainConfig(), **{name: value}), ConfigError)


def space_dict(space: Space) -> dict[str, Any]:
    return {name: dim.to_dict() for name, dim in space.items()}
