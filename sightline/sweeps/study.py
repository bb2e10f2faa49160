"""Where a sweep's study lives, and what it holds: Optuna's storage, opened one way for every
worker, and the sweep's request saved in the study itself (so ``tune --resume`` and a worker on
another machine need only the study's name and storage).

The storage: ``--storage`` (any URL Optuna's RDB storage takes: ``postgresql://user@host/db``,
``mysql://...``, ``sqlite:///file.db``), else SQLite beside the runs (``<runs>/studies.db``).
Workers beat a heartbeat into it; a trial whose worker stopped beating (killed, a machine gone)
is marked FAIL by the next worker that starts a trial, and the study goes on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sightline.errors import ConfigError, SightlineError

INSTALL_HINT = 'pip install optuna (or "sightline[tune]")'
STUDIES_DB = "studies.db"  # the default storage, in the runs folder
STUDIES = "studies"  # the runs folder's subfolder of study figures: studies/<name>/
REQUEST = "sightline.request"  # the study's user attribute holding the sweep's request
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
HEARTBEAT_SECONDS = 10  # a running trial's sign of life in the storage ...
GRACE_SECONDS = 60  # ... and how long without it before the trial counts as failed


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise SightlineError(f"sweeps need the optuna package: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # sightline says what each trial did
    return optuna


def storage_url(storage: str | None, runs_dir: str | os.PathLike | None) -> str:
    """``storage`` as given, else the SQLite file beside the runs (made absolute)."""
    if storage:
        return storage
    from sightline.run import runs_root

    root = Path(runs_root(runs_dir)).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / STUDIES_DB}"


def shown_url(url: str) -> str:
    """``url`` without its password, for what a person reads (logs, the run's tracking.json)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(url: str) -> Any:
    """Optuna's RDB storage at ``url`` with the workers' heartbeat; a clear error when the
    database cannot be reached or its driver is missing."""
    import warnings

    optuna = require_optuna()
    try:
        with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 4 and 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
            )
    except ModuleNotFoundError as e:  # e.g. psycopg2 for postgresql://
        raise ConfigError(
            f"the study storage {shown_url(url)} needs the {e.name} package (pip install "
            f"{'psycopg2-binary' if e.name == 'psycopg2' else e.name})"
        ) from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's many ways of failing to connect
        first = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        raise ConfigError(f"cannot open the study storage {shown_url(url)}: {first}") from None


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"study name {name!r}: use letters, digits, '.', '_' and '-' (it names the trials' runs)"
        )
    return name


def load_study(name: str, url: str) -> Any:
    """The study ``name`` in ``url``; ConfigError naming the studies there when it is not."""
    optuna = require_optuna()
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ConfigError(
            f"no study {name!r} in {shown_url(url)}; studies there: {', '.join(names) or 'none'}"
        ) from None


def study_folder(runs_dir: str | os.PathLike | None, name: str) -> Path:
    """``<runs>/studies/<name>/``: the study's figures (history, importance) and summary."""
    from sightline.run import runs_root

    return Path(runs_root(runs_dir)) / STUDIES / check_name(name)
