"""The user's own images: one subfolder per class, optionally split into train/ val/ test/.

Accepted layouts::

    pets/cat/*.jpg  pets/dog/*.png                 (classes directly; val carved from train)
    pets/train/cat/...  pets/val/cat/...  pets/test/cat/...   (val/ may be valid/ or validation/)
    pets/labels.csv                                (path,label[,split] rows: labels_file.py)
    pets/unlabelled/**                             (images waiting for a label: never a class)

Files are found recursively inside each class folder; hidden files and folders and non-image
files are ignored. Every image is decoded through ``images.open_image`` on a small thread pool
(PIL releases the GIL while decoding), so odd modes (16-bit, CMYK, palette, alpha) are handled
in one place. A file that cannot be decoded is skipped and reported in ``Dataset.skipped`` —
one bad file never aborts the load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from sightline.data.dataset import Dataset, ImageSet, channel_stats, looks_dark_background
from sightline.data.folder_choices import (
    channels_note,
    choose_size,
    class_notes,
    is_gray_content,
    probe_size,
    sample_evenly,
)
from sightline.data.image_options import parse_size
from sightline.data.images import (
    IMAGE_EXTENSIONS,
    decode_side,
    is_image_file,
    normalize_mode,
    open_image,
)
from sightline.data.labels_file import is_labels_file, read_labels_file
from sightline.data.pool import POOL_NAMES
from sightline.data.preprocess import Preprocess, check_image_options
from sightline.errors import DataError, ImageError

SPLIT_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
DEFAULT_RESIZE = "pad"  # how a folder's images of another size are fitted, unless told
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


# (path, split, label, the decoded image or why it could not be decoded)
Observer = Callable[[Path, str, int, "Image.Image | str"], None]


@dataclass
class _Decoded:
    """One decoded file, prepared at the final size; 1 channel when it is gray."""

    path: str
    label: int
    stored: str  # its own colour mode (for the channels note)
    gray: bool  # gray by its mode, or by its content (R = G = B within GRAY_TOLERANCE)
    tensor: torch.Tensor


# ----------------------------------------------------------------------- layout
def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name.lower() not in POOL_NAMES
        ),
        key=lambda p: p.name,
    )


def find_splits(root: str | os.PathLike) -> dict[str, Path]:
    """The split folders of ``root``: {"train": root} for a plain class layout, else
    {"train": root/train, "val": root/val, "test": root/test} for those present."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is a file; give a folder with one subfolder of images per class")
    subdirs = _visible_dirs(root)
    by_lower = {p.name.lower(): p for p in subdirs}
    split_names = {n for names in SPLIT_NAMES.values() for n in names}
    train = by_lower.get("train")
    # A class may legitimately be called "train" (trains vs cars), so it is a split layout only
    # when every subfolder is a split name and train/ itself holds class folders.
    if train is None or not set(by_lower) <= split_names or not _visible_dirs(train):
        return {"train": root}
    splits = {"train": train}
    for split in ("val", "test"):
        present = [by_lower[n] for n in SPLIT_NAMES[split] if n in by_lower]
        if len(present) > 1:
            raise DataError(
                f"{root} has both {' and '.join(p.name + '/' for p in present)}: keep only one {split} folder"
            )
        if present:
            splits[split] = present[0]
    return splits


def scan_class_folders(folder: Path) -> dict[str, list[Path]]:
    """Class name → image files (recursive, sorted); hidden and non-image files left out."""
    classes = _visible_dirs(folder)
    out: dict[str, list[Path]] = {}
    for cdir in classes:
        files: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(cdir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(
                Path(dirpath) / n for n in filenames if not n.startswith(".") and is_image_file(n)
            )
        out[cdir.name] = sorted(files)
    return out


@dataclass
class Listing:
    """The images a folder (or a labels file: ``labels_file.py``) lists: split → class → files,
    and how messages name a split or a class of it."""

    root: Path
    scans: dict[str, dict[str, list[Path]]]
    places: dict[str, Path]  # a folder's split folders (a labels file: itself, for each split)
    labels_file: bool = False

    @property
    def classes(self) -> list[str]:
        return list(self.scans["train"])

    @property
    def name(self) -> str:
        return self.root.stem if self.labels_file else self.root.resolve().name

    def place(self, split: str, label: str | None = None) -> str:
        if self.labels_file:
            return (
                f"label {label!r} of {self.root}" if label else f"the {split} rows of {self.root}"
            )
        return str(self.places[split] / label) if label else str(self.places[split])


def list_images(root: str | os.PathLike) -> Listing:
    """What ``root`` lists: a folder's class folders (the layouts above), or the rows of a
    labels file; DataError for a layout training cannot read."""
    root = Path(root).expanduser()
    if is_labels_file(root):
        scans = read_labels_file(root)
        return Listing(root, scans, dict.fromkeys(scans, root), labels_file=True)
    splits = find_splits(root)
    scans = {name: scan_class_folders(folder) for name, folder in splits.items()}
    _check_classes(splits, scans, list(scans["train"]))
    return Listing(root, scans, splits)


# ----------------------------------------------------------------------- decoding
def _read(
    job: tuple[str, Path, int], channels: int | None, size: tuple[int, int], resize: str,
    preprocess: Preprocess | None, observe: Observer | None, interpolation: str = "bilinear",
) -> _Decoded | tuple[str, str]:  # fmt: skip
    """Decode one job's file (split, path, label), show it to ``observe``, and prepare it: a
    _Decoded, or (path, reason) when it cannot be used."""
    split, path, label = job
    try:
        img: Image.Image | str = open_image(path, max_side=decode_side(size))  # as predict does
    except ImageError as e:
        img = e.reason
    except Exception as e:  # any decoder surprise skips this one file only
        img = f"cannot decode image: {type(e).__name__}: {e}"
    if observe is not None:
        observe(path, split, label, img)
    if isinstance(img, str):
        return (str(path), img)
    return _prepare(path, label, img, channels, size, resize, preprocess, interpolation)


def _prepare(
    path: Path,
    label: int,
    img: Image.Image,
    channels: int | None,
    size: tuple[int, int],
    resize: str,
    preprocess: Preprocess | None,
    interpolation: str = "bilinear",
) -> _Decoded | tuple[str, str]:
    """One decoded image at the final size. ``preprocess``: prepare it exactly so (a run's own,
    framing and inversion included)."""
    try:
        stored = img.mode
        gray = img.mode in GRAY_MODES
        if not gray and channels is None:  # only an undecided channel count needs the look
            img = normalize_mode(img, 3)
            gray = is_gray_content(img)
        ch = channels or (1 if gray else 3)
        prepare = preprocess or Preprocess(ch, size, resize, interpolation=interpolation)
        return _Decoded(str(path), label, stored, gray, prepare.prepare_image(img))
    except ImageError as e:
        return (str(path), e.reason)
    except Exception as e:  # any decoder surprise skips this one file only
        return (str(path), f"cannot decode image: {type(e).__name__}: {e}")


def _finish(item: _Decoded, channels: int) -> torch.Tensor:
    x = item.tensor
    if x.shape[0] != channels:  # a gray image in an RGB dataset: L → RGB is a copy
        x = x.expand(channels, -1, -1).contiguous()
    return x


def _workers(workers: int | None) -> int:
    return workers or min(8, (os.cpu_count() or 2) + 2)


def _choose_size(train_files: list[Path], pool: ThreadPoolExecutor) -> tuple[tuple[int, int], str]:
    """The input size from the headers of (a sample of) the training files."""
    sample = sample_evenly(train_files)
    sizes = [s for s in pool.map(probe_size, sample) if s is not None]
    return choose_size(
        sizes, sampled_from=len(train_files) if len(sample) < len(train_files) else None
    )


# ----------------------------------------------------------------------- public
def load_folder(
    root: str | os.PathLike,
    *,
    channels: int | None = None,
    size: int | Sequence[int] | None = None,
    resize: str | None = None,
    workers: int | None = None,
    preprocess: Preprocess | None = None,
    observe: Observer | None = None,
    interpolation: str = "bilinear",
) -> Dataset:
    """Load an image-folder dataset (see the module docstring for layouts).

    Args:
        channels: 1 or 3; None = 1 if every image is gray (by its mode or its pixels), else 3.
        size: (height, width) or one int for square; None = chosen from the images (see
            ``folder_choices.choose_size``: the images' own size when they all share one of at
            most 64 px a side, else the median image's, at most 64 px a side).
        resize: "squash", "crop" or "pad" (default "pad") for images of another size.
        workers: decoding threads.
        interpolation: how images are resampled to ``size`` ("bilinear" or "bicubic").
        preprocess: prepare every image with this ``Preprocess`` (a run's own: its channels,
            size, framing and inversion; ``channels``, ``size`` and ``resize`` are then its),
            as predict prepares a photo, so a folder is scored as its files are predicted.
        observe: called with (path, split, label, the decoded image or why it could not be)
            for each file, from the decoding threads: a check of the folder reads the same
            decode (``health.FolderReader``), so each file is decoded once.

    Returns a ``Dataset`` with train, and val/test when those folders exist (val None
    otherwise: ``load_dataset`` carves it). ``skipped`` lists (file, reason) for unusable files;
    ``notes`` says what was chosen and why, the images per class, and warnings.
    """
    root = Path(root)
    if preprocess is not None:
        channels, size, resize = preprocess.channels, preprocess.size, preprocess.resize
    resize = resize or DEFAULT_RESIZE
    check_image_options(channels, resize)
    size_hw = parse_size(size)
    listing = list_images(root)
    scans, classes = listing.scans, listing.classes
    jobs = [
        (split, p, classes.index(c))
        for split, scan in scans.items()
        for c, files in scan.items()
        for p in files
    ]
    if not jobs:
        raise DataError(
            f"no image files found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)} in the class folders)"
        )
    with ThreadPoolExecutor(_workers(workers)) as pool:
        if (
            size_hw is None
        ):  # decided before decoding, so every image is decoded once, at its final size
            size_hw, size_note = _choose_size([p for split, p, _ in jobs if split == "train"], pool)
        else:
            size_note = f"size {size_hw[0]}x{size_hw[1]}: as given"
        final_size = size_hw
        read = lambda j: _read(j, channels, final_size, resize, preprocess, observe, interpolation)  # noqa: E731
        results = list(pool.map(read, jobs))
        decoded: dict[str, list[_Decoded]] = {s: [] for s in scans}
        skipped: list[tuple[str, str]] = []
        for (split, _, _), r in zip(jobs, results, strict=True):
            if isinstance(r, _Decoded):
                decoded[split].append(r)
            else:
                skipped.append(r)
        _check_readable(listing, decoded, skipped)

        every = [d for items in decoded.values() for d in items]
        final_channels = channels or (1 if all(d.gray for d in every) else 3)
        sets = {}
        for split, items in decoded.items():
            tensors = [_finish(d, final_channels) for d in items]
            sets[split] = ImageSet(
                torch.stack(tensors)
                if tensors
                else torch.empty((0, final_channels, *size_hw), dtype=torch.uint8),
                torch.tensor([d.label for d in items], dtype=torch.int64),
                [d.path for d in items],
            )

    train = sets["train"]
    mean, std = channel_stats(train.images)
    if preprocess is None:  # the data's own: its statistics and background polarity
        dark = looks_dark_background(train.images)
        preprocess = Preprocess(final_channels, size_hw, resize, mean, std, dark,
                                interpolation=interpolation)  # fmt: skip
    notes = [
        channels_note(final_channels, channels is not None, [(d.stored, d.gray) for d in every]),
        size_note,
    ]
    notes += class_notes(classes, train.class_counts(len(classes)), len(skipped))
    return Dataset(
        name=listing.name,
        classes=classes,
        train=train,
        val=sets.get("val"),
        test=sets.get("test"),
        preprocess=preprocess,
        flip=True,
        skipped=skipped,
        notes=notes,
    )


def _check_classes(
    splits: dict[str, Path], scans: dict[str, dict[str, list[Path]]], classes: list[str]
) -> None:
    train_dir = splits["train"]
    if not classes:
        raise DataError(
            f"{train_dir} has no class subfolders; put the images in one subfolder per class "
            f"(e.g. {train_dir}/cat/1.jpg, {train_dir}/dog/2.jpg)"
        )
    if len(classes) < 2:
        raise DataError(
            f"{train_dir} has only one class folder ({classes[0]}/); a classifier needs at least 2 classes"
        )
    for split, scan in scans.items():
        if split != "train" and set(scan) != set(classes):
            extra, lacking = sorted(set(scan) - set(classes)), sorted(set(classes) - set(scan))
            parts = [
                f"missing {', '.join(lacking)}" if lacking else "",
                f"extra {', '.join(extra)}" if extra else "",
            ]
            raise DataError(
                f"the class folders of {splits[split]} do not match those of {train_dir}: "
                f"{'; '.join(p for p in parts if p)}"
            )


def _check_readable(
    listing: Listing, decoded: dict[str, list[_Decoded]], skipped: list[tuple[str, str]]
) -> None:
    """Every train class needs at least one readable image; val/test may lack a class."""
    classes = listing.classes
    counts = torch.bincount(
        torch.tensor([d.label for d in decoded["train"]], dtype=torch.int64), minlength=len(classes)
    ).tolist()
    for c, n in zip(classes, counts, strict=True):
        if n == 0:
            files = listing.scans["train"][c]
            why = (
                f"all {len(files)} image files failed to decode (first: {_first_skip(skipped, files)})"
                if files
                else f"no image files ({', '.join(IMAGE_EXTENSIONS)})"
            )
            what = listing.place("train", c) if listing.labels_file else (
                f"class folder {listing.place('train', c)}")  # fmt: skip
            raise DataError(f"{what} has no readable images: {why}")
    for split in ("val", "test"):
        if split in decoded and not decoded[split]:
            fix = "" if listing.labels_file else "; remove it or add images to its class folders"
            raise DataError(f"{listing.place(split)} has no readable images{fix}")


def _first_skip(skipped: list[tuple[str, str]], files: list[Path]) -> str:
    names = {str(f) for f in files}
    for path, reason in skipped:
        if path in names:
            return f"{Path(path).name}: {reason}"
    return "?"
