"""Training: configuration, the loop, checkpoints and progress reporting."""

from sightline.train.api import fit, resume
from sightline.train.config import DEFAULTS, TrainConfig, resolve_config
from sightline.train.progress import JsonLines, ProgressBar

__all__ = ["DEFAULTS", "JsonLines", "ProgressBar", "TrainConfig", "fit", "resolve_config", "resume"]
