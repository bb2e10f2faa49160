"""Integration (issue 38): ``sightline check`` on a digit folder with the mistakes of a real
collection planted (tests/planted_folder.py, MNIST digits 0-4 from the mirror: 1,450 images, 5 %
filed in the wrong class, 20 copies of which 5 under another class, 15 near copies, 12 test
images copied from training, 6 corrupt files). The issue's targets, as its user would run it."""

from __future__ import annotations

import json

import pytest
from digit_folder import mnist
from planted_folder import plant

from sightline.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def planted(mirror, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check")
    digits = mnist(mirror, cache_dir=tmp / "cache")
    keep = (digits.train.labels < 5).nonzero().flatten()[:1450]
    images, labels = digits.train.images[keep, 0].numpy(), digits.train.labels[keep].numpy()
    truth = plant(tmp / "digits", images, labels, [str(c) for c in range(5)], test=250)
    return tmp / "digits", truth


def test_check_finds_the_planted_mistakes_of_a_digit_folder(planted, capsys):
    root, truth = planted
    assert main(["check", str(root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    problems = report["problems"]

    def groups(kind):
        return [set(p.get("paths") or [p["path"]]) for p in problems if p["kind"] == kind]

    def found(kind, pairs):
        return [pair for pair in pairs if any(set(pair) <= g for g in groups(kind))]

    assert {p["path"] for p in problems if p["kind"] == "corrupt"} == set(truth.corrupt)
    copies = truth.copies + truth.conflicts
    assert len(found("duplicate", copies)) == len(copies)  # all exact copies
    conflicts = [p["paths"] for p in problems if p["kind"] == "duplicate" and p["conflict"]]
    assert sorted(map(sorted, conflicts)) == sorted(map(sorted, truth.conflicts))
    assert len(found("leak", truth.leaks)) == len(truth.leaks)  # every leak, exact or re-saved
    near = groups("near-duplicate")
    assert len(found("near-duplicate", truth.near)) >= 0.9 * len(truth.near)
    false_pairs = len(near) - len(found("near-duplicate", truth.near))
    assert false_pairs <= report["images"] / 1000  # at most 1 false pair per 1,000 images

    suspects = [p for p in problems if p["kind"] == "label"]  # most suspect first
    hits = [p for p in suspects if p["path"] in truth.flipped]
    assert len(truth.flipped) == 60 and len(hits) >= 58  # issue 51's bar; measured: 59
    conflicts = {copy for _, copy in truth.conflicts}  # copies filed under another class
    right = [p for p in suspects if p["path"] in truth.flipped or p["path"] in conflicts]
    assert len(right) >= 0.9 * len(suspects)  # measured: 63 of 66
    assert sum(p["suggested"] == truth.flipped[p["path"]] for p in hits) >= 0.9 * len(hits)
    assert report["labels"]["judged"] and report["labels"]["reliable"]
    assert 0.9 < report["labels"]["health"]["label_quality"] < 0.99  # 5 % flipped


def test_training_again_after_the_fix_is_at_least_as_accurate(planted, tmp_path, capsys):
    import shutil

    import sightline

    root, truth = planted
    folder = tmp_path / "digits"
    shutil.copytree(root, folder)
    before = sightline.run_training(str(folder), runs_dir=tmp_path / "runs", progress="quiet",
                                    report=False)  # fmt: skip
    honest = before.run.last_evaluation["without_copies"]  # the test images that are not copies
    assert honest["copies"] == len(truth.leaks)
    assert main(["check", str(folder), "--fix"]) == 0
    capsys.readouterr()
    after = sightline.run_training(str(folder), runs_dir=tmp_path / "runs", progress="quiet",
                                   report=False)  # fmt: skip
    assert "without_copies" not in after.run.last_evaluation  # no copy left in test
    print(f"before the fix {before.metrics.accuracy:.4f} ({honest['accuracy']:.4f} without "
          f"copies), after {after.metrics.accuracy:.4f}")  # fmt: skip
    assert after.metrics.accuracy >= honest["accuracy"]


def test_check_finds_the_flipped_labels_of_a_photo_folder(mirror, tmp_path, monkeypatch, capsys):
    """1,500 CIFAR-10 photos, 150 of each class, 50 training labels flipped and the other
    mistakes planted (issue 51's folder): the labels are judged on pretrained features, the
    findings at least as precise as cleanlab's ``find_label_issues`` on the same out-of-fold
    probabilities (measured: 45 of the 50 among 87 findings; cleanlab 40 among 115), and no
    photo moved by --fix: its models are right on 81 %, under the bar for moving files."""
    import torch
    from cleanlab.filter import find_label_issues

    import sightline
    from sightline.health.duplicates import NEAR, copy_groups, near_pairs
    from sightline.health.labels import out_of_fold
    from sightline.health.scan import scan_folder

    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path / "cache"))
    cifar = sightline.load_dataset("cifar10", val_split=0, mirror=mirror, progress=False)
    pick = torch.cat([(cifar.train.labels == c).nonzero().flatten()[:150] for c in range(10)])
    pick = pick.sort().values
    images = cifar.train.images[pick].permute(0, 2, 3, 1).numpy()
    root = tmp_path / "photos"
    truth = plant(root, images, cifar.train.labels[pick].numpy(), list(cifar.classes),
                  test=150, flip=50 / 1350)  # fmt: skip
    assert main(["check", str(root), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    problems = report["problems"]
    suspects = [p for p in problems if p["kind"] == "label"]
    hits = sum(p["path"] in truth.flipped for p in suspects)
    assert len(truth.flipped) == 50 and hits >= 0.8 * len(truth.flipped)
    # cleanlab on the very probabilities the check calibrates (the features come from the cache)
    inventory = scan_folder(root)
    oof = out_of_fold(
        inventory, copy_groups(inventory.items, NEAR, near_pairs(inventory.items, NEAR))
    )
    labels = torch.tensor([i.label for i in inventory.items])
    raw = (oof.probs / oof.probs.sum(1, keepdim=True)).numpy()
    theirs = [
        inventory.items[i].path
        for i in find_label_issues(labels.numpy(), raw, n_jobs=1).nonzero()[0]
    ]
    their_precision = sum(p in truth.flipped for p in theirs) / len(theirs)
    assert hits / len(suspects) >= their_precision
    assert report["labels"]["judged"] and not report["labels"]["reliable"]
    assert not any(p["fixable"] for p in suspects)
    leaks = {tuple(sorted(p["paths"])) for p in problems if p["kind"] == "leak"}
    assert all(tuple(sorted(pair)) in leaks for pair in truth.leaks)
    near = [set(p["paths"]) for p in problems if p["kind"] == "near-duplicate"]
    # measured: 13 of 15 here (the recoloured 32 px photos are the hard ones), 14 of 15 among
    # the first 1,100 CIFAR-10 training photos
    assert sum(any(set(pair) <= g for g in near) for pair in truth.near) >= 0.8 * len(truth.near)
    assert {p["path"] for p in problems if p["kind"] == "corrupt"} == set(truth.corrupt)


def _save_digits(root, data, classes: dict[str, int], per_class: int, skip: int = 0) -> None:
    from PIL import Image

    for name, digit in classes.items():
        index = (data.train.labels == digit).nonzero().flatten()[skip : skip + per_class]
        (root / name).mkdir(parents=True)
        for n, i in enumerate(index.tolist()):
            fmt = "png" if n % 2 else "jpg"
            Image.fromarray(data.train.images[i, 0].numpy()).save(root / name / f"{n:03d}.{fmt}")


def test_clean_small_folders_are_found_clean_and_fix_moves_no_image(mirror, tmp_path, capsys):
    """Issue 51's defect: on clean folders of 42 and 200 digits the label check flagged half the
    images at 85-100 % and --fix moved correct 1s into `zero`. Now: tiny and small clean
    folders, gray and colour, one with an odd class, get at most 2 % false findings (measured:
    0 of 42; 3 of 200 mixed-format digits, 1s with a serif; 0-1 of 120 photos; 1 of the 200
    digits and shoes) and --fix relabels none of them."""
    import shutil
    import sys

    from digit_folder import build_folder
    from PIL import Image

    import sightline

    digits = mnist(mirror, cache_dir=tmp_path / "cache")
    folders = {}
    _save_digits(tmp_path / "tiny", digits, {"zero": 0, "one": 1}, 21)
    folders["tiny"] = tmp_path / "tiny"
    folders["small"] = build_folder(tmp_path / "small", digits, per_class=40)  # mixed files
    items = sightline.load_dataset("fashion-mnist", val_split=0, mirror=mirror, progress=False)
    _save_digits(tmp_path / "odd", digits, {f"d{c}": c for c in range(4)}, 40, skip=1000)
    shoes = (items.train.labels == 7).nonzero().flatten()[:40]
    (tmp_path / "odd" / "shoes").mkdir()
    for n, i in enumerate(shoes.tolist()):
        Image.fromarray(items.train.images[i, 0].numpy()).save(
            tmp_path / "odd" / "shoes" / f"{n}.png"
        )
    folders["odd class"] = tmp_path / "odd"
    cifar = sightline.load_dataset("cifar10", val_split=0, mirror=mirror, progress=False)
    for c in range(3):
        index = (cifar.train.labels == c).nonzero().flatten()[:40]
        (tmp_path / "photos" / cifar.classes[c]).mkdir(parents=True)
        for n, i in enumerate(index.tolist()):
            array = cifar.train.images[i].permute(1, 2, 0).numpy()
            Image.fromarray(array).save(tmp_path / "photos" / cifar.classes[c] / f"{n}.png")
    folders["photos"] = tmp_path / "photos"
    reports = {}
    for name, root in folders.items():
        assert main(["check", str(root), "--format", "json"]) == 0
        report = reports[name] = json.loads(capsys.readouterr().out)
        found = [p for p in report["problems"] if p["kind"] == "label"]
        print(name, report["labels"]["why"], [p["path"] for p in found], file=sys.stderr)
        assert len(found) <= 0.02 * report["images"], (name, found)
        fixed = tmp_path / "fixed" / name
        shutil.copytree(root, fixed)
        assert main(["check", str(fixed), "--fix", "--format", "json"]) == 0
        journal = json.loads(capsys.readouterr().out)
        assert [m for m in journal["moves"] if m["kind"] == "label"] == [], name
    # the tiny folder is judged, not merely skipped: its models tell 0s from 1s
    assert reports["tiny"]["labels"]["judged"]
    assert reports["tiny"]["labels"]["balanced_accuracy"] >= 0.95
