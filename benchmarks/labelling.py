"""Simulated labelling: the labelling loop's order against random order, and its refit time.

A script answers with the true labels. The pool is CIFAR-10 training photos (3 classes x 200, and
10 classes x 300: 3,000) or photos of Fashion-MNIST items (tests/photo_generator.py: 10 x 100),
prepared as the loop prepares them (EfficientNet-Lite0's ImageNet features,
``health.features.image_features``, cached by content). Each round labels a batch: the loop's
choice (``labelling.ranking.ask``: typical images first, then the most uncertain, spread, with
the "unlike anything" group labelled after them as a person would) or a random batch; after each
round the loop's model (``labelling.model.fit``) is scored on test photos of the same classes.
The target (issue 56): the loop reaches the all-labelled accuracy minus 1 point with at most half
the labels random order needs, on average over as many pools as seeds (each seed: a pool, the
loop's one curve on it and ``--orders`` random orders). Also timed: one refit (the model with
its cross-validated estimate, and the ranking) with half the 3,000 labelled.

    .venv/bin/python benchmarks/labelling.py [--seeds 3] [--orders 3] [--batch 10] [--tasks ...]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

import sightline
from sightline.health.features import image_features
from sightline.labelling import model as loop_model
from sightline.labelling import ranking

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the photo generator

TASKS = {
    "cifar3": (["airplane", "automobile", "bird"], 200, 1500),
    "cifar10": (None, 300, 2000),  # every class
    "fashion-photos": (None, 100, 500),  # photos of the items (tests/photo_generator.py)
}


def features_of(images: torch.Tensor) -> torch.Tensor:
    def decoded(i: int) -> Image.Image:
        return Image.fromarray(images[i].permute(1, 2, 0).numpy())

    return F.normalize(image_features(len(images), decoded), dim=1)


def photo_features(photos: list) -> torch.Tensor:
    def decoded(i: int) -> Image.Image:
        return Image.open(io.BytesIO(photos[i].data))

    return F.normalize(image_features(len(photos), decoded), dim=1)


def pool_and_test(
    task: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The pool's features and labels, the test photos' and the classes. Seed 0: the first
    images of each class (the pool measured first); another seed draws them at random, and for
    the photos of clothing renders them anew, so the loop's order, which has no randomness of its
    own, is measured on as many pools as random order has seeds. The test photos stay."""
    classes, per_class, test_n = TASKS[task]
    g = torch.Generator().manual_seed(seed)

    def rows_of(labels: torch.Tensor, k: int) -> torch.Tensor:
        picked = []
        for c in range(k):
            rows = torch.nonzero(labels == c).flatten()
            if seed:
                rows = rows[torch.randperm(len(rows), generator=g)]
            picked.append(rows[:per_class])
        return torch.cat(picked)

    if task == "fashion-photos":  # a user's photos of clothes, as the photo tests make them
        from photo_generator import photos

        ds = sightline.load_dataset("fashion-mnist", val_split=0, progress=False)
        rows = rows_of(ds.train.labels, 10)
        pool = photo_features(photos(ds.train.images[rows, 0].numpy(), seed=3 + 10 * seed))
        test = photo_features(photos(ds.test.images[:test_n, 0].numpy(), seed=4))
        return pool, ds.train.labels[rows], test, ds.test.labels[:test_n], 10
    ds = sightline.load_dataset("cifar10", classes=classes, val_split=0, progress=False)
    k = ds.num_classes
    rows = rows_of(ds.train.labels, k)
    test = torch.arange(min(test_n, len(ds.test.labels)))
    return (features_of(ds.train.images[rows]), ds.train.labels[rows],
            features_of(ds.test.images[test]), ds.test.labels[test], k)  # fmt: skip


def accuracy(x: torch.Tensor, y: torch.Tensor, labelled: list[int], test_x: torch.Tensor,
             test_y: torch.Tensor, k: int) -> float:  # fmt: skip
    from sightline.health.features import head_and_vote
    from sightline.health.labels import HEAD_DECAY, fold_threads

    idx = torch.tensor(labelled)
    with fold_threads():
        probs = head_and_vote(x[idx], y[idx], test_x, k, HEAD_DECAY)
    return float((probs.argmax(1) == test_y).double().mean())


def simulate(x, y, test_x, test_y, k, batch: int, rounds: int, loop: bool, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=g).tolist()
    labelled: list[int] = []
    curve = []
    for _ in range(rounds):
        done = set(labelled)
        waiting = [i for i in range(len(y)) if i not in done]
        if not waiting:
            break
        if not loop:
            chosen = [i for i in order if i not in done][:batch]
        else:
            chosen = choose(x, y, labelled, waiting, k, batch, seed)
        labelled += chosen
        labels = y[torch.tensor(labelled)]
        if loop_model.can_fit(labels, k) and len(labels.unique()) == k:
            curve.append((len(labelled), accuracy(x, y, labelled, test_x, test_y, k)))
    return curve


def choose(x, y, labelled, waiting, k, batch, seed) -> list[int]:
    """The loop's next batch, as ``sightline label`` asks (``ranking.ask``); the "unlike
    anything" group is labelled once nothing else waits, as a person would."""
    w = torch.tensor(waiting)
    idx = torch.tensor(labelled, dtype=torch.long)
    known, labels = x[idx], y[idx]
    answers = loop_model.fit(known, labels, k, x[w]) if loop_model.can_fit(labels, k) else None
    return [waiting[i] for i, _ in ranking.ask(x[w], known, batch, k, answers)]


def labels_to_reach(curve: list, target: float) -> int | None:
    return next((n for n, acc in curve if acc >= target), None)


SHARES = (0.1, 0.2, 0.4)  # of the pool: where both orders' accuracies are compared


def accuracy_at(curve: list, labels: int) -> float | None:
    """The curve's accuracy with ``labels`` labels (its last point at or under them); None
    where the curve stops short of them (``--max-labels``)."""
    if not curve or curve[-1][0] < labels:
        return None
    return next((acc for n, acc in reversed(curve) if n <= labels), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--tasks", default="cifar3,cifar10,fashion-photos")
    ap.add_argument("--orders", type=int, default=3, help="random orders per pool")
    ap.add_argument("--max-labels", type=int, default=1500, help="stop each curve there")
    args = ap.parse_args()
    for task in args.tasks.split(","):
        reached: dict[str, list] = {"loop": [], "random": []}
        # Labels to the target sit where a curve crosses a line near its plateau, and move by
        # rounds between orders; the accuracy at a given number of labels is the steadier view.
        at: dict[str, list] = {"loop": [], "random": []}
        for seed in range(args.seeds):
            start = time.perf_counter()
            x, y, test_x, test_y, k = pool_and_test(task, seed)
            full = accuracy(x, y, list(range(len(y))), test_x, test_y, k)
            target = full - 0.01
            rounds = min(len(y), args.max_labels) // args.batch
            print(f"{task} seed {seed}: {len(y)} pool photos, {len(test_y)} test; features "
                  f"{time.perf_counter() - start:.0f} s; all labelled: {full:.2%}; "
                  f"target {target:.2%}")  # fmt: skip
            # The loop's order has no randomness: one curve a pool. Random order's labels to the
            # target vary by 2x between orders on one pool: several a pool.
            runs = [("loop", True, seed)]
            runs += [("random", False, seed + 1000 * r) for r in range(args.orders)]
            for name, is_loop, order_seed in runs:
                curve = simulate(x, y, test_x, test_y, k, args.batch, rounds, is_loop, order_seed)
                reached[name].append(labels_to_reach(curve, target))
                at[name].append([accuracy_at(curve, int(share * len(y))) for share in SHARES])
                points = ", ".join(f"{n}:{a:.1%}" for n, a in curve[:: max(1, len(curve) // 8)])
                print(f"  {name:>6}: reaches the target at {reached[name][-1]} labels; {points}",
                      flush=True)  # fmt: skip
            if task == "cifar10" and seed == 0:
                refit_time(x, y, k)
        if all(reached["loop"]) and all(reached["random"]):
            loop, rand = statistics.mean(reached["loop"]), statistics.mean(reached["random"])
            print(f"{task}: loop {reached['loop']} (mean {loop:.0f}), random {reached['random']} "
                  f"(mean {rand:.0f}): loop / random = {loop / rand:.2f}")  # fmt: skip
        else:
            print(f"{task}: loop {reached['loop']}, random {reached['random']} (None: not reached)")
        for name, rows in at.items():
            shown = []
            for i, share in enumerate(SHARES):
                accs = [r[i] for r in rows if r[i] is not None]
                if accs:
                    shown.append(f"{share:.0%} of the pool labelled {statistics.mean(accs):.1%}")
            print(f"{task}: {name} accuracy with " + ", ".join(shown))


def refit_time(x, y, k) -> None:
    half = len(y) // 2
    times = []
    for _ in range(3):
        start = time.perf_counter()
        answers = loop_model.fit(x[:half], y[:half], k, x[half:])
        ranking.ask(x[half:], x[:half], 20, k, answers)
        times.append(time.perf_counter() - start)
    print(f"  refit with {half} labelled + {len(y) - half} waiting: "
          f"median {statistics.median(times):.2f} s of {[round(t, 2) for t in times]}")  # fmt: skip


if __name__ == "__main__":
    main()
