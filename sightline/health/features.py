"""Pretrained features of a dataset's photos, for the label check: EfficientNet-Lite0's
ImageNet backbone (1,280 numbers an image) on the photos prepared exactly as
``sightline train FOLDER --pretrained`` prepares them, through the feature cache
(``train/feature_cache.py``): a second check, or a training after the check, reads them back."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F
from PIL import Image

from sightline.devices import cpu_cores
from sightline.health.scan import Inventory, Item

T = TypeVar("T")
BACKBONE = "efficientnet-lite0"
CHUNK = 256  # images prepared at a time: 256 x 224 x 224 x 3 bytes = 38 MB


def available() -> bool:
    from sightline.models.pretrained import weights_available

    return weights_available(BACKBONE)


def photo_preprocess():
    """How ``sightline train FOLDER --pretrained`` prepares its photos (plan/transfer.py: the
    weights' 224 px, where 128 px lost 4 points here), so that the features computed here are
    the ones its training reads back from the cache."""
    from sightline.data.folders import DEFAULT_RESIZE
    from sightline.data.preprocess import Preprocess
    from sightline.plan.transfer import pretrained_input

    want = pretrained_input(BACKBONE)
    size, mean, std = (want["size"],) * 2, tuple(want["mean"]), tuple(want["std"])
    return Preprocess(3, size, DEFAULT_RESIZE, mean, std)


def photo_features(
    inventory: Inventory, progress: Callable[[int, int], None] | None = None
) -> torch.Tensor:
    """(N, 1280) float32, one row per item of ``inventory``, from the feature cache
    (``train/feature_cache.py``) where it has them."""
    from sightline.data.images import decode_side

    side = decode_side(photo_preprocess().size)
    items = inventory.items
    return image_features(len(items), lambda i: _decoded(inventory, items[i], side), progress)


def file_features(
    files: list[Path], progress: Callable[[int, int], None] | None = None
) -> torch.Tensor:
    """(N, 1280) float32 for image ``files``, decoded as the folder loader decodes them; the
    same rows ``photo_features`` gives for them (one cache). DataError for one that cannot be
    decoded (callers list only readable files)."""
    from sightline.data.images import decode_side, open_image

    side = decode_side(photo_preprocess().size)
    return image_features(len(files), lambda i: open_image(files[i], max_side=side), progress)


def image_features(
    count: int,
    decoded: Callable[[int], Image.Image],
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """(count, 1280) float32: the backbone's features of ``decoded(i)`` for each i."""
    from sightline.models.registry import create_model
    from sightline.train.feature_cache import FeatureCache, cached_features, recipe
    from sightline.train.frozen import extract_features

    pre = photo_preprocess()
    model = create_model(BACKBONE, (3, *pre.size), 2, pretrained=True)
    cache = FeatureCache(recipe(model, pre.mean, pre.std, False, "cpu"))
    out = []
    for start in range(0, count, CHUNK):
        chunk = range(start, min(start + CHUNK, count))
        images = torch.stack([pre.prepare_image(decoded(i)) for i in chunk])
        feats, _ = cached_features(
            images, cache,
            lambda todo: extract_features(model, todo, pre, torch.device("cpu")),
        )  # fmt: skip
        out.append(feats)
        if progress is not None:
            progress(chunk.stop, count)
    return torch.cat(out) if out else torch.zeros(0, 1280)


def _decoded(inventory: Inventory, item: Item, side: int):
    if inventory.root is not None:  # as the folder loader decodes it: reduced to what is used
        from sightline.data.images import open_image

        return open_image(inventory.root / item.path, max_side=side)
    return inventory.open(item)


NEIGHBOURS = 20  # the k of the nearest-neighbour vote
VOTE_TEMPERATURE = 0.1  # of the cosine similarities that weigh the votes


def out_of_fold(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                fold: torch.Tensor, weight_decay: float) -> torch.Tensor:  # fmt: skip
    """(N, K) probabilities for each fold from the other folds: the mean of a linear head
    (L-BFGS) and a vote of the nearest neighbours, on unit-length features. The two err on
    different images: on 1,000 CIFAR-10 photos with 50 labels flipped, 43 of them among the
    75 most suspect where either alone put 40-41. An image of fold -1 is never held out (its
    row stays 0): the models always learn from it."""
    jobs = fold_jobs(features, labels, num_classes, fold, weight_decay)
    return gather(side_by_side(jobs), len(features), num_classes)


def gather(folded: list[tuple[torch.Tensor, torch.Tensor]], n: int,
           num_classes: int) -> torch.Tensor:  # fmt: skip
    """The (n, K) out-of-fold probabilities from each fold's (rows, probabilities); 0 elsewhere."""
    probs = torch.zeros(n, num_classes)
    for held, p in folded:
        probs[held] = p
    return probs


def fold_jobs(features: torch.Tensor, labels: torch.Tensor, num_classes: int, fold: torch.Tensor,
              weight_decay: float) -> list[Callable[[], tuple[torch.Tensor, torch.Tensor]]]:  # fmt: skip
    """``out_of_fold``'s fits, one job a fold: (the fold's rows, their probabilities)."""
    f = F.normalize(features, dim=1)

    def job(k: int) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
        held = fold == k
        return lambda: (
            held,
            head_and_vote(f[~held], labels[~held], f[held], num_classes, weight_decay, k),
        )

    return [job(k) for k in fold.unique().tolist() if k >= 0]


def side_by_side(jobs: list[Callable[[], T]]) -> list[T]:
    """The jobs' answers in order, run on as many threads as there are cores (at most one a
    job). Each fit runs on the intra-op threads its caller set (``fold_threads``: one, for the
    process) and seeds its own generator, so the answers are the same bits as one after
    another: the labelling loop's refit with 1,500 of 3,000 images labelled took 1.24 s
    instead of 1.65 s on 2 cores (the GIL between L-BFGS's small steps keeps it from 2x)."""
    workers = min(len(jobs), cpu_cores())
    if workers <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(workers, thread_name_prefix="sightline-fold") as pool:
        return list(pool.map(lambda job: job(), jobs))


def head_and_vote(known: torch.Tensor, labels: torch.Tensor, query: torch.Tensor,
                  num_classes: int, weight_decay: float, seed: int = 0) -> torch.Tensor:  # fmt: skip
    """(len(query), K) probabilities from the ``known`` unit-length features and their
    ``labels``: the mean of a linear head (L-BFGS) and a vote of the nearest neighbours."""
    head = _fit_head(known * 10, labels, num_classes, weight_decay, seed=seed)  # x10: small weights
    with torch.no_grad():
        linear = head(query * 10).softmax(1)
    similarity, nearest = (query @ known.T).topk(min(NEIGHBOURS, len(known)), dim=1)
    weights = (similarity / VOTE_TEMPERATURE).softmax(1)
    vote = torch.zeros(len(query), num_classes).scatter_add_(1, labels[nearest], weights)
    return (linear + vote) / 2


def _fit_head(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float,
              seed: int) -> torch.nn.Linear:  # fmt: skip
    # nn.Linear's own start, drawn from a generator of this fit's own: the global one would be
    # shared by the fits that run side by side (``side_by_side``).
    head = torch.nn.utils.skip_init(torch.nn.Linear, x.shape[1], num_classes)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        torch.nn.init.kaiming_uniform_(head.weight, a=math.sqrt(5), generator=g)
        head.bias.uniform_(-1 / math.sqrt(x.shape[1]), 1 / math.sqrt(x.shape[1]), generator=g)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(x), y) + weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head
