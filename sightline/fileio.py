"""Atomic file writes (a temp file in the same folder, fsync, then rename), and the one rule
for paths inside the folders sightline guards: no symbolic link is followed there.

A reader (or a resumed run after ``kill -9``) sees either the old file or the new one, never half
of one. Used for checkpoints, run metadata and downloads.

The runs folder and the data folders may themselves be reached through a link (the user chose
them), but nothing inside them is: ``inside(root, path)`` refuses a path below ``root`` of which
any part is a symbolic link (or ``..``), raising ``LinkRefusedError`` / ``PathRefusedError``
with the file's name; ``open_inside`` opens a file there with ``O_NOFOLLOW`` at every step, so a
link made between a check and the open is refused too. A listing (``entries_inside``) names a
link as a link and never looks through it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sightline.errors import LinkRefusedError, PathRefusedError

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
def atomic_open(
    path: str | os.PathLike, mode: str = "wb", root: str | os.PathLike | None = None
) -> Iterator[IO]:
    """Open a temp file beside ``path``; on clean exit it replaces ``path`` atomically.
    ``root``: a guarded folder ``path`` is in; no folder on the way to it may be a link
    (``inside``). The rename replaces a link at ``path`` itself, never what it points at."""
    path = Path(path)
    if root is not None:
        inside(root, path.parent)
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


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes, root: str | os.PathLike | None = None
) -> None:
    with atomic_open(path, "wb", root) as f:
        f.write(data)


def atomic_write_json(
    path: str | os.PathLike, obj: Any, root: str | os.PathLike | None = None
) -> None:
    with atomic_open(path, "w", root) as f:
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


# ----------------------------------------------------------------------------- guarded folders
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted there must not hang the open
_BY_FD = bool(_NOFOLLOW and _DIRECTORY) and os.open in os.supports_dir_fd


def _parts(root: Path, path: str | os.PathLike) -> tuple[str, ...]:
    """The names of ``path`` below ``root``: ``path`` is a path under ``root`` (as ``root /
    name`` builds it; an absolute one under it), else a path relative to it."""
    rel = Path(path)
    bases = dict.fromkeys((root, root.absolute(), root.resolve())) if rel.is_absolute() else [root]
    for base in bases:
        with contextlib.suppress(ValueError):
            rel = rel.relative_to(base)
            break
    else:
        if rel.is_absolute():
            raise PathRefusedError(rel, f"{rel} is not inside {root}: refused")
    if ".." in rel.parts:
        raise PathRefusedError(rel, f"{root / rel} leads out of {root} ('..'): refused")
    return rel.parts


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``root/path`` once no part of it below ``root`` is a symbolic link: ``LinkRefusedError``
    naming the first that is, ``PathRefusedError`` for ``..`` or a path elsewhere. Parts that
    do not exist (yet) pass, so a file about to be written is checked as one to be read.
    ``root`` itself is not checked: the folder the user chose may be reached through a link."""
    root = Path(root)
    parts = _parts(root, path)
    here = root
    for name in parts:
        here = here / name
        try:
            mode = os.lstat(here).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # nothing more to follow
        if stat.S_ISLNK(mode):
            raise LinkRefusedError(here, root)
    return root.joinpath(*parts)


def _open_at(dir_fd: int, name: str, flags: int, shown: Path, root: Path) -> int:
    """``os.open`` of ``name`` in folder ``dir_fd``, never through a link (``LinkRefusedError``)."""
    try:
        return os.open(name, flags | _NOFOLLOW, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):  # EMLINK: BSD's O_NOFOLLOW
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    raise LinkRefusedError(shown, root) from None
        raise OSError(e.errno, e.strerror, str(shown)) from None  # named in full


def _folder_fd(root: Path, parts: tuple[str, ...]) -> int:
    """An fd of the folder ``root/parts``, opened one part at a time, none through a link."""
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    try:
        for i, name in enumerate(parts):
            step = _open_at(
                fd, name, os.O_RDONLY | _DIRECTORY, root.joinpath(*parts[: i + 1]), root
            )
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_nofollow(root: Path, parts: tuple[str, ...]) -> int:
    """A read-only fd of the regular file ``root/parts``, no link followed at any step."""
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "a folder, not a file", str(root))
    flags = os.O_RDONLY | _NONBLOCK | getattr(os, "O_BINARY", 0)
    if _BY_FD:  # race-free: a link made between a check and the open is refused as well
        folder = _folder_fd(root, parts[:-1])
        try:
            fd = _open_at(folder, parts[-1], flags, root.joinpath(*parts), root)
        finally:
            os.close(folder)
    else:  # no openat here: every part checked, then the file opened without following it
        fd = os.open(inside(root, Path(*parts)), flags | _NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(root.joinpath(*parts)))
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_inside(
    root: str | os.PathLike,
    path: str | os.PathLike,
    mode: str = "rb",
    encoding: str | None = None,
    newline: str | None = None,
) -> IO:
    """Open the regular file ``root/path`` for reading (``mode`` "r" or "rb") without following
    a symbolic link at any step below ``root`` (``LinkRefusedError``); ``FileNotFoundError``
    when it is missing, ``OSError`` when it is not a regular file."""
    if mode not in ("r", "rb"):
        raise ValueError(f"open_inside only reads ('r' or 'rb'), not {mode!r}")
    root = Path(root)
    fd = _open_nofollow(root, _parts(root, path))
    try:
        if mode == "rb":
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding or "utf-8", newline=newline)
    except BaseException:
        os.close(fd)
        raise


def read_json_inside(root: str | os.PathLike, path: str | os.PathLike) -> Any:
    """``read_json`` of ``root/path``, no link followed (``open_inside``)."""
    with open_inside(root, path, "r") as f:
        return json.load(f)


def read_bytes_inside(root: str | os.PathLike, path: str | os.PathLike) -> bytes:
    with open_inside(root, path) as f:
        return f.read()


def _kind(root: str | os.PathLike, path: str | os.PathLike) -> str | None:
    """ "file", "dir", "link" or "other" for ``root/path`` in folders that are no links; None
    when it is missing or behind a link."""
    try:
        mode = os.lstat(inside(root, path)).st_mode
    except LinkRefusedError as e:
        return "link" if Path(e.path) == Path(root).joinpath(*_parts(Path(root), path)) else None
    except (PathRefusedError, OSError):  # a name leaving the root: nothing there
        return None
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"


def is_file_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``root/path`` is a regular file reached through no symbolic link (a link, or a
    file in a linked folder, is not: nothing is read or served through one)."""
    return _kind(root, path) == "file"


def is_dir_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``root/path`` is a folder reached through no symbolic link."""
    return _kind(root, path) == "dir"


def is_link_inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether ``root/path`` is itself a symbolic link (in folders that are none)."""
    return _kind(root, path) == "link"


def _entry_kind(entry: os.DirEntry) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "dir" if entry.is_dir(follow_symlinks=False) else "other"


def entries_inside(root: str | os.PathLike, path: str | os.PathLike = ".") -> dict[str, str]:
    """Name → "file", "dir", "link" or "other" for each entry of the folder ``root/path``, by
    name, never looking through a link: {} when the folder is missing, ``LinkRefusedError``
    when it (or a folder on the way) is a link."""
    root = Path(root)
    parts = _parts(root, path)
    try:
        if _BY_FD and os.scandir in os.supports_fd:
            fd = _folder_fd(root, parts)
            try:
                with os.scandir(fd) as found:
                    kinds = {e.name: _entry_kind(e) for e in found}
            finally:
                os.close(fd)
        else:
            with os.scandir(inside(root, Path(*parts))) as found:
                kinds = {e.name: _entry_kind(e) for e in found}
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return dict(sorted(kinds.items()))
