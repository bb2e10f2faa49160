"""`sightline check` on folders with planted mistakes (tests/planted_folder.py): time, and how
much of what was planted it finds, with what false alarms.

- digits: MNIST digits of all ten classes (default 10,000, 28 px PNGs; the issue's target is
  <= 60 s for 10,000 small images on 2 cores), 5 % of the training labels flipped, 20 copies
  (5 under another class), 15 near copies, 12 test images copied from training, 6 corrupt.
- photos: CIFAR-10 training photos of all ten classes (default 1,000; target <= 2 min with
  pretrained features), the same mistakes; checked twice, the second time from the feature
  cache (a fresh cache folder each run).

As a baseline, in this process: the same folders checked without the label search
(--no-labels), which costs only the reading. No assertions: numbers to read. Needs the MNIST and
CIFAR-10 files ($SIGHTLINE_DATA_MIRROR, or a download).

    .venv/bin/python benchmarks/check.py [--digits 10000] [--photos 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the planted folder is test data, kept with the tests

from planted_folder import Truth, plant  # noqa: E402

import sightline  # noqa: E402
from sightline.health import check  # noqa: E402


def found(report, kind: str, pairs) -> int:
    groups = [set(p.paths) for p in report.of_kind(kind)]
    return sum(any(set(pair) <= g for g in groups) for pair in pairs)


def score(name: str, report, truth: Truth, seconds: float, labels: bool) -> None:
    near = report.of_kind("near-duplicate")
    false_near = len(near) - found(report, "near-duplicate", truth.near)
    copies = truth.copies + truth.conflicts
    line = (
        f"{name}: {report.images:,} images in {seconds:.1f} s | corrupt "
        f"{len(report.flagged_paths(('corrupt',)) & set(truth.corrupt))}/{len(truth.corrupt)} | "
        f"copies {found(report, 'duplicate', copies)}/{len(copies)} | leaks "
        f"{found(report, 'leak', truth.leaks)}/{len(truth.leaks)} | near "
        f"{found(report, 'near-duplicate', truth.near)}/{len(truth.near)}, {false_near} false "
        f"({1000 * false_near / report.images:.2f} per 1,000 images)"
    )
    if labels:
        top = report.of_kind("label")[: int(1.5 * len(truth.flipped))]
        hits = [p for p in top if p.paths[0] in truth.flipped]
        right = sum(truth.flipped[p.paths[0]] == p.details["suggested"] for p in hits)
        line += (
            f" | flipped labels in the top 1.5x: {len(hits)}/{len(truth.flipped)} "
            f"({len(hits) / max(1, len(truth.flipped)):.0%}), suggestion right {right}; "
            f"{len(report.of_kind('label')):,} flagged in all"
        )
    print(line, flush=True)


def timed_check(folder: Path, labels: bool = True):
    start = time.perf_counter()
    report = check(folder, labels=labels)
    return report, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=int, default=10_000)
    parser.add_argument("--photos", type=int, default=1_000)
    args = parser.parse_args()
    print(f"sightline {sightline.__version__}, "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["SIGHTLINE_CACHE_DIR"] = str(tmp / "cache")  # cold feature cache
        if args.digits:
            mnist = sightline.load_dataset("mnist", val_split=0, progress=False)
            n = args.digits + args.digits // 10
            images, labels = mnist.train.images[:n, 0].numpy(), mnist.train.labels[:n].numpy()
            truth = plant(tmp / "digits", images, labels, [str(c) for c in range(10)],
                          test=args.digits // 10)  # fmt: skip
            report, seconds = timed_check(tmp / "digits", labels=False)
            score("digits, --no-labels (baseline)", report, truth, seconds, False)
            report, seconds = timed_check(tmp / "digits")
            score("digits", report, truth, seconds, True)
        if args.photos:
            cifar = sightline.load_dataset("cifar10", val_split=0, progress=False)
            n = args.photos + args.photos // 10
            images = cifar.train.images[:n].permute(0, 2, 3, 1).numpy()
            truth = plant(tmp / "photos", images, cifar.train.labels[:n].numpy(),
                          list(cifar.classes), test=args.photos // 10)  # fmt: skip
            report, seconds = timed_check(tmp / "photos", labels=False)
            score("photos, --no-labels (baseline)", report, truth, seconds, False)
            report, seconds = timed_check(tmp / "photos")
            score("photos, features computed", report, truth, seconds, True)
            report, seconds = timed_check(tmp / "photos")
            score("photos, features from the cache", report, truth, seconds, True)


if __name__ == "__main__":
    main()
