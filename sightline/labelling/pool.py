"""A dataset folder as the labelling loop sees it: the class folders with their images (every
split), and the pool, ``unlabelled/`` (any depth), of images waiting for a label. A label moves
a file from the pool into its class folder (the training split's, in a train/test layout);
"not any class" moves it into the quarantine's ``other/`` (kept apart, listed in its manifest,
never deleted). Paths a client gives are relative to the dataset folder, must name a file of
the pool, and never pass through a symbolic link."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sightline.data.builder import clean_name
from sightline.data.folders import find_splits, scan_class_folders
from sightline.data.pool import pool_folder, waiting_files
from sightline.errors import DataError
from sightline.fileio import inside
from sightline.health.fix import QUARANTINE, moved_to


class NotWaitingError(DataError):
    """A file named to label that waits in no pool (gone, never there, or made up)."""


class LabelledAlreadyError(NotWaitingError):
    """A file labelled since it was listed (another page or tab did it)."""


OTHER = f"{QUARANTINE}/other"  # where "not any class" keeps an image, beside the quarantine


@dataclass
class Pool:
    """What a dataset folder holds for the loop, read once (``read``)."""

    root: Path
    class_root: Path  # where new labels go: the folder itself, or its train/ split
    labelled: dict[str, list[str]]  # class -> its images, relative to root (every split)
    waiting: list[str]  # the pool's images, relative to root, sorted

    @classmethod
    def read(cls, folder: str | os.PathLike) -> Pool:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise DataError(
                f"{root} is not a folder: give a dataset folder (class folders and/or an "
                "unlabelled/ folder of images to label)"
            )
        root = root.resolve()
        splits = find_splits(root)
        labelled: dict[str, list[str]] = {}
        for split in splits.values():
            for name, files in scan_class_folders(split).items():
                labelled.setdefault(name, []).extend(_rel(root, f) for f in files)
        waiting = [_rel(root, f) for f in waiting_files(root)]
        return cls(root, splits["train"], labelled, waiting)

    @property
    def classes(self) -> list[str]:
        return sorted(self.labelled)

    def counts(self) -> dict[str, int]:
        return {c: len(self.labelled[c]) for c in self.classes}

    def waiting_file(self, path: str) -> str:
        """``path`` (relative to the folder, or to its pool, or absolute inside the folder) as
        the pool image it names; DataError when it names no image waiting for a label."""
        text = str(path).strip()
        candidate = Path(text)
        if candidate.is_absolute():
            try:
                text = candidate.resolve().relative_to(self.root).as_posix()
            except ValueError:
                raise NotWaitingError(f"{str(path)[:200]!r} is not inside {self.root}") from None
        waiting = set(self.waiting)
        pool = pool_folder(self.root).name
        for name in (text, f"{pool}/{text}"):
            if name in waiting:
                inside(self.root, name)  # a link on the way: refused
                return name
        for cls_name, files in self.labelled.items():
            if text in files:
                raise LabelledAlreadyError(f"{text} is labelled already (as {cls_name})")
        for name in (text, f"{pool}/{text}"):
            moved = moved_to(self.root, name)
            if moved is not None:  # by another page or tab since it was listed
                raise LabelledAlreadyError(f"{name} is labelled already: it is {moved} now")
        raise NotWaitingError(
            f"no image {text[:200]!r} waits for a label in {self.root.name}: name a file of "
            f"{pool}/ as `sightline label {self.root.name} --next` lists it"
        )

    def destination(self, path: str, cls_name: str) -> str:
        """Where ``path`` (a pool image) goes when labelled ``cls_name``: the class folder,
        keeping its place below the pool (relative to the folder)."""
        below = Path(path).relative_to(pool_folder(self.root).relative_to(self.root))
        base = self.class_root.relative_to(self.root)
        return (base / clean_name(cls_name, "class") / below).as_posix()

    def set_apart(self, path: str) -> str:
        """Where "not any class" keeps ``path``."""
        return f"{OTHER}/{Path(path).relative_to(pool_folder(self.root).relative_to(self.root)).as_posix()}"


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def gather(folder: str | os.PathLike, other: str | os.PathLike) -> dict[str, Any]:
    """Copy the images of ``other`` (any depth; hidden files and links left out) into
    ``folder``'s ``unlabelled/``, keeping their places below ``other``: ``sightline label FOLDER
    --pool OTHER``. ``other`` is left as it is (a copy: nothing of the user's moves or goes); a
    file whose bytes are in the pool already is not copied again, and no file is replaced (a
    taken name gets ``-1``, ``-2``...). Returns {"copied": [...], "known": N, "skipped": [(path,
    why)]} (paths relative to ``folder``)."""
    import hashlib

    from sightline.data.images import is_image_file
    from sightline.fileio import atomic_write_bytes

    root, source = Path(folder).expanduser().resolve(), Path(other).expanduser()
    if not source.is_dir():
        raise DataError(f"--pool {other}: not a folder of images")
    source = source.resolve()
    pool = pool_folder(root)
    if source == root or root in source.parents or source in root.parents:
        raise DataError(
            f"--pool {other}: the images to label must be in a folder of their own, outside "
            f"{root} (or already in its {pool.name}/)"
        )

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    known = {digest(p.read_bytes()) for p in waiting_files(root)}
    copied, skipped, seen = [], [], 0
    for dirpath, dirnames, filenames in os.walk(source):  # os.walk descends into no link
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or not is_image_file(name) or path.is_symlink():
                continue
            try:
                data = path.read_bytes()
            except OSError as e:
                skipped.append((str(path), e.strerror or str(e)))
                continue
            key = digest(data)
            if key in known:
                seen += 1
                continue
            known.add(key)
            target = _free(pool / path.relative_to(source))
            inside(root, target.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, data, root=root)
            copied.append(target.relative_to(root).as_posix())
    return {"copied": copied, "known": seen, "skipped": skipped}


def _free(path: Path) -> Path:
    """``path``, or the first of ``name-1.ext``, ``name-2.ext``... that does not exist."""
    n, out = 0, path
    while out.exists():
        n += 1
        out = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return out
