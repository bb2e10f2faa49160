"""What ``sightline datasets`` shows for a built-in dataset, without loading it.

Kept apart from ``load.py`` (which needs PyTorch to decode and resize images) so that listing
the datasets starts in a fraction of a second.
"""

from __future__ import annotations

import os
from typing import Any

from sightline.data.dataset_files import file_locations
from sightline.data.download import resolve_cache_dir, resolve_mirror
from sightline.data.registry import get_dataset_spec


def dataset_info(
    name: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """What the CLI shows for a built-in dataset; presence is checked by name and size only."""
    spec = get_dataset_spec(name)
    where = file_locations(spec, cache_dir, mirror)
    mirror_root = resolve_mirror(mirror)
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "description": spec.description,
        "classes": list(spec.classes),
        "shape": list(spec.shape),
        "train": spec.num_train,
        "test": spec.num_test,
        "files": [{"filename": f.filename, "size": f.size, "md5": f.md5} for f in spec.files],
        "download_size": spec.download_size,
        "flip": spec.flip,
        "dark_background": spec.dark_background,
        "cache_path": str(resolve_cache_dir(cache_dir) / spec.folder),
        "mirror_path": str(mirror_root / spec.folder) if mirror_root is not None else None,
        "cached": where["cached"],
        "mirrored": where["mirrored"],
    }


def folder_info(root: str | os.PathLike) -> dict[str, Any]:
    """What a folder of images (or a labels file) holds, without decoding any: its splits and,
    per class, how many image files (as ``load_folder`` finds them); for a folder, its labels
    files too (``labels_files``: each one's classes, or why it cannot be read). ``DataError``
    if it is neither."""
    from pathlib import Path

    # folders.py needs PyTorch; this function is not on the path of `sightline datasets`
    from sightline.data.folders import list_images
    from sightline.data.labels_file import labels_files_in
    from sightline.errors import DataError

    root = Path(root)
    labels = [_labels_file_info(root / n) for n in labels_files_in(root)] if root.is_dir() else []
    waiting = waiting_images(root)
    try:
        listing = list_images(root)
    except DataError as e:
        if not labels and not waiting:
            raise
        # No class folders to train on, but labels files (each of those is the way to), or
        # images waiting for their labels (the labelling loop's).
        return {"name": root.resolve().name, "path": str(root.resolve()), "classes": [],
                "splits": {}, "images": 0, "error": str(e), "labels_files": labels,
                "waiting": waiting}  # fmt: skip
    splits = {
        split: {c: len(files) for c, files in scan.items()} for split, scan in listing.scans.items()
    }
    classes = listing.classes
    totals = {c: sum(counts.get(c, 0) for counts in splits.values()) for c in classes}
    info: dict[str, Any] = {
        "name": listing.name,
        "path": str(root.resolve()),
        "classes": [{"name": c, "images": totals[c]} for c in classes],
        "splits": splits,
        "images": sum(totals.values()),
    }
    if root.is_dir():  # the labels files beside its class folders, each another way to train
        info["labels_files"] = labels
        info["waiting"] = waiting
    return info


def waiting_images(root: Any) -> int:
    """How many images wait for a label in the folder's ``unlabelled/`` (``data/pool.py``),
    without decoding any."""
    from sightline.data.pool import waiting_files

    return len(waiting_files(root))


def _labels_file_info(path: Any) -> dict[str, Any]:
    from sightline.errors import SightlineError

    try:
        got = folder_info(path)
    except (SightlineError, OSError) as e:
        return {"name": path.name, "error": str(e)}
    return {"name": path.name, "classes": got["classes"], "images": got["images"]}
