"""Frozen features kept per image content, so the same photos cost one backbone pass: a
check of a folder, a training on it after, a second training or check.

The key of an image is a digest of the uint8 image the backbone sees (after every step of its
``Preprocess`` but normalisation) and of the recipe: a digest of the backbone's own weights
(its parameters and buffers, the classifier left out), the normalisation, the mirroring and
the device type. So two faces share features exactly when they would compute the same
numbers; a fine-tuned backbone, another size or framing makes other keys. Files live under
``$SIGHTLINE_CACHE_DIR/features/<recipe>/``, one ``.npy`` per image, written atomically.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sightline.fileio import atomic_write_bytes
from sightline.infer.backbone import backbone_digest as backbone_digest


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


class FeatureCache:
    def __init__(self, recipe_name: str, folder: str | Path | None = None) -> None:
        from sightline.data.download import resolve_cache_dir

        self.folder = Path(folder) if folder else resolve_cache_dir() / "features" / recipe_name

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> torch.Tensor | None:
        try:
            return torch.from_numpy(np.load(self._path(key)))
        except (OSError, ValueError):
            return None

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
    if not found:
        return torch.empty((0, 0)), 0
    return torch.stack(found), len(missing)  # type: ignore[arg-type]
