"""Do a run's predictions on photos of test items agree with those on the items themselves?

The photos come from tests/photo_generator.py (light or dark paper, gradients, tints, objects
20-95 % of the frame anywhere in it, ±8° rotations, shadows, frame lines, JPEG, noise, 28 to
4,000 px). For each of N test items: the run's class for the original image and for its photo,
framed as the run's saved preprocessing says (``Preprocess.fit``). Prints the agreement overall
and by each photo property, with, as a baseline in the same process, the agreement when the
whole photo is scaled (``fit="frame"``, what sightline did before framing). Several photo seeds
show the spread of the measurement itself (one item is 0.2 % of 500).

No assertions: numbers to read (tests/integration/test_integration_photos.py holds the floors). Needs the
dataset files ($SIGHTLINE_DATA_MIRROR, or a download) and a trained run:

    .venv/bin/python benchmarks/photos.py runs/fashion-mnist-airnet-... [--n 500] [--seeds 7 11]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the photo generator is test data, kept with the tests

from photo_generator import PhotoStyle, photos  # noqa: E402

import sightline  # noqa: E402
from sightline.infer.predict import predict_tensor  # noqa: E402

# Each property of a photo, and the ranges its agreement is reported over.
BREAKDOWN: dict[str, tuple[Callable[[PhotoStyle], float], list[tuple[float, float]]]] = {
    "rotation (deg)": (lambda s: abs(s.angle), [(0, 2), (2, 4), (4, 6), (6, 9)]),
    "photo side (px)": (lambda s: s.side, [(28, 41), (41, 101), (101, 321), (321, 5000)]),
    "object fill": (lambda s: s.fill, [(0, 0.35), (0.35, 0.6), (0.6, 1.01)]),
    "JPEG quality (0: PNG)": (lambda s: s.jpeg, [(0, 1), (1, 80), (80, 101)]),
    "frame line (px)": (lambda s: s.border, [(0, 1), (1, 9)]),
    "shadow": (lambda s: int(s.shadow), [(0, 1), (1, 2)]),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a run folder trained on fashion-mnist or mnist")
    p.add_argument("--n", type=int, default=500, help="test items (default 500)")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[7],
        help="photo generator seeds (default 7, as the test)",
    )
    args = p.parse_args()
    run = sightline.load_run(
        Path(args.run)
    )  # a Path: any folder the user names, not only under ./runs
    name = run.config["data"]["name_or_path"]
    data = sightline.load_dataset(name, val_split=0, progress=False)
    items = data.test.images[: args.n]
    model = run.load_model()
    originals = run.predict(items).argmax(1)
    confidence = run.predict(items).max(1).values.numpy()
    print(
        f"{run.path}: {name}, fit={run.preprocess.fit!r}, {args.n} test items, "
        f"reframe={run.config['train'].get('reframe', 0.0)}, epochs={run.config['train']['epochs']}"
    )
    for seed in args.seeds:
        shots = list(photos(items[:, 0].numpy(), seed=seed))
        files = [s.data for s in shots]
        agree = (run.predict(files).argmax(1) == originals).numpy()
        whole = predict_tensor(
            model, dataclasses.replace(run.preprocess, fit="frame"), files
        ).argmax(1)
        print(
            f"\nphoto seed {seed}: agreement {agree.mean():.1%} "
            f"(whole photo scaled, the baseline: {(whole == originals).float().mean().item():.1%})"
        )
        for label, (key, bins) in BREAKDOWN.items():
            values = np.array([key(s.style) for s in shots])
            parts = [
                f"{lo:g}-{hi:g}: {agree[m].mean():.1%} (n={int(m.sum())})"
                for lo, hi in bins
                if (m := (values >= lo) & (values < hi)).any()
            ]
            print(f"  {label:<22} " + "   ".join(parts))
        low = confidence < 0.6
        print(
            f"  disagreements: {int((~agree).sum())}, of which {int((~agree & low).sum())} on items the run "
            f"itself is unsure of (top probability < 0.6; {int(low.sum())} such items)"
        )


if __name__ == "__main__":
    main()
