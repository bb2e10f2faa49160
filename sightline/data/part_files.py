"""Temp files for downloads and extracted archive members: locked while alive, removed once
abandoned.

A download (or an extracted archive member) streams into ".<name>.<random>.part" beside its
destination and is renamed only once verified. A process killed mid-download (kill -9, the OOM
killer, a cluster job's time limit) cannot delete that file, and since every attempt picks a new
random name nothing else ever would: each kill would leave up to 170 MB behind in the cache.
So the temp file is flock-ed from creation until it is renamed, and each download first deletes
the ``.part`` files of its destination whose lock it can take: the kernel drops a lock when its
owner dies, so a lockable one is abandoned, while one that a live download (another job sharing
the cache) is writing stays locked and untouched. (fileio.atomic_open releases its file before
the rename, which would leave a moment where a live file looks abandoned.)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sightline.fileio import new_temp_file

try:
    import fcntl
except ImportError:  # Windows: no flock (see part_file)
    fcntl = None


@contextlib.contextmanager
def part_file(dest: Path) -> Iterator[IO[bytes]]:
    """A locked temp file beside ``dest`` that replaces it on clean exit and is deleted on any
    exception, KeyboardInterrupt included."""
    f, tmp = new_part_file(dest)
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, dest)  # still locked: never unlocked under its temp name
        if fcntl is None:
            os.replace(tmp, dest)  # Windows renames only closed files
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def new_part_file(dest: Path) -> tuple[IO[bytes], str]:
    while True:
        fd, tmp = new_temp_file(dest)
        if fcntl is None:
            return os.fdopen(fd, "wb"), tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: no one can clean it up, but it downloads
            return os.fdopen(fd, "wb"), tmp
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(tmp)):
                return os.fdopen(fd, "wb"), tmp
        # Another download's remove_stale_parts saw it between creation and lock: a new one.
        os.close(fd)


def remove_stale_parts(dest: Path) -> None:
    """Delete the temp files of ``dest`` that killed processes left behind (see part_file)."""
    prefix = f".{dest.name}."
    try:
        names = [
            e.name
            for e in os.scandir(dest.parent)
            if e.name.startswith(prefix) and e.name.endswith(".part")
        ]
    except OSError:
        return
    for name in names:
        part = dest.parent / name
        if fcntl is None:
            # Windows refuses to delete a file that is open, so a live download's is safe.
            with contextlib.suppress(OSError):
                part.unlink()
            continue
        try:
            fd = os.open(part, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: a live download's
            part.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)
