"""A dataset folder with the mistakes people make collecting one, planted where we know them:
images filed in the wrong class, exact copies (some under another class), near copies
(resized, re-saved as JPEG, recoloured), test images copied from training, corrupt files.
Returns where each one is, so a check can be scored against the truth.

Used by tests/unit/health and tests/integration (MNIST digits) and benchmarks/check.py. Test
data only: sightline never imports it. Seeded: the same folder every time.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class Truth:
    flipped: dict[str, str] = field(default_factory=dict)  # path -> its true class
    copies: list[tuple[str, str]] = field(default_factory=list)  # (original, copy), same pixels
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # copies under another class
    near: list[tuple[str, str]] = field(default_factory=list)  # (original, near copy) in train
    leaks: list[tuple[str, str]] = field(default_factory=list)  # (train original, test copy)
    corrupt: list[str] = field(default_factory=list)
    train: list[str] = field(default_factory=list)  # every image written under train/
    test: list[str] = field(default_factory=list)


def blobs(n: int, classes: int = 5, side: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, side, side) uint8, labels): a few soft blobs per image around a place of
    its class's, so classes are learnable and no two images are alike."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    images = np.zeros((n, side, side), np.float32)
    for i, y in enumerate(labels):
        cy, cx = side * (0.25 + 0.5 * (y // 3) / 1.0), side * (0.2 + 0.3 * (y % 3))
        for _ in range(4):
            py, px = cy + rng.normal(0, side / 10), cx + rng.normal(0, side / 10)
            r = rng.uniform(side / 14, side / 6)
            images[i] += rng.uniform(0.5, 1.0) * np.exp(
                -((yy - py) ** 2 + (xx - px) ** 2) / (2 * r * r)
            )
        images[i] += rng.uniform(0, 0.3, (side, side))
    images = 255 * images / images.max(axis=(1, 2), keepdims=True)
    return images.astype(np.uint8), labels


def _save(img: Image.Image, path: Path, fmt: str = "png", quality: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **({"quality": quality} if fmt == "jpg" else {}))


def plant(
    root: Path,
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    *,
    test: int = 200,
    flip: float = 0.05,
    copies: int = 20,
    conflicts: int = 5,
    near: int = 15,
    cropped: int = 0,
    leaks: int = 12,
    corrupt: int = 6,
    seed: int = 0,
) -> Truth:
    """Write root/train/<class>/ and root/test/<class>/ from ``images`` (N, H, W) gray or
    (N, H, W, 3) colour, with
    ``labels``: the last ``test`` images are the test split; the problems are planted in it."""
    rng = np.random.default_rng(seed)
    truth = Truth()
    n_train = len(images) - test
    flips = set(rng.choice(n_train, int(flip * n_train), replace=False).tolist())
    paths: list[str] = []
    for i in range(len(images)):
        split = "train" if i < n_train else "test"
        label = int(labels[i])
        if i in flips:
            label = int(rng.choice([c for c in range(len(classes)) if c != labels[i]]))
        rel = f"{split}/{classes[label]}/{i:05d}.png"
        _save(Image.fromarray(images[i]), root / rel)
        paths.append(rel)
        (truth.train if split == "train" else truth.test).append(rel)
        if i in flips:
            truth.flipped[rel] = classes[int(labels[i])]
    unflipped = [i for i in range(n_train) if i not in flips]
    picks = iter(rng.permutation(unflipped).tolist())
    for k in range(copies):  # same pixels: a byte copy, or saved again as BMP
        i = next(picks)
        other = k < conflicts
        label = int(labels[i]) if not other else (int(labels[i]) + 1) % len(classes)
        rel = f"train/{classes[label]}/copy{k:03d}" + (".png" if k % 2 else ".bmp")
        if k % 2:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / paths[i], root / rel)
        else:
            _save(Image.fromarray(images[i]), root / rel)
        (truth.conflicts if other else truth.copies).append((paths[i], rel))
        truth.train.append(rel)
    for k in range(near):  # the same picture: larger, JPEG, brighter or in colour
        i = next(picks)
        img = Image.fromarray(images[i])
        side = img.width * (2 if k % 3 else 3) // 2
        img = img.resize((side, side), Image.Resampling.BICUBIC)
        if k % 3 == 2:
            arr = np.asarray(img).astype(np.float32) * 0.8 + 30
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).convert("RGB")
        rel = f"train/{classes[int(labels[i])]}/near{k:03d}.jpg"
        _save(img, root / rel, "jpg", quality=int(rng.integers(75, 95)))
        truth.near.append((paths[i], rel))
        truth.train.append(rel)
    for k in range(cropped):  # the same picture with 3-8 % cut off an axis, larger, as JPEG
        i = next(picks)
        img = Image.fromarray(images[i]).resize((images[i].shape[1] * 2,) * 2, Image.BICUBIC)
        box = []
        for side in img.size:
            total = rng.uniform(0.03, 0.08)
            first = rng.uniform(0, total)
            box += [round(first * side), round((1 - total + first) * side)]
        img = img.crop((box[0], box[2], box[1], box[3]))
        rel = f"train/{classes[int(labels[i])]}/cropped{k:03d}.jpg"
        _save(img, root / rel, "jpg", quality=int(rng.integers(80, 95)))
        truth.near.append((paths[i], rel))
        truth.train.append(rel)
    for k in range(leaks):  # a training image in test/ too, as it is or re-saved
        i = next(picks)
        img = Image.fromarray(images[i])
        rel = f"test/{classes[int(labels[i])]}/leak{k:03d}" + (".png" if k % 2 else ".jpg")
        _save(img.resize((img.width * 3 // 2,) * 2) if k % 2 == 0 else img, root / rel,
              "png" if k % 2 else "jpg")  # fmt: skip
        truth.leaks.append((paths[i], rel))
        truth.test.append(rel)
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, "png")
    png = buf.getvalue()
    garbled = png[:60] + bytes(len(png) - 80) + png[-20:]  # whole, but its pixel data zeroed
    junk = [
        png[: len(png) // 2],
        b"",
        b"not an image at all",
        png[:40],
        b"\xff\xd8\xff" + bytes(64),
        garbled,
    ]
    for k in range(corrupt):
        rel = f"train/{classes[k % len(classes)]}/broken{k}." + ("jpg" if k == 4 else "png")
        (root / rel).write_bytes(junk[k % len(junk)])
        truth.corrupt.append(rel)
    return truth
