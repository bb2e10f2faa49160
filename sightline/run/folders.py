"""Run folders on disk: where they live, run ids → folders that never leave the runs folder,
creating, writing and removing them.

``sightline.run`` (the ``Run`` class, listing, deleting) imports all of these, and the faces
get them from there. Two kinds of reference to a run:

* ``run_path``: what a local user typed (a run name, ``runs/my-run``, an absolute path inside
  the runs folder); "../x", "/etc" and links out of the runs folder are refused.
* ``run_id_path``: an id from a remote client (the web API): a plain folder name directly in
  the runs folder and nothing else — no separators, no dot names, no symbolic links.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from sightline.errors import PathRefusedError, RunError, RunNotFoundError
from sightline.fileio import atomic_write_json, entries_inside
from sightline.run.layout import EVALUATIONS, EXPORT, PLOTS, RunLayout

RUNS_DIR_ENV = "SIGHTLINE_RUNS_DIR"
RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")  # what new_run_dir creates: no leading dot
# What a run id may be: any folder name the listing shows (a user's "mnist copy (2)" too), never
# a path: no separator, no control character, no leading dot (dot names are delete_run's trash).
RUN_ID = re.compile(r"[^./\\\x00-\x1f\x7f][^/\\\x00-\x1f\x7f]*")
MAX_RUN_NAME = 255  # the longest file name most file systems allow


def default_runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def runs_root(runs_dir: str | os.PathLike | None) -> Path:
    return Path(runs_dir) if runs_dir is not None else default_runs_dir()


def new_run_dir(root: str | os.PathLike | None, name: str) -> Path:
    """A fresh folder ``root/name``; ``name-2``, ``name-3``… if taken (also by a racing run)."""
    root = runs_root(root)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()  # atomic: of two runs racing for one name, exactly one gets it
            return path
        except FileExistsError:
            continue
    raise RunError(f"{root.resolve()}: too many runs named {name!r}; pass another --name")


def default_run_name(dataset: str, model: str) -> str:
    return f"{Path(dataset).name or dataset}-{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_run_config(path: Path, model_config: dict, data_options: dict, train: dict) -> None:
    from sightline._version import __version__

    atomic_write_json(
        RunLayout(path).config,
        {
            "sightline_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model_config,
            "data": data_options,
            "train": train,
        },
        root=path,
    )


# ----------------------------------------------------------------------------- who is training
def training_process() -> dict[str, Any]:
    """What a run's status.json records of the process training it while it runs: this
    machine, this process and when it started (a pid alone may be reused by another process)."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": _process_start(os.getpid()),
    }


def _process_start(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (Linux), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: after the name, which may hold spaces


def training_process_gone(process: dict[str, Any] | None) -> bool:
    """True when ``process`` (``training_process()`` of a run's trainer) ran on this machine and
    is no longer alive: killed, crashed or the machine restarted. Unknown (another machine, no
    record) is not gone: only what this machine can tell for sure."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    started = process.get("started")
    return started is not None and _process_start(pid) not in (None, started)  # a reused pid


def write_status(path: Path, status: dict[str, Any]) -> None:
    """``status.json`` of run folder ``path``, in its one shape (``run.writer.RunStatus``)."""
    from sightline.run.writer import RunWriter

    RunWriter(path).write_status(status)


def is_run_folder(path: Path) -> bool:
    """A folder ``list_runs`` shows: one with a config or a status (a broken one included,
    and one whose config is a symbolic link: shown refused)."""
    files = RunLayout(path)
    return path.is_dir() and (os.path.lexists(files.config) or os.path.lexists(files.status))


def link_entries(path: Path) -> list[str]:
    """The entries of run folder ``path`` (and of its plots/, evaluations/ and export/) that are
    symbolic links, by their names in it: refused, never read, served or looked through (a
    linked folder is one entry). What a face shows as refused, never where they point."""
    found = []
    for folder in (".", PLOTS, EVALUATIONS, EXPORT):
        try:
            entries = entries_inside(path, folder)
        except (PathRefusedError, OSError):
            continue  # a linked folder: named once, among the run folder's own entries
        prefix = "" if folder == "." else f"{folder}/"
        found += [prefix + name for name, kind in entries.items() if kind == "link"]
    return found


def run_path(ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> Path:
    """Where run ``ref`` lives. A string is a run name, or a path that must stay inside the
    runs folder ("../x", "/etc" and links out of it are refused); a ``Path`` is used as is."""
    if not isinstance(ref, str):
        return Path(ref)
    root = runs_root(runs_dir)
    base = root.resolve()
    text = ref.strip()
    candidates = [root / text]
    if not Path(text).is_absolute() and len(Path(text).parts) > 1:
        candidates.append(Path(text))  # "runs/my-run" typed from the project folder
    for cand in (Path(text),) if Path(text).is_absolute() else candidates:
        resolved = cand.resolve()
        if resolved != base and base in resolved.parents and resolved.is_dir():
            return resolved
    if (Path(text).is_absolute() or len(Path(text).parts) > 1) and not Path(text).exists():
        raise RunNotFoundError(
            f"run folder not found: {Path(text).resolve()} (runs are in {base}; see `sightline runs`)"
        )
    if not text or (len(Path(text).parts) == 1 and RUN_NAME.fullmatch(text)):
        if not text:
            raise RunError("empty run name")
        raise RunNotFoundError(f"no run named {text!r} in {base}: see `sightline runs`")
    hint = (
        " (a run folder elsewhere opens as a pathlib.Path: load_run(Path(...)))"
        if Path(text).is_dir()
        else ""
    )
    raise RunError(
        f"run {text!r} is not a folder inside the runs folder {base}; give a run name from "
        f"`sightline runs`{hint}"
    )


def run_id_path(run_id: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the run a remote client named: ``RunError`` for an id that is not a plain
    run name, ``RunNotFoundError`` when no run folder has that name.

    Any folder name the listing shows passes (``RUN_ID``): no "/", "\\", control character or
    leading dot (dot names are the hidden trash of ``delete_run``). The folder must sit directly
    in the runs folder and must not be a symbolic link, which could point anywhere, even at
    another run (a delete through it would remove the target)."""
    if not isinstance(run_id, str) or len(run_id) > MAX_RUN_NAME or not RUN_ID.fullmatch(run_id):
        shown = run_id[:80] if isinstance(run_id, str) else run_id
        raise RunError(
            f"invalid run id {shown!r}: a run id is the name of a folder in the runs folder, "
            "without '/' or '\\' and not starting with '.'"
        )
    root = runs_root(runs_dir)
    base = root.resolve()
    path = root / run_id
    if path.is_symlink() or path.resolve().parent != base or not is_run_folder(path):
        raise RunNotFoundError(f"no run named {run_id!r} in {base}")
    return path.resolve()


def remove_folder(path: Path) -> None:
    """Remove run folder ``path`` (checked by the caller): first renamed to a hidden
    ``.deleted-*`` name next to it (atomic on one file system), so no listing ever shows a
    half-deleted run, and a crash half-way leaves only that hidden folder; then removed."""
    trash = path.parent / f".deleted-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, trash)
    except FileNotFoundError:  # deleted by a racing call: nothing left to do here
        raise RunNotFoundError(f"no run named {path.name!r} in {path.parent}") from None
    except OSError as e:
        raise RunError(f"cannot delete {path}: {e.strerror or e}") from None
    try:
        shutil.rmtree(trash)  # removes links inside the run, never what they point at
    except OSError as e:
        raise RunError(
            f"run {path.name!r} is gone from the list, but {trash} could not be removed "
            f"({e.strerror or e}); remove it by hand"
        ) from None
