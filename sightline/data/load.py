"""``load_dataset``: a built-in dataset name or a folder of images → a ready ``Dataset``.

The order of operations is fixed: read everything, keep the wanted classes, convert (built-ins
only, when channels/size are asked for), carve the validation split, then resolve the
``Preprocess`` statistics from the final training images — so the mean/std saved with a model
are those of exactly the images it was trained on.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sightline.data.convert import convert_images  # noqa: F401  (moved to convert.py; still importable here)
from sightline.data.dataset import (
    Dataset,
    ImageSet,
    channel_stats,
    looks_dark_background,
    split_validation,
)
from sightline.data.dataset_files import dataset_files
from sightline.data.download import DEFAULT_TIMEOUT, Progress, resolve_cache_dir
from sightline.data.folders import Observer, load_folder
from sightline.data.image_options import parse_size
from sightline.data.info import dataset_info  # noqa: F401  (moved to info.py; still importable here)
from sightline.data.preprocess import Preprocess, check_image_options
from sightline.data.readers import read_cifar_bin, read_idx
from sightline.data.registry import DatasetSpec, find_dataset_spec, list_datasets
from sightline.errors import DataError
from sightline.fileio import atomic_write_bytes

ValSplit = float | str | None


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    classes: Sequence[str | int] | None = None,
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
    progress: Progress = True,
    timeout: float = DEFAULT_TIMEOUT,
    observe: Observer | None = None,
) -> Dataset:
    """Load a built-in dataset (name or alias) or an image folder, ready for training.

    Args:
        name_or_path: ``fashion-mnist``, ``mnist``, ``cifar10`` (or an alias), or a folder with
            one subfolder per class (optionally under train/ val/ test/). A registry name wins
            over a same-named folder in the current directory; write ``./mnist`` for the folder.
        classes: keep only these classes (names or indices, or one comma-separated string),
            relabelled 0..k-1 in this order.
        val_split: a fraction in (0, 1) carved from train (seeded, stratified); ``"test"`` uses
            the test split as validation; 0 or None for no validation. A folder's own val/ is
            used as is when val_split is a fraction.
        calibration_split: where there is no validation split, a fraction (seeded,
            stratified) held out from train that training never sees, to fit the run's
            calibration and "none of these" threshold on (the recipes keep 2 %).
        seed: seed of the validation and calibration splits.
        cache_dir, mirror: where dataset files are cached / looked up first (see download.py).
        channels, size, resize: for folders, how images are decoded (None = detect). For
            built-ins, None keeps the stored form; given values convert the tensors (1 ↔ 3
            channels, bilinear antialiased resize with the resize mode).
        flip: whether horizontal flips are allowed in augmentation (default: per dataset).
        fit: how outside photos are framed for this data: "frame" (whole photo), "object" or
            "digit" (see ``sightline.data.framing``); default: the dataset's own ("object" for
            Fashion-MNIST, "digit" for MNIST, "frame" for CIFAR-10 and folders).
        interpolation: "bilinear" (None: the default) or "bicubic", for every resize of the
            images, here and in the saved ``Preprocess`` (pretrained weights say which).
        progress: download progress on stderr (True: if a terminal; "always"; False).
        observe: a folder's every file as decoded (``load_folder``); built-ins: unused.
    """
    check_load_options(channels, resize, fit, interpolation)
    interpolation = interpolation or "bilinear"
    spec = find_dataset_spec(name_or_path) if isinstance(name_or_path, str) else None
    if spec is not None:
        ds = _load_builtin(spec, cache_dir, mirror, progress, timeout)
        dark = spec.dark_background
    else:
        path = folder_path(name_or_path)
        ds = load_folder(path, channels=channels, size=size, resize=resize, observe=observe,
                         interpolation=interpolation)  # fmt: skip
        dark = None  # detected below from the final training images

    ds = arrange(
        ds, spec, classes, channels, size, resize, val_split, calibration_split, seed, interpolation
    )
    train_images = ds.train.images
    mean, std = channel_stats(train_images)
    if dark is None:
        dark = looks_dark_background(train_images)
    c, h, w = ds.input_shape
    base_resize, fit, default_flip = dataset_choices(ds, spec, resize, fit)
    preprocess = Preprocess(c, (h, w), base_resize, mean, std, dark, fit=fit,
                            interpolation=interpolation)  # fmt: skip
    options = load_options(
        name_or_path, spec, classes, val_split, calibration_split, seed, channels, size, resize,
        flip, fit, cache_dir, mirror, interpolation,
    )  # fmt: skip
    return replace(
        ds,
        preprocess=preprocess,
        flip=default_flip if flip is None else bool(flip),
        load_options=options,
    )


def dataset_choices(
    ds: Dataset, spec: DatasetSpec | None, resize: str | None, fit: str | None
) -> tuple[str, str, bool]:
    """The resize mode, photo framing and default flip of a loaded (or outlined) dataset: the
    caller's, else the built-in's, else what the folder's images gave."""
    base_resize = resize or (spec.resize if spec is not None else ds.preprocess.resize)
    fit = fit or (spec.fit if spec is not None else ds.preprocess.fit)
    return base_resize, fit, spec.flip if spec is not None else ds.flip


def check_load_options(
    channels: int | None, resize: str | None, fit: str | None, interpolation: str | None = None
) -> None:
    """``preprocess.check_image_options``: the one check of these options."""
    check_image_options(channels, resize, fit, interpolation)


def folder_path(name_or_path: str | os.PathLike) -> Path:
    """The folder ``name_or_path`` names (not a built-in's name); DataError when there is none."""
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise DataError(
            f"{str(name_or_path)!r} is neither a built-in dataset nor an existing folder; "
            f"built-in datasets are: {', '.join(list_datasets())} — or give the path of a "
            f"folder with one subfolder of images per class, or of a labels file (.csv with "
            f"path,label[,split] rows)"
        )
    return path


def arrange(
    ds: Dataset,
    spec: DatasetSpec | None,
    classes: Sequence[str | int] | str | None,
    channels: int | None,
    size: int | Sequence[int] | None,
    resize: str | None,
    val_split: ValSplit,
    calibration_split: float,
    seed: int,
    interpolation: str = "bilinear",
) -> Dataset:
    """The splits as read → the splits trained on, in the fixed order: keep the wanted classes,
    convert (built-ins only, when channels/size are asked for), carve the validation split, then
    the calibration split. ``outline.py`` runs the same steps on labels alone."""
    if isinstance(classes, str):  # "cat,dog" from a command line or a config file
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if classes:
        ds = ds.select_classes(list(classes))
    if spec is not None and (channels is not None or size is not None):
        ds = _convert_builtin(ds, channels, parse_size(size), resize or spec.resize, interpolation)
    ds = _apply_val_split(ds, val_split, seed)
    if calibration_split and ds.val is None:
        if not 0.0 < float(calibration_split) < 1.0:
            raise DataError(f"calibration_split must be a fraction of train in (0, 1), not "
                            f"{calibration_split!r}")  # fmt: skip
        train, held = split_validation(ds.train, float(calibration_split), seed)
        ds = replace(ds, train=train, calibration=held)
    return ds


def load_options(
    name_or_path: str | os.PathLike, spec: DatasetSpec | None, classes: Any, val_split: ValSplit,
    calibration_split: float, seed: int, channels: int | None, size: Any, resize: str | None,
    flip: bool | None, fit: str | None, cache_dir: Any, mirror: Any,
    interpolation: str = "bilinear",
) -> dict[str, Any]:  # fmt: skip
    """JSON-ready arguments that rebuild this dataset (a run saves them for resume / evaluate)."""
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    options: dict[str, Any] = {
        "name_or_path": spec.name
        if spec is not None
        else str(Path(name_or_path).expanduser().resolve()),
        "classes": list(classes) if classes else None,
        "val_split": val_split,
        **({"calibration_split": calibration_split} if calibration_split else {}),
        "seed": seed,
        "channels": channels,
        "size": list(parse_size(size)) if size is not None else None,
        "resize": resize,
        "flip": flip,
        "fit": fit,
    }
    options.update({k: str(v) for k, v in (("cache_dir", cache_dir), ("mirror", mirror)) if v})
    if interpolation != "bilinear":  # said only where not the default: older runs read the same
        options["interpolation"] = interpolation
    return options


# ----------------------------------------------------------------------- built-ins
def _load_builtin(
    spec: DatasetSpec, cache_dir: Any, mirror: Any, progress: Progress, timeout: float
) -> Dataset:
    files = dataset_files(
        spec, cache_dir=cache_dir, mirror=mirror, progress=progress, timeout=timeout
    )
    train = _decoded_split(
        spec, spec.train_files, files, decoded_path(spec, spec.train_files, cache_dir)
    )
    test = _decoded_split(
        spec, spec.test_files, files, decoded_path(spec, spec.test_files, cache_dir)
    )
    for split, s in (("train", train), ("test", test)):
        if tuple(s.images.shape[1:]) != spec.shape:
            raise DataError(
                f"{spec.name} {split} images have shape {tuple(s.images.shape[1:])}, expected {spec.shape}"
            )
    c, h, w = spec.shape
    placeholder = Preprocess(c, (h, w), spec.resize, dark_background=spec.dark_background)
    return Dataset(spec.name, list(spec.classes), train, None, test, placeholder, flip=spec.flip)


def _read_split(spec: DatasetSpec, names: tuple[str, ...], files: dict[str, Path]) -> ImageSet:
    if spec.format == "idx":
        return _read_idx_pair(files[names[0]], files[names[1]])
    if spec.format == "cifar-bin":
        return _read_cifar([files[f] for f in names])
    raise DataError(
        f"{spec.name}: unknown file format {spec.format!r}"
    )  # pragma: no cover - registry invariant


def decoded_path(spec: DatasetSpec, names: tuple[str, ...], cache_dir: Any) -> Path:
    """Where the decoded copy of a split (made of files ``names``) is cached: named by the
    source files' md5s, so a changed source never finds an old copy."""
    key = hashlib.sha256("".join(spec.file(n).md5 for n in names).encode()).hexdigest()[:16]
    return resolve_cache_dir(cache_dir) / "decoded" / f"{spec.name}-{key}.npz"


def decoded_labels(
    spec: DatasetSpec, names: tuple[str, ...], cache_dir: Any
) -> torch.Tensor | None:
    """The labels of a split from its decoded copy, without reading its images (an npz member
    is read alone); None when there is no readable copy (not yet loaded on this machine)."""
    path = decoded_path(spec, names, cache_dir)
    with (
        contextlib.suppress(OSError, ValueError, KeyError, zipfile.BadZipFile),
        np.load(path, allow_pickle=False) as z,
    ):
        return torch.from_numpy(z["labels"])
    return None


def _decoded_split(
    spec: DatasetSpec, names: tuple[str, ...], files: dict[str, Path], path: Path
) -> ImageSet:
    """A split read from its (md5-checked) files, via a decoded copy in the cache.

    Decompressing and parsing Fashion-MNIST takes ~0.4 s on every command that loads it (every
    plot and evaluation); loading the decoded arrays takes ~0.05 s. The copy is named by the
    source files' md5s and carries a CRC of its bytes, so a changed source or a damaged copy is
    never used: it is decoded again. No writable cache: the files are simply read each time.
    """
    with contextlib.suppress(OSError, ValueError, KeyError, zipfile.BadZipFile):
        with np.load(path, allow_pickle=False) as z:
            images, labels, crc = z["images"], z["labels"], int(z["crc"])
        if zlib.crc32(labels.tobytes(), zlib.crc32(images.tobytes())) == crc and len(images) == len(
            labels
        ):
            return ImageSet(torch.from_numpy(images), torch.from_numpy(labels))
    part = _read_split(spec, names, files)
    images, labels = part.images.numpy(), part.labels.numpy()
    buf = io.BytesIO()
    np.savez(
        buf,
        images=images,
        labels=labels,
        crc=np.int64(zlib.crc32(labels.tobytes(), zlib.crc32(images.tobytes()))),
    )
    with contextlib.suppress(OSError):
        atomic_write_bytes(path, buf.getvalue())
    return part


def _read_idx_pair(images_path: Path, labels_path: Path) -> ImageSet:
    images = read_idx(images_path, expect="images")
    labels = read_idx(labels_path, expect="labels")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images):,} images but {labels_path} {len(labels):,} labels"
        )
    # frombuffer arrays are read-only views of the file bytes; torch wants its own memory.
    return ImageSet(
        torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
    )


def _read_cifar(paths: list[Path]) -> ImageSet:
    parts = [read_cifar_bin(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels))


def _convert_builtin(
    ds: Dataset, channels: int | None, size: tuple[int, int] | None, resize: str,
    interpolation: str = "bilinear",
) -> Dataset:  # fmt: skip
    def conv(s: ImageSet | None) -> ImageSet | None:
        if s is None:
            return None
        images = convert_images(s.images, channels, size, resize, interpolation=interpolation)
        return ImageSet(images, s.labels, s.paths)

    return replace(ds, train=conv(ds.train), val=conv(ds.val), test=conv(ds.test))


# ----------------------------------------------------------------------- validation split
def _apply_val_split(ds: Dataset, val_split: ValSplit, seed: int) -> Dataset:
    if isinstance(val_split, str):
        key = val_split.strip().lower()
        if key == "test":
            if ds.test is None:
                raise DataError(
                    f"val_split='test' needs a test split, but {ds.name} has none; use a fraction such as 0.1"
                )
            return replace(ds, val=ds.test)
        if key in ("", "none", "no"):
            val_split = None
        else:
            try:
                val_split = float(key)
            except ValueError:
                raise DataError(
                    f"val_split must be a fraction such as 0.1, 'test' or 0, not {val_split!r}"
                ) from None
    if not val_split:
        return replace(ds, val=None)
    if ds.val is not None:  # the folder's own val/ wins over carving one from train
        return ds
    if not 0.0 < float(val_split) < 1.0:
        raise DataError(
            f"val_split must be between 0 and 1 (a fraction of train), 'test' or 0; got {val_split}"
        )
    train, val = split_validation(ds.train, float(val_split), seed)
    return replace(ds, train=train, val=val)
