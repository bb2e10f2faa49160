"""The sweeps of a runs folder, as the web UI and a listing show them: the studies in its own
storage (``<runs>/studies.db``), one study's trials and best with each trial's run named by its
folder (when it is one of this folder's runs, never by a path), and its figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sightline.errors import ConfigError
from sightline.sweeps import study as studies

FIGURES = ("history.png", "importance.png")


def _here(runs_dir: str | os.PathLike | None) -> tuple[str | None, Path]:
    """The runs folder's own study storage (None: no sweep has run here, or no Optuna)."""
    from sightline.run import runs_root

    root = Path(runs_root(runs_dir)).resolve()
    db = root / studies.STUDIES_DB
    if not db.is_file() or db.is_symlink():
        return None, root
    try:
        import optuna  # noqa: F401
    except ImportError:
        return None, root
    return f"sqlite:///{db}", root


def list_studies(runs_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The studies beside the runs, newest first: name, trials, start, best value and trial."""
    url, _ = _here(runs_dir)
    if url is None:
        return []
    optuna = studies.require_optuna()
    out = []
    for s in optuna.get_all_study_summaries(studies.open_storage(url), include_best_trial=True):
        best = s.best_trial
        out.append({"name": s.study_name, "trials": s.n_trials,
                    "started": s.datetime_start.isoformat() if s.datetime_start else None,
                    "best_value": best.value if best else None,
                    "best_trial": best.number if best else None})  # fmt: skip
    return sorted(out, key=lambda s: s["started"] or "", reverse=True)


def study_view(name: str, runs_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """One study of the runs folder: trials, best, figures, what it searched; ConfigError when
    there is no such study here."""
    from sightline.sweeps.results import summary

    url, root = _here(runs_dir)
    if url is None:
        raise ConfigError(f"no study {name!r}: no sweep has run in {root}")
    found = studies.load_study(studies.check_name(name), url)
    trials, best = summary(found)
    folder = root / studies.STUDIES / name
    request = found.user_attrs.get(studies.REQUEST) or {}
    return {
        "name": name,
        "trials": [_named(t, root) for t in trials],
        "best": _named(best, root) if best else None,
        "figures": [f for f in FIGURES if (folder / f).is_file()],
        "metric": found.user_attrs.get("metric", "val_accuracy"),
        "space": request.get("space"),
        "model": request.get("model"),
        "dataset": Path(str(request.get("dataset") or "")).name or None,
        "target_trials": request.get("trials"),
    }


def figure_file(name: str, figure: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """Where a study's figure is, relative to the runs folder (read it without following links)."""
    if figure not in FIGURES:
        raise ConfigError(f"no figure {figure!r}; a study has {', '.join(FIGURES)}")
    return Path(studies.STUDIES) / studies.check_name(name) / figure


def _named(trial: dict[str, Any], root: Path) -> dict[str, Any]:
    path = trial.get("run")
    p = Path(path) if isinstance(path, str) else None
    inside = p is not None and p.parent == root and p.is_dir() and not p.is_symlink()
    return {**trial, "run": p.name if inside else None}
