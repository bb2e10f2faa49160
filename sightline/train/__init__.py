"""Training: configuration, the loop, checkpoints and progress reporting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports

# Imported on first use (see sightline/_lazy.py): the loop needs PyTorch, while the CLI's parser
# only reads the option choices in sightline.plan.config.
_EXPORTS = {
    "fit": "sightline.train.api",
    "resume": "sightline.train.api",
    "DEFAULTS": "sightline.plan.config",
    "TrainConfig": "sightline.plan.config",
    "resolve_config": "sightline.plan.config",
    "JsonLines": "sightline.train.progress",
    "ProgressBar": "sightline.train.progress",
    "Callback": "sightline.train.callbacks.base",
    "TensorBoardTracker": "sightline.train.callbacks.tensorboard",
    "MLflowTracker": "sightline.train.callbacks.mlflow",
    "log_results": "sightline.train.callbacks.trackers",
    "TrainerView": "sightline.train.trainer_view",
    "threads_per_process": "sightline.train.distributed",
    "torchrun_command": "sightline.train.distributed",
}

if TYPE_CHECKING:
    from sightline.plan.config import DEFAULTS, TrainConfig, resolve_config
    from sightline.train.api import fit, resume
    from sightline.train.callbacks.base import Callback
    from sightline.train.callbacks.mlflow import MLflowTracker
    from sightline.train.callbacks.tensorboard import TensorBoardTracker
    from sightline.train.callbacks.trackers import log_results
    from sightline.train.distributed import threads_per_process, torchrun_command
    from sightline.train.progress import JsonLines, ProgressBar
    from sightline.train.trainer_view import TrainerView

__all__ = [
    "DEFAULTS",
    "Callback",
    "JsonLines",
    "MLflowTracker",
    "ProgressBar",
    "TensorBoardTracker",
    "TrainConfig",
    "TrainerView",
    "fit",
    "log_results",
    "resolve_config",
    "resume",
    "threads_per_process",
    "torchrun_command",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
