"""Frozen features kept per image content, so the same photos cost one backbone pass: a
check of a folder, a training on it after, a second training or check.

The key of an image is a digest of the uint8 image the backbone sees (after every step of its
``Preprocess`` but normalisation) and of the recipe: a digest of the backbone's own weights
(its parameters and buffers, the classifier left out), the normalisation, the mirroring and
the device type. So two faces share features exactly when they would compute the same
numbers; a fine-tuned backbone, another size or framing makes other keys. Files live under
``$SIGHTLINE_CACHE_DIR/features/<recipe>/``, one ``.npy`` per image (5 KB), written atomically.
The folder is bounded (``limit_bytes``: 2 GB, ~400,000 images, or ``$SIGHTLINE_FEATURE_CACHE_MB``):
after features were computed, the least recently used files go until it is under 80 % of that.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sightline.fileio import atomic_write_bytes
from sightline.infer.backbone import backbone_digest


def recipe(model: nn.Module, mean: Sequence[float], std: Sequence[float], flip: bool,
           device: torch.device | str) -> str:  # fmt: skip
    """The name of the numbers one backbone computes from prepared images."""
    h = hashlib.blake2b(digest_size=12)
    h.update(
        f"{backbone_digest(model)}|{tuple(mean)}|{tuple(std)}|{flip}|{torch.device(device).type}".encode()
    )
    return h.hexdigest()


def image_key(image: torch.Tensor) -> str:
    h = hashlib.blake2b(repr(tuple(image.shape)).encode(), digest_size=16)
    h.update(image.contiguous().numpy().tobytes())
    return h.hexdigest()


LIMIT_MB = 2048  # the features folder's bound, all recipes together
LIMIT_ENV = "SIGHTLINE_FEATURE_CACHE_MB"
TRIM_TO = 0.8  # of the bound, so a trim is not due again after the next few images


def limit_bytes() -> int:
    """The bound in bytes: ``$SIGHTLINE_FEATURE_CACHE_MB`` if it is a number of megabytes
    (0 keeps nothing), else ``LIMIT_MB``, with a warning that names the value."""
    text = os.environ.get(LIMIT_ENV)
    try:
        mb = LIMIT_MB if text is None else float(text)
        if not 0 <= mb < float("inf"):
            raise ValueError
    except ValueError:
        warnings.warn(
            f"${LIMIT_ENV}={text!r} is not a number of megabytes (0 or more): "
            f"the feature cache keeps up to {LIMIT_MB} MB",
            stacklevel=2,
        )
        mb = LIMIT_MB
    return int(mb * 1024 * 1024)


class FeatureCache:
    def __init__(self, recipe_name: str, folder: str | Path | None = None) -> None:
        from sightline.data.download import resolve_cache_dir

        self.folder = Path(folder) if folder else resolve_cache_dir() / "features" / recipe_name

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> torch.Tensor | None:
        path = self._path(key)
        try:
            features = torch.from_numpy(np.load(path))
            os.utime(path)  # recently used: the last to go when the folder is trimmed
            return features
        except (OSError, ValueError):
            return None

    def trim(self, limit: int | None = None) -> int:
        """Remove the least recently used feature files, of every recipe, while the features
        folder holds more than ``limit`` bytes (default ``limit_bytes()``), down to 80 % of it.
        Returns how many went. Cached numbers only: anything removed is computed again."""
        limit = limit_bytes() if limit is None else limit
        files = []
        for path in self.folder.parent.glob("*/*/*.npy"):
            with contextlib.suppress(OSError):
                st = path.stat()
                files.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in files)
        if total <= limit:
            return 0
        removed = 0
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= limit * TRIM_TO:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                removed += 1
        return removed

    def put(self, key: str, features: torch.Tensor) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, features.detach().float().cpu().numpy())
        atomic_write_bytes(path, buf.getvalue())


def cached_features(
    images: torch.Tensor,
    cache: FeatureCache,
    compute: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, int]:
    """(features of uint8 ``images`` (N, C, H, W), how many were computed): the cached ones
    read back, ``compute`` run on the others only, and kept."""
    keys = [image_key(img) for img in images.cpu()]
    found = [cache.get(k) for k in keys]
    missing = [i for i, f in enumerate(found) if f is None]
    if missing:
        fresh = compute(images[missing])
        for i, f in zip(missing, fresh, strict=True):
            cache.put(keys[i], f)
            found[i] = f.detach().float().cpu()
        cache.trim()
    if not found:
        return torch.empty((0, 0)), 0
    return torch.stack(found), len(missing)  # type: ignore[arg-type]
