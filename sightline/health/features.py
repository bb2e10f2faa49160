"""Pretrained features of a dataset's photos, for the label check: EfficientNet-Lite0's
ImageNet backbone (1,280 numbers an image), computed once per image content and cached, so a
second check of the same photos reads them back."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sightline.health.scan import Inventory, Item

BACKBONE = "efficientnet-lite0"
SIDE = 224  # the side the ImageNet weights were trained at: 128 px lost 4 points of accuracy
CHUNK = 256  # images decoded at a time: 256 x 224 x 224 x 3 bytes = 38 MB
_VERSION = "v1"  # of the cached numbers: change it when what they are computed from changes


def available() -> bool:
    from sightline.models.pretrained import weights_available

    return weights_available(BACKBONE)


def cache_folder() -> Path:
    from sightline.data.download import resolve_cache_dir

    return resolve_cache_dir() / "features" / f"{BACKBONE}-{SIDE}-{_VERSION}"


def _cached(folder: Path, item: Item) -> Path:
    name = item.digest.hex()
    return folder / name[:2] / f"{name}.npy"


def _rgb(inventory: Inventory, item: Item) -> np.ndarray:
    img = inventory.open(item)
    img = img.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(img)


def photo_features(
    inventory: Inventory, progress: Callable[[int, int], None] | None = None
) -> torch.Tensor:
    """(N, 1280) float32, one row per item of ``inventory``."""
    from sightline.fileio import atomic_write_bytes
    from sightline.models.registry import create_model
    from sightline.train.frozen import extract_features

    folder = cache_folder()
    items = inventory.items
    out = torch.zeros(len(items), 1280)
    todo = []
    for i, item in enumerate(items):
        path = _cached(folder, item)
        try:
            out[i] = torch.from_numpy(np.load(path))
        except (OSError, ValueError):
            todo.append(i)
    if not todo:
        return out
    model = create_model(BACKBONE, (3, SIDE, SIDE), 2, pretrained=True)
    mean = torch.full(
        (1, 3, 1, 1), 127 / 255
    )  # the weights' own normalisation (models/efficientnet)
    std = torch.full((1, 3, 1, 1), 128 / 255)

    def normalize(batch: torch.Tensor) -> torch.Tensor:
        return (batch.float() / 255 - mean) / std

    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        images = torch.from_numpy(np.stack([_rgb(inventory, items[i]) for i in chunk]))
        feats = extract_features(model, images.permute(0, 3, 1, 2), normalize, torch.device("cpu"))
        for i, f in zip(chunk, feats, strict=True):
            out[i] = f
            path = _cached(folder, items[i])
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.save(buf, f.numpy())
            atomic_write_bytes(path, buf.getvalue())
        if progress is not None:
            progress(min(start + CHUNK, len(todo)), len(todo))
    return out


NEIGHBOURS = 20  # the k of the nearest-neighbour vote
VOTE_TEMPERATURE = 0.1  # of the cosine similarities that weigh the votes


def out_of_fold(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                fold: torch.Tensor, weight_decay: float) -> torch.Tensor:  # fmt: skip
    """(N, K) probabilities for each fold from the other folds: the mean of a linear head
    (L-BFGS) and a vote of the nearest neighbours, on unit-length features. The two err on
    different images: on 1,000 CIFAR-10 photos with 50 labels flipped, 43 of them among the
    75 most suspect where either alone put 40-41."""
    f = F.normalize(features, dim=1)
    probs = torch.zeros(len(f), num_classes)
    for k in fold.unique().tolist():
        held = fold == k
        x, y = f[~held], labels[~held]
        head = _fit_head(x * 10, y, num_classes, weight_decay, seed=k)  # x10: small weights
        with torch.no_grad():
            linear = head(f[held] * 10).softmax(1)
        similarity, nearest = (f[held] @ x.T).topk(min(NEIGHBOURS, len(x)), dim=1)
        weights = (similarity / VOTE_TEMPERATURE).softmax(1)
        vote = torch.zeros(int(held.sum()), num_classes).scatter_add_(1, y[nearest], weights)
        probs[held] = (linear + vote) / 2
    return probs


def _fit_head(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
              seed: int) -> torch.nn.Linear:  # fmt: skip
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], num_classes)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(x), y) + weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head
