"""The runs folder as a list: open a run by name, list them newest first, the newest, delete
one, and a run's status in words. Every name a client sends goes through ``run_id_path``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sightline.errors import RunInUseError, RunNotFoundError
from sightline.run.folders import (
    is_run_folder,
    remove_folder,
    run_id_path,
    run_path,
    runs_root,
)
from sightline.run.layout import RunLayout
from sightline.run.run import Run

if TYPE_CHECKING:
    import torch

    from sightline.infer.onnx import OnnxModel


def load_run(ref, runs_dir: str | os.PathLike | None = None) -> Run:
    """Open a run by name under ``runs_dir`` (default ./runs or $SIGHTLINE_RUNS_DIR), never
    outside it; a ``pathlib.Path`` (a folder you chose) or a ``Run`` is opened as is."""
    return ref if isinstance(ref, Run) else Run(run_path(ref, runs_dir))


def list_runs(root: str | os.PathLike | None = None, links: bool = True) -> list[Run]:
    """Runs under ``root`` (default ./runs), newest first. A damaged run folder is listed with
    ``status == "broken"`` and its ``problem``; it never hides the others. A symbolic link to
    a run folder is listed as refused (broken, nothing read through it: ``fileio.inside``);
    ``links=False`` leaves them out (the web API's listing: ``run_id_path`` refuses them)."""
    root = runs_root(root)
    if not root.is_dir():
        return []
    # dot names are hidden: among them the trash of a delete_run in progress
    runs = [
        Run(p, strict=False, root=root)
        for p in root.iterdir()
        if not p.name.startswith(".") and is_run_folder(p) and (links or not p.is_symlink())
    ]

    def created(r: Run) -> float:
        try:  # a refused link: not looked through, even for a date
            return 0.0 if r.path.is_symlink() else os.lstat(RunLayout(r.path).config).st_mtime
        except OSError:
            return 0.0

    return sorted(runs, key=created, reverse=True)


def latest_run(root: str | os.PathLike | None = None) -> Run:
    runs = [r for r in list_runs(root) if r.problem is None]
    if not runs:
        raise RunNotFoundError(
            f"no runs in {runs_root(root).resolve()}: train one with `sightline train`"
        )
    return runs[0]


def delete_run(ref: str | os.PathLike | Run, runs_dir: str | os.PathLike | None = None) -> Path:
    """Delete a run folder; returns where it was. A string must be a plain run name in
    ``runs_dir`` (``run_id_path``: the web API passes what clients send). A run that is
    training (status "running") is refused with ``RunInUseError``. Listings never show a
    half-deleted run (see ``remove_folder``)."""
    path = (
        run_id_path(ref, runs_dir)
        if isinstance(ref, str)
        else Path(ref.path if isinstance(ref, Run) else ref)
    )
    if path.is_symlink() or not is_run_folder(path):
        raise RunNotFoundError(f"{path.resolve()} is not a run folder")
    path = path.resolve()
    if Run(path, strict=False).status.get("status") == "running":
        raise RunInUseError(f"run {path.name!r} is training: stop it before deleting it")
    remove_folder(path)
    return path


def find_run(ref: str | os.PathLike | None, runs_dir: str | os.PathLike | None = None) -> Run:
    """The one run picker of the faces: ``ref`` as typed by a local user (an existing folder,
    or a run name), or the newest run when ``ref`` is None."""
    if ref is None:
        return latest_run(runs_dir)
    if (
        isinstance(ref, str)
        and Path(ref).expanduser().is_dir()
        and RunLayout(Path(ref).expanduser()).config.is_file()
    ):
        return Run(Path(ref).expanduser())
    return load_run(ref, runs_dir)


def status_words(status: dict[str, Any]) -> str:
    """A run's status as a phrase: "finished: best val_accuracy 0.9214 at epoch 3"."""
    state = status.get("status", "unknown")
    words = {
        "finished": "finished",
        "early_stopped": f"stopped early (no {status.get('monitor', 'metric')} improvement)",
        "max_steps": f"stopped after max steps ({status.get('global_step', '?')} steps)",
        "interrupted": "interrupted (resumable)",
        "failed": f"failed: {status.get('error')}",
        "running": "running",
        "broken": f"broken: {status.get('error')}",
        "created": "not started",
    }.get(state, state)
    if status.get("best_value") is not None and state not in ("failed", "broken"):
        words += f": best {status.get('monitor')} {status['best_value']:.4f} at epoch {status.get('best_epoch')}"
    return words


def load_onnx(
    source: str | os.PathLike | Run, which: str = "best", device: str | torch.device | None = "auto"
) -> OnnxModel:
    """An exported model in ONNX Runtime (CUDA when onnxruntime-gpu has a GPU, else the CPU).

    ``source``: a ``.onnx`` file from ``sightline export``, or a run (a ``Run``, or a run name
    or folder as ``load_run`` takes them) whose current ``export/<which>.onnx`` is loaded."""
    from sightline.infer.onnx import OnnxModel

    if not isinstance(source, Run) and (str(source).endswith(".onnx") or Path(source).is_file()):
        return OnnxModel.load(source, device)
    from sightline.run.exported import load_exported

    run = source if isinstance(source, Run) else load_run(source)
    return load_exported(run, which, device)
