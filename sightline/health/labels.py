"""The label search's models: every image judged by models that never saw it.

The images are split into folds (copies and near copies always in the same fold, or a model
would have seen an image through its copy); a model is trained on all folds but one and
predicts the one left out: for photos (mostly colour images) a linear head on pretrained
ImageNet features (``health/features.py``), for gray images a small CNN on the 32 px
thumbnails with that head beside it, so every image gets probabilities from models that did
not learn its label (Northcutt et al.'s out-of-fold recipe, as cleanlab asks its users to
compute). What those probabilities are worth on this folder, and which images they flag, is
``health/label_quality.py``'s; the outlier score is here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sightline.health.problems import Problem
from sightline.health.scan import THUMB, Inventory

# ----------------------------------------------------------------------- hyperparameters
FOLDS = 4
PHOTO_DRAWS = 3  # fold draws averaged for photos, whose folds only fit a head on cached features
EPOCHS = (3, 8)  # fewest and most: as many as fit ~30,000 images a fold (10,000 images: 4)
STEPS_PER_FOLD = 30_000  # images a fold trains on, in all: a thousand images get 8 epochs
# Optimizer steps a fold takes at the least: with 8 epochs of a 40-image folder's 1 batch a fold
# model stayed at chance (and flagged half of a clean folder); 200 steps: 0 of 42 clean 0s/1s.
MIN_STEPS = 200
# Gray folders up to this many images are judged by the features' head beside the CNN (the
# backbone's ~10 ms an image on 2 cores: 30 s at most, cached after); larger folders train the
# CNN on enough images alone (10 x 100 clean digits: 97.7 % held-out alone, 98.1 % with it).
GRAY_FEATURES_UP_TO = 3_000
BATCH = 64
FOLD_THREADS = 1  # always: the same answer everywhere, and no oversubscription beside other work
LR = 0.1  # peak of a one-cycle schedule, SGD with Nesterov momentum
WIDTH = 16  # fastcnn width: a few seconds a fold for a thousand 32 px images on 2 cores
SHIFT = 2  # px of random translation: a model that memorises less, and so flags more
NEIGHBOURS = 5  # of the outlier score
# Over this robust z an image is an outlier: few flagged, and those worth a look. The planted
# digit folder (1,450 MNIST digits) with 10 Fashion-MNIST images and 5 noise images added: z > 8
# flagged 5 of the 15 and none of its 1,497 own images; z > 6 7 and 1; z > 4 13 and 20.
OUTLIER_Z = 8.0
# The photo head's L2 penalty. 1,000 CIFAR-10 training images, 50 labels flipped, 6 draws:
# 0.1 put 40-46 of the 50 among the 75 most suspect, 0.001 34-37, 1.0 33-39.
HEAD_DECAY = 0.1


def fold_of(
    inventory: Inventory, groups: list[list[int]], folds: int, seed: int = 0
) -> torch.Tensor:
    """(N,) fold index per item; the items of one group (copies) share a fold."""
    n = len(inventory.items)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for group in groups:
        for i in group[1:]:
            parent[root(i)] = root(group[0])
    roots = torch.tensor([root(i) for i in range(n)])
    unique, inverse = torch.unique(roots, return_inverse=True)
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed))
    return (order % folds)[inverse]


def _fold_model(num_classes: int) -> torch.nn.Module:
    from sightline.models.registry import create_model

    model = create_model("fastcnn", (1, THUMB, THUMB), num_classes, width=WIDTH, stages=4)
    return model.to(memory_format=torch.channels_last)


def _step(model, opt, xb, yb) -> None:
    loss = F.cross_entropy(model(xb), yb, label_smoothing=0.1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _train_and_predict(x, y, test_x, num_classes: int, seed: int):
    """A fold model, in float32 on every machine: the findings must not hang on a timing (bf16
    where it was faster gave 90 findings instead of 82 on one folder under load)."""
    torch.manual_seed(seed)
    model = _fold_model(num_classes)
    per_epoch = math.ceil(len(x) / BATCH)
    epochs = max(EPOCHS[0], min(EPOCHS[1], math.ceil(STEPS_PER_FOLD / max(1, len(x)))))
    epochs = max(epochs, math.ceil(MIN_STEPS / per_epoch))
    steps = epochs * per_epoch
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=steps, pct_start=0.25)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=g).split(BATCH):
            _step(model, opt, _shift(x[batch], g), y[batch])
            sched.step()
    model.eval()
    _, train_features = _forward(model, x)
    probs, test_features = _forward(model, test_x)
    return probs, train_features, test_features


@torch.inference_mode()
def _forward(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, penultimate features) of ``x``, in batches."""
    from sightline.infer.ood import penultimate

    taken: list[torch.Tensor] = []
    hook = penultimate(model).register_forward_pre_hook(lambda m, args: taken.append(args[0]))
    try:
        probs = torch.cat([model(b).softmax(1) for b in x.split(512)])
    finally:
        hook.remove()
    return probs, torch.cat(taken).float()


def outlier_z(train: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """How unlike a fold's training images each held-out image is: the mean cosine distance
    of its features to their 5 nearest training images, as a robust z-score among the held-out
    images (median and MAD: outliers are few), so folds with different models compare. (The
    relative Mahalanobis score of ``infer/ood.py`` separated planted outliers less here: its
    Gaussians are fitted on a few hundred images per fold.)"""
    a, b = F.normalize(held.float(), dim=1), F.normalize(train.float(), dim=1)
    scores = 1 - (a @ b.T).topk(min(NEIGHBOURS, len(b)), dim=1).values.mean(1)
    median = scores.median()
    spread = (scores - median).abs().median().clamp(min=1e-6) * 1.4826
    return (scores - median) / spread


def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The batch moved by up to SHIFT px in x and y (one offset a batch: no per-image loop)."""
    dy, dx = (int(v) for v in torch.randint(-SHIFT, SHIFT + 1, (2,), generator=g))
    return torch.roll(x, (dy, dx), dims=(2, 3))


@dataclass
class OutOfFold:
    probs: torch.Tensor  # (N, K) from models that did not train on the image
    outlier: torch.Tensor  # (N,) robust z of the "none of these" score (``outlier_z``)
    judges: str  # which models gave ``probs``, in words


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``n`` for a while: a float sum splits by thread count,
    so the fold models' answers (and the findings) would differ between the CLI, the server's
    processes and a test worker (65 against 66 findings on one folder, 1 thread against 2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fold_threads() -> contextlib.AbstractContextManager[None]:
    """The fold models' thread count, for a while (``_threads``): the labelling loop's too."""
    return _threads(FOLD_THREADS)


def out_of_fold(inventory: Inventory, groups: list[list[int]], folds: int = FOLDS,
                progress: Callable[[int, int], None] | None = None) -> OutOfFold:  # fmt: skip
    """Every item judged by models that did not train on it, the same on every run and face
    (float32, seeded, ``FOLD_THREADS`` threads)."""
    with _threads(FOLD_THREADS):
        return _out_of_fold(inventory, groups, folds, progress)


def _out_of_fold(inventory: Inventory, groups: list[list[int]], folds: int,
                 progress: Callable[[int, int], None] | None) -> OutOfFold:  # fmt: skip
    """Every item judged by models that did not train on it. Photos: a head on pretrained
    features. Gray images: a small CNN on the thumbnails, averaged with the features' head
    where the weights are installed: the two err on different images (5 classes x 40 clean
    digits: 1 image at p(label) <= 5 % against 2 and 4 for either alone; the planted digit
    folder: 58 of its 60 flips either way)."""
    from sightline.health import features

    items, k_classes = inventory.items, len(inventory.classes)
    y = torch.tensor([i.label for i in items])
    outlier = torch.zeros(len(items))
    pretrained = features.available()
    if inventory.photos and pretrained:
        # No outliers from ImageNet features: planted noise and other CIFAR-10 classes in a
        # folder of 3 scored no higher than its own photos (benchmarks/README.md).
        probs = _feature_probs(inventory, groups, folds, y, progress)
        return OutOfFold(probs, outlier, f"a head on {features.BACKBONE}'s ImageNet features")
    fold = fold_of(inventory, groups, folds)
    x = torch.from_numpy(np.stack([i.thumb for i in items])).float()[:, None]
    x = ((x - x.mean()) / x.std().clamp(min=1e-6)).contiguous(memory_format=torch.channels_last)
    probs = torch.zeros(len(items), k_classes)
    for k in range(folds):
        held = fold == k
        if held.any():
            probs[held], train_f, held_f = _train_and_predict(
                x[~held], y[~held], x[held], k_classes, k
            )
            outlier[held] = outlier_z(train_f, held_f)
        if progress is not None:
            progress(k + 1, folds)
    if not pretrained or len(items) > GRAY_FEATURES_UP_TO:
        return OutOfFold(probs, outlier, "a small CNN on 32 px thumbnails")
    probs = (probs + _feature_probs(inventory, groups, folds, y, None)) / 2
    judges = f"a small CNN on 32 px thumbnails and a head on {features.BACKBONE}'s features"
    return OutOfFold(probs, outlier, judges)


def _feature_probs(inventory: Inventory, groups: list[list[int]], folds: int, y: torch.Tensor,
                   progress: Callable[[int, int], None] | None) -> torch.Tensor:  # fmt: skip
    """Out-of-fold probabilities of a head on pretrained features, averaged over a few fold
    draws: the ranking does not hang on one draw (one draw's 38 to another's 43 of 50 flipped
    labels found)."""
    from sightline.health import features

    feats = features.photo_features(inventory, progress)
    k_classes = len(inventory.classes)
    return (
        sum(
            features.out_of_fold(
                feats, y, k_classes, fold_of(inventory, groups, folds, seed), HEAD_DECAY
            )
            for seed in range(PHOTO_DRAWS)
        )
        / PHOTO_DRAWS
    )


def add_neighbours(inventory: Inventory, problems: list[Problem]) -> None:
    """Give each ``label`` finding the most similar image of every class (by thumbnail), as
    ``details["neighbours"]`` {class: path}: what a reviewer compares the suspect with."""
    from sightline.health.scan import thumbnails

    suspects = [p for p in problems if p.kind == "label"]
    if not suspects:
        return
    index = {item.path: i for i, item in enumerate(inventory.items)}
    t = thumbnails(inventory.items)
    labels = torch.tensor([i.label for i in inventory.items])
    rows = torch.tensor([index[p.paths[0]] for p in suspects])
    sim = t[rows] @ t.T
    sim[torch.arange(len(rows)), rows] = -2.0  # not itself
    for problem, row in zip(suspects, sim, strict=True):
        neighbours = {}
        for c, name in enumerate(inventory.classes):
            candidates = row.masked_fill(labels != c, -3.0)
            best = int(candidates.argmax())
            if float(candidates[best]) > -2.0:
                neighbours[name] = inventory.items[best].path
        problem.details["neighbours"] = neighbours


def outlier_problems(inventory: Inventory, outlier: torch.Tensor) -> list[Problem]:
    """An ``outlier`` finding for each image far from every training image of the other folds."""
    problems = []
    for i in torch.nonzero(outlier > OUTLIER_Z).flatten().tolist():
        item = inventory.items[i]
        problems.append(Problem("outlier", [item.path],
                                f"unlike the other images of every class (z {float(outlier[i]):.1f}): "
                                "an image of something else, or of nothing?",
                                score=float(outlier[i]),
                                details={"label": inventory.classes[item.label], "split": item.split}))  # fmt: skip
    return problems
