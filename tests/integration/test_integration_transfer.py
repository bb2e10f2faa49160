"""Transfer learning as a user runs it: a folder of 600 CIFAR-10 PNGs (200 each of airplane,
automobile, bird) → `sightline train FOLDER --pretrained` → at least 96 % on CIFAR-10 test
images of those classes (measured: 97.5 % on all 3,000; benchmarks/transfer.py times it)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from sightline.cli import main
from sightline.run import load_run

pytestmark = pytest.mark.integration

CLASSES = ["airplane", "automobile", "bird"]
TEST_IMAGES = (
    900  # of the 3,000: each costs two passes of the backbone at 224 px (flip TTA) on CI's CPU
)


def test_pretrained_head_on_600_photos(mirror, tmp_path, capsys):
    import sightline

    ds = sightline.load_dataset(
        "cifar10",
        classes=CLASSES,
        val_split=0,
        mirror=mirror,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    folder = tmp_path / "photos"
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for i, k in enumerate(torch.nonzero(ds.train.labels == c).flatten()[:200].tolist()):
            Image.fromarray(ds.train.images[k].permute(1, 2, 0).numpy()).save(
                folder / name / f"{i:04d}.png"
            )
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train",
                str(folder),
                "--pretrained",
                "--runs-dir",
                str(runs),
                "--no-report",
                "--progress",
                "lines",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert (
        "Features of 540 train images" in err
    )  # 10 % carved for validation; progress is on stderr
    assert "3,843 trainable" in out  # the head: 1,280 x 3 + 3
    run = load_run(next(runs.iterdir()))
    assert (
        run.config["model"]["options"]["pretrained"] is True
        and run.config["train"]["freeze"] is True
    )
    # The folder recipe's pick for 600 images within its 2 minutes of features: Lite2 at 260 px.
    assert (
        run.config["model"]["name"] == "efficientnet-lite2" and "backbone efficientnet-lite2" in out
    )
    # 60 validation images cannot pick the head's best epoch (they picked epoch 1: 96.9 %).
    assert run.config["train"]["monitor"] == "loss" and "best checkpoint by training loss" in out
    assert run.preprocess.size == (260, 260) and run.preprocess.mean[0] == pytest.approx(127 / 255)
    # Spread over the three classes: the test split is sorted by nothing in particular.
    pick = torch.arange(0, len(ds.test), len(ds.test) // TEST_IMAGES)[:TEST_IMAGES]
    probs = run.predict(ds.test.images[pick])  # 32 px images, prepared by the run's own Preprocess
    accuracy = (probs.argmax(1) == ds.test.labels[pick]).double().mean().item()
    assert accuracy >= 0.96, accuracy
    # None of these: the other CIFAR-10 classes score higher than its own (issue 37 asks for
    # AUROC 0.90; measured 0.819 on 2,000: frozen ImageNet features hardly tell a truck (0.62)
    # from a car or a ship (0.70) from an airplane at 32 px, benchmarks/ood.py), most of them
    # are answered unknown where its own images rarely are.
    others = sightline.load_dataset(
        "cifar10", val_split=0, mirror=mirror, cache_dir=tmp_path / "cache", progress=False
    ).test
    other = others.images[(others.labels >= 3).nonzero().flatten()[:300]]
    own_p, other_p = (run.predict_images([(str(i), x) for i, x in enumerate(images)],
                                         device="cpu").predictions
                      for images in (ds.test.images[pick[:300]], other))  # fmt: skip
    own_s, other_s = (torch.tensor([p.ood_score for p in ps]) for ps in (own_p, other_p))
    auroc = (other_s[:, None] > own_s[None, :]).double().mean().item()
    own_unknown = sum(p.unknown for p in own_p) / len(own_p)
    print(f"AUROC other classes {auroc:.3f}, unknown: own {own_unknown:.1%}, "
          f"others {sum(p.unknown for p in other_p) / len(other_p):.1%}")  # fmt: skip
    assert auroc >= 0.75 and own_unknown <= 0.10, (auroc, own_unknown)
