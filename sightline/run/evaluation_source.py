"""What ``Run.evaluate`` evaluates: the run's own split, another dataset, or an image folder.

Each source gets its own key (see ``evaluation_store``) and records what it was, so a folder's
score is never shown as the run's test accuracy. A split that does not exist is an error naming
the splits that do — never a silent fallback to the training images.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sightline.errors import RunError
from sightline.run import evaluations as store


@dataclass
class EvaluationSource:
    images: Any  # ImageSet, labelled in the model's classes
    key: str | None  # None: not saved (an ImageSet passed in directly)
    kind: str  # split | dataset | folder | images
    split: str
    title: str
    path: str | None = None
    dataset: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def record(self, run, which: str) -> dict[str, Any]:
        meta = run.metadata(which)
        return {
            "source": self.key,
            "kind": self.kind,
            "split": self.split,
            "path": self.path,
            "dataset": self.dataset,
            "checkpoint": which,
            "model_epoch": meta.get("epoch"),
            "skipped": [list(s) for s in self.skipped],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def _class_key(name: str) -> str:
    """Class names as folder names can hold them: "T-shirt/top" ~ "T-shirt-top" ~ "t_shirt top"."""
    return re.sub(r"[^0-9a-z]+", "", name.casefold())


def match_classes(found: list[str], known: list[str], where: str) -> list[int]:
    """Index into ``known`` for each class name in ``found`` (exact, then case- and
    punctuation-insensitive); a DataError-style RunError lists what would match."""
    exact = {c: i for i, c in enumerate(known)}
    loose: dict[str, int] = {}
    for i, c in enumerate(known):
        loose.setdefault(_class_key(c), i)
    index, unknown = [], []
    for c in found:
        i = exact.get(c, loose.get(_class_key(c)))
        (index if i is not None else unknown).append(i if i is not None else c)
    if unknown:
        hints = []
        for c in unknown:
            close = difflib.get_close_matches(c, known, n=1, cutoff=0.5)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise RunError(
            f"{where}: class folder(s) {', '.join(hints)} unknown to this model; it knows: "
            f"{', '.join(known)} (folder names may use - or _ for / and any letter case)"
        )
    return index


def _split_of(data, split: str, where: str):
    splits = data.splits()
    if split not in splits:
        raise RunError(
            f"{where} has no {split!r} split; it has: {', '.join(splits)} (choose one with --split)"
        )
    return splits[split]


def _relabel(part, data, run, where: str):
    """``part`` of another dataset as the run's model takes it: labels in the run's classes,
    images at the run's channels and size (as ``load_dataset`` converts a built-in's)."""
    import torch

    from sightline.data import ImageSet
    from sightline.data.convert import convert_images

    pre = run.preprocess
    images = convert_images(
        part.images, pre.channels, pre.size, pre.resize, interpolation=pre.interpolation
    )
    mapping = torch.tensor(match_classes(list(data.classes), run.classes, where), dtype=torch.long)
    return ImageSet(images, mapping[part.labels], part.paths)


def _folder(run, path: Path, split: str, which: str) -> EvaluationSource:
    from sightline.data.folders import find_splits, load_folder

    layout = find_splits(path)
    # A plain class folder is one set of images, evaluated whole; a train/val/test folder must
    # have the asked split. Every file is prepared by the run's own Preprocess (framing and
    # inversion included), as `predict` prepares it: the same file gets the same answer.
    flat = set(layout) == {"train"} and layout["train"] == path
    data = load_folder(path, preprocess=run.preprocess)
    where = str(path.resolve())
    part = data.train if flat else _split_of(data, split, where)
    used = "all" if flat else split
    return EvaluationSource(
        _relabel(part, data, run, where),
        store.source_key("folder", used, which, path=path),
        "folder",
        used,
        f"folder {where}" + ("" if flat else f" / {split}"),
        path=where,
        skipped=list(data.skipped),
    )


def resolve_source(run, data, split: str, which: str) -> EvaluationSource:
    from sightline.data import Dataset, ImageSet, load_dataset

    own = run.config.get("data", {}).get("name_or_path")
    if isinstance(data, ImageSet):
        return EvaluationSource(data, None, "images", split, f"{len(data):,} images given")
    if isinstance(data, (str, os.PathLike)):
        p = Path(data).expanduser()
        if p.exists():
            return _folder(run, p, split, which)
        name = str(data)
        if name == own or (own and not Path(own).exists() and name.lower() == str(own).lower()):
            data = None  # the run's own dataset, with its own class subset and split
        else:
            data = load_dataset(
                name, classes=run.config["data"].get("classes"), val_split=0, progress=False
            )
            part = _split_of(data, split, name)
            return EvaluationSource(
                _relabel(part, data, run, name),
                store.source_key("dataset", split, which, dataset=data.name),
                "dataset",
                split,
                f"{data.name} / {split}",
                dataset=data.name,
            )
    if data is None:
        data = run.load_data()
    if not isinstance(data, Dataset):
        raise RunError(
            f"cannot evaluate on a {type(data).__name__}; pass a Dataset, ImageSet, dataset name or folder"
        )
    same = data is run.data or (data.load_options or {}).get("name_or_path") == own
    where = f"{data.name}" if same else f"dataset {data.name}"
    part = _split_of(data, split, where)
    if same:
        if list(data.classes) != list(run.classes):
            raise RunError(
                f"the data's classes {data.classes} differ from the model's {run.classes}"
            )
        return EvaluationSource(
            part,
            store.source_key("split", split, which),
            "split",
            split,
            f"{data.name} / {split}",
            dataset=data.name,
        )
    return EvaluationSource(
        _relabel(part, data, run, where),
        store.source_key("dataset", split, which, dataset=data.name),
        "dataset",
        split,
        f"{data.name} / {split}",
        dataset=data.name,
    )
