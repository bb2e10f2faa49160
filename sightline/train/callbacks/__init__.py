"""Training concerns, one class each with its own state (see ``base``): what the ``Trainer``
does besides stepping, validating and resuming.

    EarlyStopping      the best epoch by the monitored metric; stops after ``patience`` epochs
    Checkpointing      best / last model files and resume.pt, when to write them
    MetricsFile        metrics.csv and status.json
    DivergenceCheck    stops a run whose loss became NaN or exploded, saying what to change
    LookaheadAveraging airbench's Lookahead: slow weights the network is pulled back onto
"""

from sightline.train.callbacks.base import Callback
from sightline.train.callbacks.checkpointing import Checkpointing
from sightline.train.callbacks.divergence import (
    EXPLODING_LOSS_FACTOR,
    DivergenceCheck,
    TrainingDiverged,
)
from sightline.train.callbacks.early_stopping import EarlyStopping
from sightline.train.callbacks.lookahead import LookaheadAveraging
from sightline.train.callbacks.metrics_file import METRIC_COLUMNS, MetricsFile

__all__ = [
    "EXPLODING_LOSS_FACTOR",
    "METRIC_COLUMNS",
    "Callback",
    "Checkpointing",
    "DivergenceCheck",
    "EarlyStopping",
    "LookaheadAveraging",
    "MetricsFile",
    "TrainingDiverged",
]
