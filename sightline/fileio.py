"""Atomic file writes: a temp file in the same folder, fsync, then rename.

A reader (or a resumed run after ``kill -9``) sees either the old file or the new one, never half
of one. Used for checkpoints, run metadata and downloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_UMASK: int | None = None


def file_mode() -> int:
    """The mode a new file gets in this process: 0o666 less the umask, as ``open()`` gives it.
    ``tempfile.mkstemp`` makes its files 0600 whatever the umask says, so a file written through
    a temp file is given this mode: a run folder shared with a team (group-readable under umask
    002 or 022) stays readable to them, and under umask 077 private."""
    global _UMASK
    if _UMASK is None:
        _UMASK = _read_umask()
    return 0o666 & ~_UMASK


def _read_umask() -> int:
    try:  # Linux says it without changing it (os.umask would, for every thread, for a moment)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_temp_file(path: Path) -> tuple[int, str]:
    """(fd, name) of a new temp file beside ``path``, with the mode ``open()`` would give it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, file_mode())
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp_file(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB chunks (model files, downloaded weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
