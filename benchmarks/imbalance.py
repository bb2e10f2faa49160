"""Class weights on long-tailed data: the standard long-tailed CIFAR-10 (imbalance ratio 100: the
classes keep 5,000 x 100^(-i/9) of their training images, 5,000 down to 50; 12,406 in all),
trained with ``balance`` on and, as the baseline in the same process, off; both scored on the
whole, balanced test set (10,000 images). Balanced accuracy is the mean of the classes' recalls.

    .venv/bin/python benchmarks/imbalance.py [--model fastcnn] [--epochs 15] [--ratio 100]
"""

from __future__ import annotations

import argparse
import time

import torch

import sightline
from sightline.data.dataset import ImageSet


def long_tailed(ratio: float) -> sightline.data.Dataset:
    ds = sightline.load_dataset("cifar10", val_split=0.1, progress=False)
    keep = []
    for c in range(10):
        idx = torch.nonzero(ds.train.labels == c).flatten()
        n = round(len(idx) * ratio ** (-c / 9))
        keep.append(idx[:n])
    pick = torch.cat(keep)
    train = ImageSet(ds.train.images[pick], ds.train.labels[pick])
    return ds.__class__(**{**ds.__dict__, "name": f"cifar10-lt{ratio:g}", "train": train})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="fastcnn")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--ratio", type=float, default=100)
    args = ap.parse_args()
    data = long_tailed(args.ratio)
    counts = torch.bincount(data.train.labels, minlength=10).tolist()
    print(f"{data.name}: {len(data.train):,} training images, per class {counts}; "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for balance in (False, True):
            start = time.perf_counter()
            r = sightline.run_training(data, args.model, runs_dir=tmp, epochs=args.epochs,
                                       balance=balance, progress="quiet", report=False)  # fmt: skip
            m = r.metrics
            print(f"balance={balance}: test accuracy {m.accuracy:.4f}, balanced accuracy "
                  f"{m.balanced_accuracy:.4f}, recalls {[round(x, 2) for x in m.recall]}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
