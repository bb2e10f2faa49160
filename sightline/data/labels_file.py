"""Labels as they come: a CSV file that names each image and its class, instead of one folder per
class.

    path,label,split          (a header row; split is optional)
    photos/IMG_0001.jpg,cat,train
    photos/IMG_0002.jpg,dog,
    more/x.png,cat,test

Paths are relative to the CSV file's folder and must stay inside it (no absolute paths, no
``..``, no link leading out): the same file then works on another machine and in the server.
``split`` is train, val (valid, validation) or test; empty means train. The classes are the
labels, sorted as a folder's class folders are. Everything wrong with the file is one clear
``DataError`` naming the line: an unknown column, an empty label, a file that is not there, a
path listed twice. Only the images themselves may be unreadable: those are skipped and
reported, as in a folder.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from sightline.errors import DataError

COLUMNS = ("path", "label", "split")
SPLITS = {"": "train", "train": "train", "val": "val", "valid": "val", "validation": "val",
          "test": "test"}  # fmt: skip
MAX_BYTES = 256 * 1024 * 1024  # a labels file larger than this is not one
SHOWN = 5  # examples named in an error


def is_labels_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a labels file (an existing ``.csv`` file)."""
    p = Path(path).expanduser()
    return p.suffix.lower() == ".csv" and p.is_file()


def labels_files_in(folder: str | os.PathLike) -> list[str]:
    """The names of the labels files directly in ``folder`` (visible ``.csv`` files, no links:
    what a server offers to train on)."""
    folder = Path(folder)
    try:
        return sorted(
            p.name for p in folder.iterdir()
            if p.suffix.lower() == ".csv" and not p.name.startswith(".") and not p.is_symlink()
            and p.is_file()
        )  # fmt: skip
    except OSError:
        return []


def holds_labels_file(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a labels file, by its first line (path and label columns): a
    folder of datasets with some other CSV in it (results, notes) is still a folder of datasets."""
    for name in labels_files_in(folder):
        try:
            with open(Path(folder) / name, encoding="utf-8-sig", errors="replace") as f:
                header = next(csv.reader([f.readline(4096)]), [])
        except OSError:
            continue
        if {"path", "label"} <= {h.strip().lower() for h in header}:
            return True
    return False


def read_labels_file(path: str | os.PathLike) -> dict[str, dict[str, list[Path]]]:
    """split → class → image files, as ``scan_class_folders`` gives a folder's (classes
    sorted, files in the file's order); DataError for anything wrong with the file."""
    path = Path(path).expanduser()
    rows = _rows(path)
    base = path.parent.resolve()
    scans: dict[str, dict[str, list[Path]]] = {}
    seen: dict[Path, int] = {}
    missing: list[str] = []
    for line, row in rows:
        text, label, split = row["path"].strip(), row["label"].strip(), row["split"]
        if not text:
            raise DataError(f"{path}, line {line}: the path is empty")
        if not label:
            raise DataError(
                f"{path}, line {line}: {text} has an empty label (every image needs one)"
            )
        where = SPLITS.get(split.strip().lower())
        if where is None:
            raise DataError(f"{path}, line {line}: split {split!r} is not one of train, val, test "
                            "(or empty for train)")  # fmt: skip
        file = _inside(base, text, path, line)
        if file in seen:
            raise DataError(f"{path}, line {line}: {text} is listed twice (first on line "
                            f"{seen[file]}); give each image one label")  # fmt: skip
        seen[file] = line
        if not file.is_file():
            missing.append(f"{text} (line {line})")
            continue
        scans.setdefault(where, {}).setdefault(label, []).append(file)
    if missing:
        raise DataError(
            f"{path}: {len(missing):,} listed files do not exist (paths are relative to "
            f"{base}): {', '.join(missing[:SHOWN])}{' ...' if len(missing) > SHOWN else ''}"
        )
    return _checked(path, scans)


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise DataError(f"labels file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path} is over {MAX_BYTES >> 20} MB: not a labels file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is fine
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text: save it as CSV (UTF-8)") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if "path" not in header or "label" not in header:
        raise DataError(
            f"{path}: the first line must name the columns path,label[,split], not "
            f"{','.join(header) or '(nothing)'}"
        )
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or len(set(header)) != len(header):
        what = f"unknown column {', '.join(unknown)}" if unknown else "a column named twice"
        raise DataError(f"{path}: {what}; the columns are path, label and (optionally) split")
    rows = []
    for line, values in enumerate(reader, 2):
        if not any(v.strip() for v in values):
            continue  # blank lines
        if len(values) > len(header):
            raise DataError(f"{path}, line {line}: {len(values)} values for {len(header)} "
                            "columns (a comma in a file name needs the name in quotes)")  # fmt: skip
        cells = dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))
        rows.append((line, {"split": "", **cells}))
    if not rows:
        raise DataError(f"{path} lists no images (only its header)")
    return rows


def _inside(base: Path, text: str, path: Path, line: int) -> Path:
    """The file ``text`` names, relative to ``base``; DataError when it leaves ``base``."""
    rel = Path(text.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"{path}, line {line}: {text} is not a path inside {base} (paths are "
                        "relative to the labels file's folder)")  # fmt: skip
    file = base / rel
    if file.is_symlink() or file.resolve() != file:  # a link, or a link on the way
        resolved = file.resolve()
        if base != resolved and base not in resolved.parents:
            raise DataError(f"{path}, line {line}: {text} is a link that leads out of {base}")
    return file


def _checked(
    path: Path, scans: dict[str, dict[str, list[Path]]]
) -> dict[str, dict[str, list[Path]]]:
    train = scans.get("train", {})
    if len(train) < 2:
        held = f"only {', '.join(train)}" if train else "none"
        raise DataError(f"{path}: a classifier needs at least 2 labels among the training images "
                        f"({held})")  # fmt: skip
    for split in ("val", "test"):
        extra = sorted(set(scans.get(split, {})) - set(train))
        if extra:
            raise DataError(f"{path}: labels {', '.join(extra)} of the {split} images have no "
                            "training images")  # fmt: skip
    out = {"train": {c: train[c] for c in sorted(train)}}
    for split in ("val", "test"):
        if split in scans:
            out[split] = {c: scans[split].get(c, []) for c in sorted(train)}
    return out
