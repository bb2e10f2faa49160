"""Does stronger augmentation help where sightline trains? TrivialAugment, RandAugment, mixup
and cutmix against the folder recipe's own (shifts and flips), all in one process.

The folder is benchmarks/transfer.py's: 600 CIFAR-10 PNGs (200 each of airplane, automobile,
bird), trained from scratch with the folder recipe (``sightline train FOLDER`` with no flags:
fastcnn at 32 px, 18 epochs of 17 steps: the recipe's 300 steps), then the same with each augmentation, at the recipe's
epochs and at twice them (stronger augmentation usually needs longer training). Scored on the
3,000 CIFAR-10 test images of those classes; each setting with ``--seeds`` seeds.

    .venv/bin/python benchmarks/augment.py [--seeds 2] [--test 3000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from transfer import build_folder, run

SETTINGS: dict[str, dict] = {
    "recipe (shifts, flips)": {},
    "trivial": {"augment": "trivial"},
    "randaugment": {"augment": "randaugment"},
    "mixup 0.2": {"mixup": 0.2},
    "cutmix 1.0": {"cutmix": 1.0},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--test", type=int, default=3000)
    p.add_argument("--only", default="", help="comma-separated setting names")
    p.add_argument("--longer", action="store_true", help="also at twice the recipe's epochs")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        test_x, test_y = build_folder(folder)
        test_x, test_y = test_x[: args.test], test_y[: args.test]
        print(
            f"{'setting':28} {'epochs':>6} {'accuracy (each seed)':>30} {'mean':>7} {'train s':>8}"
        )
        for name, options in SETTINGS.items():
            if args.only and name.split()[0] not in args.only.split(","):
                continue
            recipe_epochs = 0
            for scale in (1, 2) if args.longer else (1,):
                accs, secs = [], []
                for seed in range(args.seeds):
                    extra = {"epochs": 2 * recipe_epochs} if scale == 2 else {}
                    r = run(
                        folder, Path(tmp) / "runs", test_x, test_y, seed=seed, **options, **extra
                    )
                    accs.append(r["accuracy"])
                    secs.append(r["train_s"])
                    recipe_epochs = recipe_epochs or r["epochs"]
                shown = " ".join(f"{a:.2%}" for a in accs)
                epochs = str(r["epochs"])
                print(f"{name:28} {epochs:>6} {shown:>30} {statistics.mean(accs):7.2%} "
                      f"{statistics.mean(secs):8.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
