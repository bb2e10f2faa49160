"""Building an image folder from the browser: a new dataset, its classes, images added to a
class. Everything is an ordinary folder on disk (``dataset/class/file``) that
``sightline train`` reads.

Names from users are sanitised (letters, digits, spaces, ``-``, ``_`` and ``.``; never a path,
never hidden); every image is decoded before it is kept, and kept as the bytes it came in,
under the extension of its real format. A file is written to a temporary name and then linked
to a free final name, which fails rather than replace a file that appeared meanwhile: two
uploads at once never lose one another's images. No symbolic link inside a dataset is followed
(``fileio.inside``): a split or class folder that is one is refused, never written through.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from sightline.data.folders import find_splits
from sightline.data.images import MAX_PIXELS, image_size, is_image_file, open_image
from sightline.data.labels_file import holds_labels_file
from sightline.data.pool import POOL_NAMES
from sightline.errors import DataError, ImageError
from sightline.fileio import inside

NAME = re.compile(r"^[\w][\w .\-]{0,63}$", re.UNICODE)  # a dataset or class name
_FORMATS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "GIF": "gif", "WEBP": "webp", "TIFF": "tif"}
_STEM = re.compile(r"[^\w\-]+", re.UNICODE)


def clean_name(name: str, what: str) -> str:
    """``name`` stripped, or DataError saying what a name may hold."""
    text = (name or "").strip()
    if not NAME.match(text) or text in (".", "..") or text.endswith("."):
        raise DataError(
            f"{what} name {text[:80]!r} is not allowed: use 1-64 letters, digits, spaces, '-', "
            "'_' or '.', starting with a letter or digit"
        )
    if what == "class" and text.lower() in POOL_NAMES:
        raise DataError(
            f"{text!r} is the folder of images waiting for a label, not a class: name the class "
            "otherwise"
        )
    return text


def is_dataset(folder: Path) -> bool:
    """Whether ``folder`` holds class folders with images, a labels file, or an ``unlabelled/``
    folder (else it may hold datasets)."""
    if holds_labels_file(folder):
        return True
    try:
        train = find_splits(folder)["train"]
        classes = [p for p in train.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if any(c.name.lower() in POOL_NAMES for c in classes):
            return True  # images waiting for their labels: a dataset to label
        return any(is_image_file(f) for c in classes for f in c.iterdir() if f.is_file())
    except (DataError, OSError):
        return False


def datasets_in(folder: Path) -> list[Path]:
    """The datasets a --data-dir names: itself when it is one, else each visible subfolder."""
    folder = Path(folder)
    if is_dataset(folder) or not folder.is_dir():
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def new_dataset(parent: Path, name: str) -> Path:
    """A new, empty dataset folder ``parent/name`` (DataError if it exists)."""
    folder = Path(parent) / clean_name(name, "dataset")
    try:
        folder.mkdir(parents=False)
    except FileExistsError:
        raise DataError(f"a dataset named {folder.name!r} exists already") from None
    except FileNotFoundError:
        Path(parent).mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    return folder


def class_folder(dataset: Path, name: str, create: bool = False) -> Path:
    """The folder of class ``name`` (the train split's, for a train/test layout);
    ``LinkRefusedError`` when it, or its split folder, is a symbolic link."""
    name = clean_name(name, "class")
    train = find_splits(dataset)["train"] if any(dataset.iterdir()) else dataset
    folder = inside(dataset, train / name)
    if create:
        folder.mkdir(exist_ok=True)
    elif not folder.is_dir():
        raise DataError(f"no class {name!r} in dataset {dataset.name}")
    return folder


def class_folders(dataset: Path, name: str) -> list[Path]:
    """The folders of class ``name`` in every split it is in (DataError: in none);
    ``LinkRefusedError`` when one of them is a symbolic link."""
    name = clean_name(name, "class")
    folders = [inside(dataset, s / name) for s in find_splits(dataset).values()]
    found = [f for f in folders if f.is_dir()]  # each checked above: no link is looked through
    if not found:
        raise DataError(f"no class {name!r} in dataset {dataset.name}")
    return found


def rename_class(dataset: Path, old: str, new: str) -> Path:
    """Rename a class in every split it is in (DataError if the new name is taken)."""
    new = clean_name(new, "class")
    moves = [(src, inside(dataset, src.parent / new)) for src in class_folders(dataset, old)]
    if any(dst.exists() for _, dst in moves):
        raise DataError(f"a class named {new!r} exists already in {dataset.name}")
    for src, dst in moves:
        os.rename(src, dst)
    return moves[0][1]


@dataclass(frozen=True)
class ClassImage:
    name: str  # the file's name in its class folder
    version: str  # changes when the file does (its time and size): a picture of it may be cached


def class_images(dataset: Path, name: str) -> list[ClassImage]:
    """The images directly in class ``name``'s folder (the train split's), newest first. Only
    regular files: a symbolic link, a hidden file or a sub-folder is not listed."""
    found = []
    with os.scandir(class_folder(dataset, name)) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not is_image_file(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed while listed
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((info.st_mtime_ns, entry.name, info.st_size))
    found.sort(reverse=True)  # newest first; one upload's files: the last saved first
    return [ClassImage(n, f"{t:x}-{size:x}") for t, n, size in found]


def class_image(dataset: Path, name: str, file: str) -> Path:
    """The path of image ``file`` directly in class ``name``'s folder, for a ``file`` a client
    named: DataError unless it is one plain image file name (no folder, no '..', not hidden),
    ``LinkRefusedError`` when it is a symbolic link. It may not exist: the caller opens it
    (``fileio.open_inside``) or moves it."""
    folder = class_folder(dataset, name)
    plain = (
        0 < len(file) <= 255
        and file == Path(file).name
        and not any(c in file for c in "/\\\0")
        and not file.startswith(".")
    )
    if not plain or not is_image_file(file):
        raise DataError(
            f"{file[:80]!r} is not an image file name in class {folder.name!r}: give a name "
            "its listing gave (one file, no folder, a PNG, JPEG, BMP, GIF or WebP)"
        )
    return inside(dataset, folder / file)


@dataclass
class Added:
    saved: list[str] = field(default_factory=list)  # the new files' names
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (upload name, why)


def add_images(
    folder: Path,
    files: list[tuple[str, bytes]],
    max_pixels: int = MAX_PIXELS,
    root: Path | None = None,
) -> Added:
    """Keep each upload that is a readable image in class ``folder``; list the others.
    ``root``: the dataset ``folder`` is in; no folder on the way may be a symbolic link, checked
    before each file is written (``LinkRefusedError``: nothing is written through one)."""
    added = Added()
    for name, data in files:
        try:
            image_size(data, name, max_pixels)  # the header first: no bomb is decoded
            open_image(data, name, max_pixels=max_pixels)  # all of it decodes
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
            ext = _FORMATS.get(fmt)
            if ext is None:
                raise ImageError(name, f"{fmt or 'these'} images are not kept; send JPEG or PNG")
        except ImageError as e:
            added.skipped.append((name, e.reason))
            continue
        if root is not None:
            inside(root, folder)
        added.saved.append(_keep(folder, name, ext, data).name)
    return added


def _keep(folder: Path, name: str, ext: str, data: bytes) -> Path:
    stem = _STEM.sub("-", Path(name).stem).strip("-_")[:60] or "image"
    tmp = folder / f".upload-{secrets.token_hex(8)}.tmp"
    new = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(tmp, new | getattr(os, "O_BINARY", 0), 0o666), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        for n in range(10_000):
            final = folder / (f"{stem}.{ext}" if n == 0 else f"{stem}-{n}.{ext}")
            try:
                os.link(tmp, final)  # fails if the name is taken: never replaces
                return final
            except FileExistsError:
                continue
        raise DataError(f"no free name for {name!r} in {folder}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
