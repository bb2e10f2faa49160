"""Images waiting for their labels: a dataset folder's ``unlabelled/`` (or ``unlabeled/``), any
depth, beside its class folders or its split folders. It is never a class nor a split
(``folders.py``); the labelling loop (``sightline.labelling``) files its images into classes.
No link is followed: a linked file or folder in it is left out, as it could lead out of the
dataset."""

from __future__ import annotations

import os
from pathlib import Path

from sightline.data.images import is_image_file

POOL_NAMES = ("unlabelled", "unlabeled")


def pool_folder(root: str | os.PathLike) -> Path:
    """The folder's pool where one exists (any case), else where it would be made."""
    root = Path(root)
    if root.is_dir():
        for name in sorted(os.listdir(root)):
            if name.lower() in POOL_NAMES and (root / name).is_dir():
                return root / name
    return root / POOL_NAMES[0]


def waiting_files(root: str | os.PathLike) -> list[Path]:
    """The image files waiting in ``root``'s pool, sorted; hidden ones and links left out."""
    folder = pool_folder(root)
    if folder.is_symlink() or not folder.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk descends into no link
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            here / n
            for n in filenames
            if not n.startswith(".") and is_image_file(n) and not (here / n).is_symlink()
        )
    return sorted(found)
