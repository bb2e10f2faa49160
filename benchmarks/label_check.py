"""The label check on clean and planted folders (issue 51): what it flags, what --fix would
move, and cleanlab's ``find_label_issues`` on the same out-of-fold probabilities beside it.

Clean folders (every flag is false): 2 x 21 and 2 x 20 digits, 5 x 40 digits (mixed sizes,
modes and formats, and plain), 5 x 40 Fashion-MNIST items, 10 x 60 Fashion-MNIST items,
10 x 100 digits, 3, 5 and 10 classes of CIFAR-10 photos, 4 digit classes with one of shoes,
4 photo classes with one of digits. Planted (tests/planted_folder.py): 1,450 digits 0-4 with 60
labels flipped, 1,500 CIFAR-10 photos with 50. No assertions: numbers to read. Needs the
dataset files ($SIGHTLINE_DATA_MIRROR, or a download) and cleanlab (the dev extra).

    .venv/bin/python benchmarks/label_check.py [--only tiny2,planted_digits]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the planted and digit folders are test data

from digit_folder import build_folder  # noqa: E402
from planted_folder import plant  # noqa: E402

import sightline  # noqa: E402
from sightline.health import check  # noqa: E402


def pick(data, c: int, k: int, skip: int = 0) -> list[np.ndarray]:
    index = (data.train.labels == c).nonzero().flatten()[skip : skip + k]
    arrays = data.train.images[index].permute(0, 2, 3, 1).numpy()
    return [a[..., 0] if a.shape[2] == 1 else a for a in arrays]


def write(root: Path, by_class: dict[str, list[np.ndarray]], formats=("png",)) -> Path:
    n = 0
    for name, arrays in by_class.items():
        (root / name).mkdir(parents=True)
        for a in arrays:
            Image.fromarray(a).save(root / name / f"{n:04d}.{formats[n % len(formats)]}")
            n += 1
    return root


def folders(tmp: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """name -> (folder, flipped path -> true class); clean folders have none flipped."""
    load = lambda name: sightline.load_dataset(name, val_split=0, progress=False)  # noqa: E731
    mn, fm, cf = load("mnist"), load("fashion-mnist"), load("cifar10")
    out = {
        "tiny2": write(tmp / "tiny2", {"zero": pick(mn, 0, 21), "one": pick(mn, 1, 21)}),
        "tiny2x20": write(
            tmp / "tiny2x20", {"a": pick(mn, 3, 20, 100), "b": pick(mn, 8, 20, 100)}, ("png", "jpg")
        ),  # fmt: skip
        "small5": build_folder(tmp / "small5", mn, per_class=40),
        "small5b": write(
            tmp / "small5b", {f"digit_{c}": pick(mn, c, 40, 500) for c in range(5)}, ("png", "jpg")
        ),  # fmt: skip
        "fashion5": write(
            tmp / "fashion5", {fm.classes[c]: pick(fm, c, 40) for c in (0, 1, 5, 7, 9)}
        ),
        "fashion10x60": write(
            tmp / "fashion10x60", {fm.classes[c]: pick(fm, c, 60, 300) for c in range(10)}
        ),
        "digits10x100": write(
            tmp / "digits10x100", {str(c): pick(mn, c, 100, 2000) for c in range(10)}
        ),
        "photos3": write(
            tmp / "photos3", {cf.classes[c]: pick(cf, c, 40) for c in range(3)}, ("png", "jpg")
        ),
        "photos5": write(
            tmp / "photos5",
            {cf.classes[c]: pick(cf, c, 40, 50) for c in range(3, 8)},
            ("png", "jpg"),
        ),
        "photos10x30": write(
            tmp / "photos10x30",
            {cf.classes[c]: pick(cf, c, 30, 200) for c in range(10)},
            ("png", "jpg"),
        ),
        "oddclass": write(
            tmp / "oddclass",
            {**{f"d{c}": pick(mn, c, 40, 1000) for c in range(4)}, "shoes": pick(fm, 7, 40, 1000)},
        ),  # fmt: skip
        "oddclass_photo": write(
            tmp / "oddclass_photo",
            {
                **{cf.classes[c]: pick(cf, c, 40, 1000) for c in range(4)},
                "digits": [np.stack([x] * 3, -1) for x in pick(mn, 2, 40, 1000)],
            },
        ),  # fmt: skip
    }
    result = {name: (root, {}) for name, root in out.items()}
    keep = (mn.train.labels < 5).nonzero().flatten()[:1450]
    truth = plant(tmp / "planted_digits", mn.train.images[keep, 0].numpy(),
                  mn.train.labels[keep].numpy(), [str(c) for c in range(5)], test=250)  # fmt: skip
    result["planted_digits"] = (tmp / "planted_digits", truth.flipped)
    keep = (
        torch.cat([(cf.train.labels == c).nonzero().flatten()[:150] for c in range(10)])
        .sort()
        .values
    )
    truth = plant(tmp / "planted_cifar", cf.train.images[keep].permute(0, 2, 3, 1).numpy(),
                  cf.train.labels[keep].numpy(), list(cf.classes), test=150, flip=50 / 1350)  # fmt: skip
    result["planted_cifar"] = (tmp / "planted_cifar", truth.flipped)
    return result


def cleanlab_count(root: Path, flipped: dict[str, str]) -> str:
    """cleanlab's find_label_issues on the check's own out-of-fold probabilities (from the
    feature cache): issues found, flips among them."""
    from cleanlab.filter import find_label_issues

    from sightline.health.duplicates import NEAR, copy_groups, near_pairs
    from sightline.health.labels import out_of_fold
    from sightline.health.scan import scan_folder

    inv = scan_folder(root)
    oof = out_of_fold(inv, copy_groups(inv.items, NEAR, near_pairs(inv.items, NEAR)))
    y = np.array([i.label for i in inv.items])
    raw = (oof.probs / oof.probs.sum(1, keepdim=True)).numpy()
    issues = [inv.items[i].path for i in find_label_issues(y, raw).nonzero()[0]]
    return (
        f"{len(issues)} ({sum(p in flipped for p in issues)} flips)"
        if flipped
        else str(len(issues))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated folder names")
    args = parser.parse_args()
    print("| folder | images | time | judged (balanced accuracy) | flagged | flips flagged | "
          "--fix would relabel (flips) | cleanlab on the same probabilities |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (root, flipped) in folders(Path(tmp)).items():
            if args.only and name not in args.only.split(","):
                continue
            start = time.perf_counter()
            report = check(root)
            seconds = time.perf_counter() - start
            labels = report.labels or {}
            found = report.of_kind("label")
            fix = [p for p in found if p.details["fixable"]]
            judged = (
                ("yes" if labels.get("reliable") else "for review")
                if labels.get("judged")
                else "abstains"
            )
            bacc = labels.get("balanced_accuracy")
            hits = (
                f"{sum(p.paths[0] in flipped for p in found)} of {len(flipped)}" if flipped else "-"
            )
            fixes = (
                f"{len(fix)} ({sum(p.paths[0] in flipped for p in fix)})"
                if flipped
                else str(len(fix))
            )
            print(f"| {name} | {report.images:,} | {seconds:.1f} s | {judged}"
                  f"{f' ({bacc:.1%})' if bacc is not None else ''} | {len(found)} | {hits} | "
                  f"{fixes} | {cleanlab_count(root, flipped)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
