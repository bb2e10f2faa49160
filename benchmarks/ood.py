"""How well each run says "none of these", and how well its probabilities are calibrated.

For the default Fashion-MNIST and MNIST runs and the pretrained folder run (600 CIFAR-10 photos
of airplane, automobile, bird), scores images of its classes (its own test split, and for the
small gray datasets catalog photos of its test items) against images of other things:
the other gray dataset's test set, its items as photos (clothing photos for the MNIST run),
CIFAR-10 photos (the other 7 classes for the CIFAR run), generated photos on paper of letters,
everyday objects and textures (and of the letters that are not shaped like a digit: O, I, S,
Z... are digits to an MNIST model, as to a reader), and uniform and structured noise (tests/ood_generator.py).
Three scores: the top probability (calibrated), the energy of the network's own logits, and
sightline's (relative Mahalanobis on the penultimate features, infer/ood.py). Per set: AUROC
(how well the score ranks the run's own test images above the others), FPR@95 (the share of
the others under a threshold keeping 95 % of the test images) and "unknown", the share the run
itself answers unknown at its saved threshold. Then ECE, NLL and Brier on test, before and
after calibration. Images go through the paths predict uses (framing for photos).

    .venv/bin/python benchmarks/ood.py [--fashion RUN] [--mnist RUN] [--cifar3 RUN]
        [--images 2000] [--photos 300]

A run not given is trained first with its defaults (minutes each on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the generators

import ood_generator  # noqa: E402
import photo_generator  # noqa: E402
import photo_styles  # noqa: E402

import sightline  # noqa: E402
from sightline.infer.batched import batched_logits, inference_copy  # noqa: E402
from sightline.infer.calibration import calibration  # noqa: E402
from sightline.infer.ood import detector_of, penultimate  # noqa: E402
from sightline.infer.predict import prepare_named  # noqa: E402
from sightline.run import checkpoint as ckpt  # noqa: E402

CIFAR3 = ["airplane", "automobile", "bird"]


# ---------------------------------------------------------------- measures
def auroc(inside: torch.Tensor, other: torch.Tensor) -> float:
    """P(score of an other image > score of an own image), ties counted half."""
    s = torch.cat([inside, other]).double()
    ranks = torch.empty_like(s)
    order = s.argsort()
    ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float64)
    for v in s.unique()[torch.unique(s, return_counts=True)[1] > 1]:  # ties: their mean rank
        ranks[s == v] = ranks[s == v].mean()
    n1, n0 = len(other), len(inside)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def fpr95(inside: torch.Tensor, other: torch.Tensor) -> float:
    return float((other <= torch.quantile(inside.double(), 0.95).float()).float().mean())


# ---------------------------------------------------------------- scoring one set
class Scorer:
    def __init__(self, run: sightline.Run) -> None:
        model, _ = ckpt.load_model(run.model_file("best"), "cpu")
        self.model = inference_copy(model)
        self.detector = detector_of(model)
        if self.detector is None:
            raise SystemExit(f"{run.name} has no 'none of these' score: sightline calibrate it")
        self.head = penultimate(self.model)
        self.pre = run.preprocess

    def __call__(self, images: torch.Tensor | list[bytes]) -> dict[str, torch.Tensor]:
        if not isinstance(images, torch.Tensor) or tuple(images.shape[1:]) != self.pre.input_shape:
            items = images if isinstance(images, list) else list(images)
            prepared = prepare_named(self.pre, [(str(i), x) for i, x in enumerate(items)])
            assert not prepared.skipped, prepared.skipped[:3]
            images = prepared.images
        logits, features = batched_logits(self.model, images, self.pre, "cpu", 256, True)
        with torch.no_grad():  # the network's own logits, for the energy: the calibrated ones
            raw = self.head(features[:, : self.head.in_features].to(self.head.weight.dtype)).float()
        return {
            "top probability": -logits.softmax(1).max(1).values,
            "energy": -torch.logsumexp(raw, 1),
            "sightline": self.detector.scores(features),
            "logits": logits,
            "raw": raw,
        }


# ---------------------------------------------------------------- the sets
def gray_items(name: str, count: int) -> np.ndarray:
    ds = sightline.load_dataset(name, val_split=0, progress=False)
    return ds.test.images[:count, 0].numpy()


def cifar_photos(count: int, skip: list[str] | None = None) -> list[bytes]:
    import io

    from PIL import Image

    ds = sightline.load_dataset("cifar10", val_split=0, progress=False)
    keep = [i for i, y in enumerate(ds.test.labels.tolist()) if ds.classes[y] not in (skip or [])]
    out = []
    for i in keep[:count]:
        buf = io.BytesIO()
        Image.fromarray(ds.test.images[i].permute(1, 2, 0).numpy()).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def other_sets(kind: str, n: int, photos: int) -> dict[str, torch.Tensor | list[bytes]]:
    generated = {
        "letter photos": ood_generator.item_photos("letters", photos, seed=1),
        "photos of letters unlike digits": ood_generator.item_photos(
            "letters unlike digits", photos, seed=1
        ),
        "object photos": ood_generator.item_photos("objects", photos, seed=2),
        "texture photos": ood_generator.item_photos("textures", photos, seed=3),
        "uniform noise": ood_generator.noise_photos(photos, seed=4),
        "structured noise": ood_generator.noise_photos(photos, seed=5, structured=True),
    }
    if kind == "cifar3":
        return {"other CIFAR-10 classes": cifar_photos(n, skip=CIFAR3), **generated}
    other = "mnist" if kind == "fashion-mnist" else "fashion-mnist"
    ds = sightline.load_dataset(other, val_split=0, progress=False)
    item_photos = [p.data for p in photo_generator.photos(gray_items(other, photos), seed=6)]
    return {
        f"{other} test": ds.test.images[:n],
        f"{other} photos": item_photos,
        "CIFAR-10 photos": cifar_photos(photos),
        **generated,
    }


def own_sets(kind: str, run: sightline.Run, n: int, photos: int) -> dict[str, object]:
    data = run.load_data() if kind != "cifar3" else None
    if kind == "cifar3":
        ds = sightline.load_dataset("cifar10", classes=CIFAR3, val_split=0, progress=False)
        return {"test": ds.test.images[:n], "labels": ds.test.labels[:n]}
    items = data.test.images[:photos, 0].numpy()
    styled = data.test.images[n : n + photos, 0].numpy()  # other items than the test images'
    return {
        "test": data.test.images[:n],
        "labels": data.test.labels[:n],
        "photos": [p.data for p in photo_generator.photos(items, seed=8)],
        # The same classes in the styles users' photos come in (tests/photo_styles.py).
        "styles": {s: photo_styles.styled_photos(styled, s, seed=21) for s in photo_styles.STYLES},
    }


# ---------------------------------------------------------------- training what is missing
def train_missing(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    runs = {}
    for kind, given in (("fashion-mnist", args.fashion), ("mnist", args.mnist),
                        ("cifar3", args.cifar3)):  # fmt: skip
        if given:
            runs[kind] = Path(given)
            continue
        if args.only and kind not in args.only:
            continue
        start = time.perf_counter()
        if kind == "cifar3":
            from transfer import build_folder

            folder = tmp / "cifar600"
            build_folder(folder)
            result = sightline.run_training(folder, model="efficientnet-lite0",
                                            model_options={"pretrained": True}, freeze=True,
                                            runs_dir=tmp / "runs", progress="quiet",
                                            report=False)  # fmt: skip
        else:
            result = sightline.run_training(kind, runs_dir=tmp / "runs", progress="quiet",
                                            report=False)  # fmt: skip
        print(f"trained {kind} in {time.perf_counter() - start:.0f} s: {result.run.path}")
        runs[kind] = Path(result.run.path)
    return runs


def report(kind: str, path: Path, n: int, photos: int) -> None:
    run = sightline.load_run(path)
    score = Scorer(run)
    own = own_sets(kind, run, n, photos)
    mine = score(own["test"])
    threshold = score.detector.threshold
    print(f"\n## {kind}: {run.name} (threshold {threshold:.2f}, keeps "
          f"{score.detector.keep:.0%} of validation)")  # fmt: skip
    unknown = float((mine["sightline"] > threshold).float().mean())
    print(f"own test images answered unknown: {unknown:.1%} of {len(own['test'])}")
    if "photos" in own:
        ph = score(own["photos"])
        print(f"photos of its test items answered unknown: "
              f"{float((ph['sightline'] > threshold).float().mean()):.1%} of {photos}")  # fmt: skip
        for style, images in own["styles"].items():
            share = float((score(images)["sightline"] > threshold).float().mean())
            print(f"  ... {style} photos of other test items: {share:.1%} unknown")
    labels = own["labels"]
    before, after = calibration(mine["raw"], labels), calibration(mine["logits"], labels)
    print(f"test calibration: ECE {before.ece:.2%} -> {after.ece:.2%}, NLL {before.nll:.3f} -> "
          f"{after.nll:.3f}, Brier {before.brier:.4f} -> {after.brier:.4f}")  # fmt: skip
    print("| other images | top probability | energy | sightline | unknown |")
    print("| --- | --- | --- | --- | --- |")
    for name, images in other_sets(kind, n, photos).items():
        theirs = score(images)
        cells = [f"{auroc(mine[s], theirs[s]):.3f} / {fpr95(mine[s], theirs[s]):.0%}"
                 for s in ("top probability", "energy", "sightline")]  # fmt: skip
        unk = float((theirs["sightline"] > threshold).float().mean())
        print(f"| {name} ({len(images)}) | " + " | ".join(cells) + f" | {unk:.1%} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fashion", help="a Fashion-MNIST run (default: train one)")
    ap.add_argument("--mnist", help="an MNIST run (default: train one)")
    ap.add_argument("--cifar3", help="a pretrained run on the CIFAR-3 folder (default: train one)")
    ap.add_argument("--images", type=int, default=2000, help="test images of each dataset")
    ap.add_argument("--photos", type=int, default=300, help="generated photos of each kind")
    ap.add_argument("--only", choices=["fashion-mnist", "mnist", "cifar3"], action="append")
    args = ap.parse_args()
    torch.manual_seed(0)
    print("AUROC / FPR@95 for each score; unknown: answered unknown at the run's threshold")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, path in train_missing(args, Path(tmp)).items():
            if not args.only or kind in args.only:
                report(kind, path, args.images, args.photos)


if __name__ == "__main__":
    main()
