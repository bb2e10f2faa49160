"""In-memory datasets: uint8 image tensors and int64 labels, split into train / val / test.

Every source (built-in dataset files, a user's image folders) ends up as a ``Dataset`` holding
``ImageSet`` splits. Images stay uint8 (N, C, H, W) — 4x smaller than float — until a batch is
normalised on the compute device, so a whole dataset can live on the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from sightline.data.preprocess import Preprocess
from sightline.errors import DataError


@dataclass
class ImageSet:
    """One split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,), in 0..len(classes)-1."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[str] | None = None  # source files, for folder datasets (reports name them)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        self.labels = self.labels.to(torch.int64)
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index: torch.Tensor) -> ImageSet:
        """The samples at ``index`` (a LongTensor or bool mask), in that order."""
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        paths = [self.paths[i] for i in index.tolist()] if self.paths is not None else None
        return ImageSet(self.images[index], self.labels[index], paths)

    def to(self, device: torch.device | str) -> ImageSet:
        return ImageSet(self.images.to(device), self.labels.to(device), self.paths)

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=num_classes).tolist()


@dataclass
class Dataset:
    """A classification dataset ready for training.

    ``val`` is carved from train (seeded) or is the test split, as the tutorials do; ``test`` may
    be None for a user folder without a test set. ``preprocess`` is resolved from the training
    images and is saved with every model trained on them. ``flip`` says whether horizontal
    flips are a valid augmentation (never for digits).
    """

    name: str
    classes: list[str]
    train: ImageSet
    val: ImageSet | None
    test: ImageSet | None
    preprocess: Preprocess
    flip: bool = True
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    # The load_dataset(...) arguments that rebuild this dataset (saved in a run's config, so
    # resume and evaluate can load the same data again).
    load_options: dict = field(default_factory=dict)
    # What was chosen for the user and why, as lines to show them (a folder's channels and
    # size, its images per class, warnings): ``sightline train`` prints them before training.
    notes: list[str] = field(default_factory=list)
    # Held out from train where there is no validation split (``calibration_split``): training
    # never sees it; the run's calibration and "none of these" threshold are fitted on it.
    calibration: ImageSet | None = None

    @property
    def held_out(self) -> ImageSet | None:
        """The images a finished run is calibrated on: its validation split, else its
        calibration split; None: it has neither."""
        return self.val if self.val is not None and len(self.val) else self.calibration

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def splits(self) -> dict[str, ImageSet]:
        return {
            k: v
            for k, v in (("train", self.train), ("val", self.val), ("test", self.test))
            if v is not None
        }

    def describe(self) -> str:
        c, h, w = self.input_shape
        parts = {**self.splits(), **({"calibration": self.calibration} if self.calibration else {})}
        sizes = ", ".join(f"{k} {len(v):,}" for k, v in parts.items())
        return f"{self.name}: {self.num_classes} classes, {c}x{h}x{w}, {sizes}"

    def select_classes(self, wanted: Sequence[str | int]) -> Dataset:
        """Keep only ``wanted`` classes (names or indices), relabelled 0..k-1 in the given order."""
        index = resolve_classes(self.classes, wanted)
        lookup = torch.full((self.num_classes,), -1, dtype=torch.int64)
        lookup[torch.tensor(index)] = torch.arange(len(index))

        def keep(s: ImageSet | None) -> ImageSet | None:
            if s is None:
                return None
            sub = s.select(lookup[s.labels] >= 0)
            return ImageSet(sub.images, lookup[sub.labels], sub.paths)

        return replace(
            self,
            classes=[self.classes[i] for i in index],
            train=keep(self.train),  # type: ignore[arg-type]
            val=keep(self.val),
            test=keep(self.test),
            calibration=keep(self.calibration),
        )


def resolve_classes(classes: Sequence[str], wanted: Sequence[str | int]) -> list[int]:
    """Class names or indices (as ints or digit strings) → indices; clear error for unknowns."""
    lower = {c.lower(): i for i, c in enumerate(classes)}
    out: list[int] = []
    for w in wanted:
        key = str(w).strip()
        if key.lower() in lower:
            i = lower[key.lower()]
        elif key.isdigit() and int(key) < len(classes):
            i = int(key)
        else:
            raise DataError(
                f"unknown class {key!r}; classes are: {', '.join(classes)} (or 0-{len(classes) - 1})"
            )
        if i in out:
            raise DataError(f"class {classes[i]!r} is listed twice")
        out.append(i)
    if len(out) < 2:
        raise DataError("a classifier needs at least 2 classes")
    return out


def split_validation(train: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Carve a seeded, class-stratified validation split off ``train``."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"validation fraction must be between 0 and 1, not {fraction}")
    g = torch.Generator().manual_seed(seed)
    val_index = []
    for c in torch.unique(train.labels).tolist():
        members = (train.labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=g)]
        # At least one of each class in val, at least one left in train; a lone image stays.
        n_val = min(max(round(len(members) * fraction), 1), len(members) - 1)
        val_index.append(members[:n_val])
    val_idx = torch.cat(val_index).sort().values
    mask = torch.ones(len(train), dtype=torch.bool)
    mask[val_idx] = False
    return train.select(mask), train.select(val_idx)


STATS_CHUNK = 64  # images per float64 pass of channel_stats (64 at 224 px RGB: 77 MB)


def channel_stats(
    images: torch.Tensor, max_samples: int = 20000
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in 0..1 units of uint8 (N, C, H, W) images (subsampled)."""
    if len(images) > max_samples:
        step = len(images) // max_samples
        images = images[::step][:max_samples]
    # Summed in chunks: the whole sample in float64 at once was 8 bytes a pixel (20,000 photos at
    # 224 px: 24 GB, which a 24 GiB machine could not hold; benchmarks/README.md, many_photos).
    c = images.shape[1]
    total, squares = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)
    for start in range(0, len(images), STATS_CHUNK):
        x = images[start : start + STATS_CHUNK].to(torch.float64) / 255.0
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
    n = images.numel() // max(1, c)
    mean = total / max(1, n)
    var = (squares - n * mean * mean) / max(1, n - 1)  # unbiased, as Tensor.std
    std = var.clamp(min=0).sqrt().clamp(min=1e-3)
    return tuple(round(v, 6) for v in mean.tolist()), tuple(round(v, 6) for v in std.tolist())


def looks_dark_background(images: torch.Tensor, max_samples: int = 2000) -> bool:
    """True when most images have a near-black border (MNIST-style data)."""
    x = images[:max_samples].float().mean(1)  # N, H, W gray
    border = torch.cat([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], dim=1)
    return bool((border.median(dim=1).values < 16).float().mean() > 0.9)
