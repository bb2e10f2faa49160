"""Read a dataset once for a check: per image its split, class, size, colour mode, a digest of
its decoded pixels and a small gray thumbnail; the files that cannot be decoded, with why.

An image folder is read by ``scan_folder``, or, before training on it, from the images training
decodes (``FolderReader``, handed to ``load_dataset(observe=)``): every file decoded once. Both
decode a photo as predict does, no larger than needed (``READ_SIDE``, or the model's own decode
side), so an image of ``LARGE_SIDE`` px or more may be decoded smaller: its digest is then of its
file's bytes, the same whichever decoded it (copies of it in another format are found as near
copies rather than copies)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sightline.data.folders import GRAY_MODES, find_splits, scan_class_folders
from sightline.data.images import (
    IMAGE_EXTENSIONS,
    MIN_DECODE_SIDE,
    full_size,
    is_image_file,
    normalize_mode,
    open_image,
)
from sightline.errors import DataError, ImageError

THUMB = 32  # thumbnail side: near copies are compared on it (health/duplicates.py)
DETAIL = 48  # px: the thumbnail cropped copies are searched on (health/crops.py)
READ_SIDE = MIN_DECODE_SIDE  # a check decodes no larger (a 12 MP photo: ~10x faster)
LARGE_SIDE = 2 * MIN_DECODE_SIDE  # from this side on, any decode may be a reduced one


@dataclass
class Item:
    path: str  # relative to the checked folder; built-in datasets: split/index
    split: str
    label: int
    size: tuple[int, int]  # (width, height)
    mode: str  # as stored: "RGB", "L", "CMYK", "I;16"...
    digest: bytes  # of the decoded pixels (gray when the three channels are equal)
    thumb: np.ndarray  # (THUMB, THUMB) uint8 gray
    gray: bool = False  # by its mode, or three equal channels
    detail: np.ndarray | None = None  # (DETAIL, DETAIL) uint8 gray


@dataclass
class Inventory:
    source: str
    classes: list[str]
    items: list[Item] = field(default_factory=list)
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)  # (path, split, reason)
    root: Path | None = None  # the folder checked (None: a built-in dataset)
    notes: list[str] = field(default_factory=list)  # what was read around the classes
    tensors: dict[str, torch.Tensor] = field(
        default_factory=dict, repr=False
    )  # dataset: split -> images

    def open(self, item: Item) -> Image.Image:
        """The item's image again, decoded as every face decodes it."""
        if self.root is not None:
            return open_image(self.root / item.path)
        array = self.tensors[item.split][int(item.path.rsplit("/", 1)[1])].permute(1, 2, 0).numpy()
        return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)

    @property
    def photos(self) -> bool:
        """Mostly colour images: their labels are checked on pretrained features."""
        return sum(not i.gray for i in self.items) * 2 > len(self.items)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for item in self.items:
            per = out.setdefault(item.split, dict.fromkeys(self.classes, 0))
            per[self.classes[item.label]] += 1
        return out


def is_gray(array: np.ndarray) -> bool:
    return array.ndim == 2 or array.shape[2] == 1 or bool((array[..., :1] == array[..., 1:]).all())


def pixels_digest(array: np.ndarray) -> bytes:
    """The same pixels give the same digest, whatever file format held them: a colour image
    whose three channels are equal counts as gray."""
    if array.ndim == 3 and array.shape[2] == 3 and is_gray(array):
        array = array[..., 0]
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(array.shape).encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.digest()


def gray_thumbnail(img: Image.Image, side: int = THUMB) -> np.ndarray:
    """(side, side) uint8: the image in gray, squeezed to a square."""
    gray = img.convert("L")
    return np.asarray(gray.resize((side, side), Image.LANCZOS, reducing_gap=3.0))


def _describe(img: Image.Image, stored_mode: str) -> tuple[bytes, np.ndarray, bool, np.ndarray]:
    flat = normalize_mode(img, 1 if stored_mode in GRAY_MODES else 3)  # 16-bit, alpha, CMYK
    array = np.asarray(flat)
    thumbs = gray_thumbnail(flat), gray_thumbnail(flat, DETAIL)
    return pixels_digest(array), thumbs[0], is_gray(array), thumbs[1]


def file_digest(path: Path) -> bytes:
    h = hashlib.blake2b(digest_size=16, person=b"file")  # never equal to a pixels digest
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def describe(img: Image.Image, path: Path, root: Path, split: str, label: int) -> Item:
    """The check's record of one image ``open_image`` decoded from ``path``."""
    size = full_size(img)
    digest, thumb, gray, detail = _describe(img, img.mode)
    if max(size) >= LARGE_SIDE:  # maybe decoded smaller: its pixels depend on who decoded it
        digest = file_digest(path)
    return Item(path.relative_to(root).as_posix(), split, label, size, img.mode, digest, thumb,
                gray, detail)  # fmt: skip


def _read_file(path: Path, root: Path, split: str, label: int) -> Item | tuple[str, str, str]:
    try:
        return describe(open_image(path, max_side=READ_SIDE), path, root, split, label)
    except ImageError as e:
        return (path.relative_to(root).as_posix(), split, e.reason)
    except Exception as e:  # any decoder surprise is this one file's problem
        return (path.relative_to(root).as_posix(), split,
                f"cannot decode image: {type(e).__name__}: {e}")  # fmt: skip


def scan_folder(
    root: str | os.PathLike, progress: Callable[[int, int], None] | None = None
) -> Inventory:
    """Every image file of an image folder (the layouts ``load_folder`` reads)."""
    root = Path(root)
    splits = find_splits(root)
    per_split = {split: scan_class_folders(folder) for split, folder in splits.items()}
    classes = sorted({c for files in per_split.values() for c in files})
    inventory = _empty_inventory(root, splits, classes, per_split)
    jobs = [
        (path, split, classes.index(c))
        for split, files in per_split.items()
        for c, paths in files.items()
        for path in paths
    ]
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        results = pool.map(lambda job: _read_file(job[0], root, job[1], job[2]), jobs)
        _collect(inventory, results, len(jobs), progress)
    return inventory


class FolderReader:
    """A check's inventory of an image folder, from the images training decodes: give
    ``observe`` to ``load_dataset(observe=)``, then ``inventory()``. Each file is then
    decoded once for both (``sightline train FOLDER``)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._seen: dict[tuple[str, Path], Item | tuple[str, str, str]] = {}

    def observe(self, path: Path, split: str, label: int, image: Image.Image | str) -> None:
        """One file the loader read: its image, or why it could not (thread-safe)."""
        path = Path(path)
        if isinstance(image, str):
            self._seen[split, path] = (path.relative_to(self.root).as_posix(), split, image)
            return
        try:
            self._seen[split, path] = describe(image, path, self.root, split, label)
        except Exception as e:  # a file is never more than its own problem
            rel = path.relative_to(self.root).as_posix()
            self._seen[split, path] = (rel, split, f"cannot read image: {type(e).__name__}: {e}")

    def inventory(self) -> Inventory:
        """What was observed, in ``scan_folder``'s order."""
        splits = find_splits(self.root)
        per_split = {split: scan_class_folders(folder) for split, folder in splits.items()}
        classes = list(per_split["train"])  # the loader's labels index these
        inventory = _empty_inventory(self.root, splits, classes, per_split)
        order = {split: i for i, split in enumerate(splits)}
        seen = sorted(self._seen.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1]))
        _collect(inventory, (result for _, result in seen), len(seen), None)
        return inventory


def _empty_inventory(root: Path, splits: dict[str, Path], classes: list[str],
                     per_split: dict[str, dict[str, list[Path]]]) -> Inventory:  # fmt: skip
    """An inventory with the folder's classes and the notes on what lies around them."""
    loose = {split: _loose_images(folder) for split, folder in splits.items()}
    _refuse_empty(root, classes, per_split, sum(loose.values()))
    inventory = Inventory(str(root), classes, root=root)
    for split, n in loose.items():
        if n:
            where = root if splits[split] == root else splits[split]
            inventory.notes.append(
                f"{n:,} images directly in {where.name}/ are in no class folder: not checked "
                "(training reads only class folders; move them into one)"
            )
    return inventory


def _loose_images(folder: Path) -> int:
    return sum(
        1 for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
        and is_image_file(p.name)
    )  # fmt: skip


def _refuse_empty(root: Path, classes: list[str], per_split: dict[str, dict[str, list[Path]]],
                  loose: int) -> None:  # fmt: skip
    """A folder with nothing to check is a mistake, never "no problems found"."""
    how = f"put the images in one subfolder per class (e.g. {root}/cat/1.jpg, {root}/dog/2.jpg)"
    if not classes:
        held = f"its {loose:,} images are in no class folder" if loose else "and no images"
        raise DataError(f"{root} has no class folders ({held}): {how}")
    if not any(paths for files in per_split.values() for paths in files.values()):
        raise DataError(
            f"the class folders of {root} ({', '.join(classes[:5])}) hold no image files "
            f"({', '.join(IMAGE_EXTENSIONS)}): {how}"
        )


def scan_dataset(
    dataset, progress: Callable[[int, int], None] | None = None, labels_file: Path | None = None
) -> Inventory:
    """Every image of a loaded ``Dataset``, as loaded: a built-in's tensors named split/index,
    or the images of ``labels_file`` named as its rows name them."""
    base = labels_file.parent if labels_file is not None else None
    parts = [(s, getattr(dataset, s, None)) for s in ("train", "val", "test")]
    tensors = {s: p.images for s, p in parts if p is not None and len(p)}
    source = str(labels_file) if labels_file is not None else dataset.name
    inventory = Inventory(source, list(dataset.classes), tensors=tensors)

    def items() -> Iterable[Item]:
        for split, part in parts:
            if part is None or len(part) == 0:
                continue
            images = part.images.permute(0, 2, 3, 1).numpy()  # N, H, W, C uint8
            names = _names(part, split, base)
            for i, (array, label) in enumerate(zip(images, part.labels.tolist(), strict=True)):
                mode = "L" if array.shape[2] == 1 else "RGB"
                img = Image.fromarray(array[..., 0] if mode == "L" else array, mode)
                digest, thumb, gray, detail = _describe(img, mode)
                h, w = array.shape[:2]
                yield Item(names[i], split, int(label), (w, h), mode, digest, thumb, gray, detail)

    total = sum(len(p) for _, p in parts if p is not None)
    _collect(inventory, items(), total, progress)
    return inventory


def _names(part, split: str, base: Path | None) -> list[str]:
    paths = getattr(part, "paths", None)
    if base is None or not paths or len(paths) != len(part):
        return [f"{split}/{i}" for i in range(len(part))]
    out = []
    for p in paths:
        try:
            out.append(Path(p).relative_to(base).as_posix())
        except ValueError:
            out.append(str(p))
    return out


def _collect(inventory: Inventory, results: Iterable, total: int, progress) -> None:
    for done, result in enumerate(results, 1):
        if isinstance(result, Item):
            inventory.items.append(result)
        else:
            inventory.corrupt.append(result)
        if progress is not None and (done % 500 == 0 or done == total):
            progress(done, total)


def thumbnails(items: list[Item]) -> torch.Tensor:
    """(N, THUMB*THUMB) float32, each centred and of unit length (0 for a flat image), so that a
    dot product is the correlation of two thumbnails: a change of brightness or contrast
    leaves it at 1."""
    if not items:
        return torch.zeros(0, THUMB * THUMB)
    t = torch.from_numpy(np.stack([item.thumb for item in items])).float().flatten(1)
    return unit_rows(t, flat=1e-3 * THUMB)


def unit_rows(t: torch.Tensor, flat: float = 1e-3) -> torch.Tensor:
    """The last axis centred and of unit length, 0 where its centred norm is ``flat`` or less
    (a flat image): a dot product of two rows is then their correlation."""
    t = t - t.mean(-1, keepdim=True)
    norm = t.norm(dim=-1, keepdim=True)
    return torch.where(norm > flat, t / norm.clamp(min=1e-12), torch.zeros_like(t))
