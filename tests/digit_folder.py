"""A user's folder of digit images, as issue 10 describes it: MNIST training digits 0-4 saved
as files of mixed sizes (28/40/56 px), colour modes (L/RGB/RGBA) and formats (PNG/JPEG), plus a
couple of junk files; and 500 other MNIST test digits of the same classes to score a run on.

Used by tests/integration/test_integration_folders.py and benchmarks/folder_train.py. Test data only:
sightline never imports it. Deterministic: the same digits, sizes and modes every time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

import sightline

CLASSES = (0, 1, 2, 3, 4)
SIDES = (28, 40, 56)
MODES = ("L", "RGB", "RGBA")
FORMATS = ("png", "jpg")


def mnist(mirror: str | Path | None = None, cache_dir: str | Path | None = None):
    """MNIST (train and test splits, no validation carved) from ``mirror`` or the usual places."""
    return sightline.load_dataset(
        "mnist", val_split=0, mirror=mirror, cache_dir=cache_dir, progress=False
    )


def _first(labels: torch.Tensor, per_class: int, skip: int = 0) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each class in CLASSES (after ``skip``)."""
    picked = [torch.nonzero(labels == c).flatten()[skip : skip + per_class] for c in CLASSES]
    return torch.cat(picked).sort().values


def build_folder(root: Path, data, per_class: int = 40) -> Path:
    """Write ``per_class`` MNIST training digits of each class in CLASSES under root/<digit>/.

    Image i of the folder cycles through sizes, modes and formats independently (their
    periods 3, 3, 2 are not all equal, so every combination occurs), so that e.g. RGBA images
    come in every size. Returns ``root``.
    """
    index = _first(data.train.labels, per_class)
    for n, i in enumerate(index.tolist()):
        label = int(data.train.labels[i])
        side, mode, fmt = SIDES[n % 3], MODES[(n // 3) % 3], FORMATS[(n // 9) % 2]
        img = Image.fromarray(data.train.images[i, 0].numpy(), "L")
        if side != 28:
            img = img.resize((side, side), Image.Resampling.BICUBIC)
        img = img.convert(mode)
        if fmt == "jpg" and mode == "RGBA":
            img = img.convert("RGB")  # JPEG has no alpha: an RGBA digit is a PNG
            fmt = "png"
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{n:04d}.{fmt}", **({"quality": 90} if fmt == "jpg" else {}))
    # What a real folder also holds: a note, a broken image, an OS thumbnail cache.
    (root / "README.txt").write_text("my digits\n")
    (root / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "1" / "Thumbs.db").write_bytes(b"\0" * 64)
    (root / "2" / "notes.txt").write_text("scanned on Tuesday\n")
    return root


def held_out_digits(data, count: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` MNIST *test* digits of CLASSES (uint8 (N, 1, 28, 28), labels 0..4): never in
    the folder, which holds training digits only. Evenly many per class."""
    per_class = count // len(CLASSES)
    index = _first(data.test.labels, per_class)
    return data.test.images[index], data.test.labels[index]


def save_test_folder(root: Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    """The test digits as a labelled folder (root/<digit>/<n>.png, 28 px gray PNGs)."""
    for n, (x, y) in enumerate(zip(images, labels.tolist(), strict=True)):
        folder = root / str(y)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[0].numpy(), "L").save(folder / f"{n:04d}.png")
    return root
