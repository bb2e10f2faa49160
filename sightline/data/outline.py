"""A dataset's outline: its classes, split sizes and input shape, known without decoding it.

What a training plan needs of the data (``plan.resolve.complete``: the folder recipe counts the
training images, the device rules weigh the pixels) is known before any image is decoded: a
folder's file inventory and a sample of its image headers, a built-in's registry entry and the
labels of its decoded copy. ``outline_dataset`` gives them as a ``Dataset`` whose images live
on PyTorch's "meta" device: shapes without pixels. So the class selection, the validation and
calibration splits are the very code ``load_dataset`` runs (``load.arrange``), and anything
that tries to read a pixel fails loudly instead of seeing zeros.

It answers a plan preview (``plan.preview``) in well under a second where loading a folder
decodes every image. Where it differs from the loaded data, it says so in its notes: a file
that will not decode is counted here (loading skips it), and a folder's channels come from the
files' colour modes (loading also looks at the pixels: a gray image saved as RGB trains as 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from sightline.data.dataset import Dataset, ImageSet
from sightline.data.folder_choices import choose_size, class_notes, probe_size, sample_evenly
from sightline.data.folders import DEFAULT_RESIZE, GRAY_MODES, list_images
from sightline.data.image_options import parse_size
from sightline.data.images import IMAGE_EXTENSIONS
from sightline.data.load import (
    ValSplit,
    arrange,
    check_load_options,
    dataset_choices,
    decoded_labels,
    folder_path,
    load_options,
)
from sightline.data.preprocess import Preprocess
from sightline.data.registry import DatasetSpec, find_dataset_spec
from sightline.errors import DataError

PROBE_WORKERS = 8  # header reads wait on the disk, not the CPU


def outline_dataset(
    name_or_path: str | os.PathLike,
    *,
    classes: Sequence[str | int] | str | None = None,
    val_split: ValSplit = 0.1,
    calibration_split: float = 0.0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    channels: int | None = None,
    size: int | Sequence[int] | None = None,
    resize: str | None = None,
    flip: bool | None = None,
    fit: str | None = None,
    interpolation: str | None = None,
) -> Dataset | None:
    """The outline of what ``load_dataset(name_or_path, <the same options>)`` would load, or
    None for a built-in dataset not yet loaded on this machine (its labels are not known; it
    is never downloaded here). The same ``DataError`` as loading for a missing folder, a
    folder without class folders, an unknown class or a bad option."""
    check_load_options(channels, resize, fit, interpolation)
    interpolation = interpolation or "bilinear"
    spec = find_dataset_spec(name_or_path) if isinstance(name_or_path, str) else None
    if spec is not None:
        ds = _builtin(spec, cache_dir)
        if ds is None:
            return None
    else:
        ds = _folder(folder_path(name_or_path), channels, size, resize)
    ds = arrange(ds, spec, classes, channels, size, resize, val_split, calibration_split, seed)
    c, h, w = ds.input_shape
    base_resize, fit, default_flip = dataset_choices(ds, spec, resize, fit)
    dark = spec.dark_background if spec is not None else False
    # The statistics and a folder's background need the pixels: defaults stand in (no plan
    # rule reads them).
    preprocess = Preprocess(
        c, (h, w), base_resize, dark_background=dark, fit=fit, interpolation=interpolation
    )
    options = load_options(
        name_or_path, spec, classes, val_split, calibration_split, seed, channels, size, resize,
        flip, fit, cache_dir, mirror, interpolation,
    )  # fmt: skip
    return Dataset(
        name=ds.name,
        classes=ds.classes,
        train=ds.train,
        val=ds.val,
        test=ds.test,
        preprocess=preprocess,
        flip=default_flip if flip is None else bool(flip),
        load_options=options,
        notes=ds.notes,
        calibration=ds.calibration,
    )


def _placeholder(n: int, shape: Sequence[int]) -> torch.Tensor:
    return torch.empty((n, *shape), dtype=torch.uint8, device="meta")


def _builtin(spec: DatasetSpec, cache_dir: Any) -> Dataset | None:
    train = decoded_labels(spec, spec.train_files, cache_dir)
    test = decoded_labels(spec, spec.test_files, cache_dir)
    if train is None or test is None:
        return None
    c, h, w = spec.shape
    return Dataset(
        spec.name,
        list(spec.classes),
        ImageSet(_placeholder(len(train), spec.shape), train),
        None,
        ImageSet(_placeholder(len(test), spec.shape), test),
        Preprocess(c, (h, w), spec.resize, dark_background=spec.dark_background),
        flip=spec.flip,
    )


def _folder(
    root: Path, channels: int | None, size: int | Sequence[int] | None, resize: str | None
) -> Dataset:
    """A folder's outline from its file inventory (as ``load_folder`` finds the files) and the
    headers of a sample of its training images (as ``load_folder`` chooses the size)."""
    listing = list_images(root)
    scans, classes = listing.scans, listing.classes
    if not any(files for scan in scans.values() for files in scan.values()):
        raise DataError(
            f"no image files found in {root} (looked for {', '.join(IMAGE_EXTENSIONS)} in the class folders)"
        )
    train_files = [p for files in scans["train"].values() for p in files]
    sample = sample_evenly(train_files)
    size_hw = parse_size(size)
    with ThreadPoolExecutor(PROBE_WORKERS) as pool:
        if size_hw is None:
            sizes = [s for s in pool.map(probe_size, sample) if s is not None]
            size_hw, size_note = choose_size(
                sizes, sampled_from=len(train_files) if len(sample) < len(train_files) else None
            )
        else:
            size_note = f"size {size_hw[0]}x{size_hw[1]}: as given"
        modes = [] if channels is not None else list(pool.map(_header_mode, sample))
    if channels is not None:
        channels_note = f"channels {channels}: as given"
    elif all(m in GRAY_MODES for m in modes if m is not None):
        channels, channels_note = 1, "channels 1: every image is gray"
    else:  # loading looks at every image's pixels too; a preview reads headers only
        channels, channels_note = 3, "channels 3: there are colour files (1 if all turn out gray)"
    counts = [len(scans["train"][c]) for c in classes]
    notes = [channels_note, size_note, *class_notes(classes, counts)]
    sets = {
        split: ImageSet(
            _placeholder(sum(len(f) for f in scan.values()), (channels, *size_hw)),
            torch.tensor(
                [classes.index(c) for c, files in scan.items() for _ in files], dtype=torch.int64
            ),
        )
        for split, scan in scans.items()
    }
    return Dataset(
        name=listing.name,
        classes=classes,
        train=sets["train"],
        val=sets.get("val"),
        test=sets.get("test"),
        preprocess=Preprocess(channels, size_hw, resize or DEFAULT_RESIZE),
        flip=True,
        notes=notes,
    )


def _header_mode(path: Path) -> str | None:
    """An image file's colour mode from its header alone; None when it cannot be read."""
    try:
        with Image.open(path) as img:  # PIL's warnings: data/images.py's filters
            return img.mode
    except Exception:  # noqa: BLE001 - an unreadable header: loading skips that file
        return None
