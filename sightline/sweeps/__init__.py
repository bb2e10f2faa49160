"""Sweeps: Optuna studies whose trials are sightline runs (``sightline tune``, ``sightline.tune``).

space       the options searched (``default_space`` around the plan, ``load_space`` a file)
study       the storage (SQLite beside the runs, or PostgreSQL for several machines)
sweep       ``tune``: create or resume a study and run its trials in one or more workers
objective   one trial: a run, its score, pruning from its epochs
results     the trials' table, the best, the figures
retrain     the best trial's options trained again on train + validation
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports

_EXPORTS = {
    "tune": "sightline.sweeps.sweep",
    "work": "sightline.sweeps.sweep",
    "TuneResult": "sightline.sweeps.sweep",
    "show": "sightline.sweeps.best",
    "retrain": "sightline.sweeps.best",
    "default_space": "sightline.sweeps.space",
    "load_space": "sightline.sweeps.space",
    "PRUNERS": "sightline.sweeps.sweep",
    "table": "sightline.sweeps.results",
    "list_studies": "sightline.sweeps.listing",
    "study_view": "sightline.sweeps.listing",
    "figure_file": "sightline.sweeps.listing",
    "check_name": "sightline.sweeps.study",
    "storage_url": "sightline.sweeps.study",
    "FIGURES": "sightline.sweeps.listing",
}

if TYPE_CHECKING:
    from sightline.sweeps.best import retrain, show
    from sightline.sweeps.listing import FIGURES, figure_file, list_studies, study_view
    from sightline.sweeps.results import table
    from sightline.sweeps.space import default_space, load_space
    from sightline.sweeps.study import check_name, storage_url
    from sightline.sweeps.sweep import PRUNERS, TuneResult, tune, work

__all__ = ["FIGURES", "PRUNERS", "TuneResult", "check_name", "default_space", "figure_file",
           "list_studies", "load_space", "retrain", "show", "storage_url", "study_view", "table",
           "tune", "work"]  # fmt: skip

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
