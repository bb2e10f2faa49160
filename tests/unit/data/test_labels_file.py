"""Labels as they come: a CSV of path,label[,split] rows loads as the same images in class
folders would, trains from every face, and everything wrong with the file is a clear error
naming the line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from sightline.data import load_dataset
from sightline.errors import DataError


def _images(root, n=12, seed=0):
    """``n`` images per class (two classes: bright or dark squares), in a flat photos/ folder
    with other names than their classes; returns (relative path, label) pairs."""
    rng = np.random.default_rng(seed)
    (root / "photos" / "deep").mkdir(parents=True)
    rows = []
    for i in range(2 * n):
        label = ("bright", "dark")[i % 2]
        x = np.full((16, 16), 200 if label == "bright" else 40, np.uint8)
        x = np.clip(x + rng.integers(-20, 20, x.shape), 0, 255).astype(np.uint8)
        rel = f"photos/{'deep/' if i % 3 == 0 else ''}IMG_{i:04d}.png"
        Image.fromarray(x, "L").save(root / rel)
        rows.append((rel, label))
    return rows


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_labels_file_loads_as_its_images_in_class_folders_would(tmp_path):
    rows = _images(tmp_path)
    splits = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    csv = _write(tmp_path / "labels.csv", ["path,label,split"] + [
        f"{p},{label},{'' if s == 'train' and k % 2 else s}"
        for k, ((p, label), s) in enumerate(zip(rows, splits, strict=True))
    ])  # fmt: skip
    ds = load_dataset(csv, progress=False)
    assert ds.classes == ["bright", "dark"] and ds.name == "labels"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (16, 4, 4)
    # the same files in class folders: the same images, labels and preprocessing
    folder = tmp_path / "as-folders"
    for (p, label), s in zip(rows, splits, strict=True):
        (folder / s / label).mkdir(parents=True, exist_ok=True)
        os.link(tmp_path / p, folder / s / label / p.replace("/", "_"))
    same = load_dataset(folder, progress=False)
    for split in ("train", "val", "test"):
        a, b = getattr(ds, split), getattr(same, split)
        order_a, order_b = a.labels.argsort(stable=True), b.labels.argsort(stable=True)
        assert torch.equal(a.labels[order_a], b.labels[order_b])
        assert sorted(map(bytes, a.images.flatten(1).numpy())) == sorted(
            map(bytes, b.images.flatten(1).numpy())
        )
    assert ds.preprocess.to_dict() == same.preprocess.to_dict()
    assert ds.load_options["name_or_path"] == str(csv.resolve())


def test_unreadable_images_are_skipped_and_reported_as_in_a_folder(tmp_path):
    rows = _images(tmp_path)
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a png")
    csv = _write(tmp_path / "l.csv", ["label,path"] + [f"{label},{p}" for p, label in rows]
                 + ["dark,photos/broken.png"])  # fmt: skip
    ds = load_dataset(csv, val_split=0, progress=False)
    assert len(ds.train) == 24 and len(ds.skipped) == 1 and "broken.png" in ds.skipped[0][0]


@pytest.mark.parametrize(
    "lines, message",
    [
        (["a.png,cat"], "the first line must name the columns path,label[,split]"),
        (["path,label,colour", "x,y,z"], "unknown column colour"),
        (["path,label,label", "x,y,z"], "a column named twice"),
        (["path,label"], "lists no images"),
        (["path,label", "photos/IMG_0001.png,"], "line 2: photos/IMG_0001.png has an empty label"),
        (["path,label", ",cat"], "line 2: the path is empty"),
        (["path,label,split", "photos/IMG_0001.png,a,training"], "line 2: split 'training'"),
        (["path,label", "photos/IMG_0001.png,a", "photos/nope.png,b"], "1 listed files do not exist"),
        (["path,label", "/etc/passwd,a"], "line 2: /etc/passwd is not a path inside"),
        (["path,label", "../x.png,a"], "line 2: ../x.png is not a path inside"),
        (["path,label", "photos/IMG_0001.png,a", "photos/IMG_0001.png,b"],
         "line 3: photos/IMG_0001.png is listed twice (first on line 2)"),
        (["path,label", "photos/IMG_0001.png,a", "photos/IMG_0002.png,a"], "at least 2 labels"),
        (["path,label,split", "photos/IMG_0001.png,a,", "photos/IMG_0002.png,b,",
          "photos/deep/IMG_0003.png,c,test"], "labels c of the test images have no training images"),
        (["path,label", "photos/IMG_0001.png,a,extra"], "line 2: 3 values for 2 columns"),
    ],
)  # fmt: skip
def test_what_is_wrong_with_a_labels_file_is_a_clear_error(tmp_path, lines, message):
    _images(tmp_path, n=2)
    with pytest.raises(DataError, match=None) as e:
        load_dataset(_write(tmp_path / "labels.csv", lines), progress=False)
    assert message in str(e.value) and "labels.csv" in str(e.value)


def test_a_link_out_of_the_labels_files_folder_is_refused(tmp_path):
    inside, outside = tmp_path / "data", tmp_path / "secret"
    _images(inside, n=2)
    outside.mkdir()
    Image.new("L", (8, 8)).save(outside / "x.png")
    (inside / "photos" / "x.png").symlink_to(outside / "x.png")
    csv = _write(inside / "labels.csv", ["path,label", "photos/IMG_0001.png,a", "photos/x.png,b"])
    with pytest.raises(DataError, match="a link that leads out of"):
        load_dataset(csv, progress=False)
    (inside / "photos" / "x.png").unlink()
    with pytest.raises(DataError, match=r"not UTF-8"):
        csv.write_bytes(b"path,label\n\xff\xfe,a\n")
        load_dataset(csv, progress=False)


def test_a_labels_file_trains_evaluates_and_reloads_from_the_command_line(tmp_path, capsys):
    import sightline
    from sightline.cli import main

    rows = _images(tmp_path)
    copy = rows[0][0].replace("IMG_0000", "IMG_copy")  # a bright image, listed as dark too
    (tmp_path / copy).write_bytes((tmp_path / rows[0][0]).read_bytes())
    lines = [f"{p},{label}" for p, label in rows] + [f"{copy},dark"]
    csv = _write(tmp_path / "labels.csv", ["path,label", *lines])
    code = main(["train", str(csv), "--model", "mlp", "--epochs", "2", "--runs-dir",
                 str(tmp_path / "runs"), "--val-split", "0.25", "--no-report"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out  # checked before training, on the images as loaded
    assert "data check of 25 images:" in out and f"sightline check {csv}" in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = sightline.load_run(run_dir)
    assert run.classes == ["bright", "dark"]
    # Named as the file's rows name them: a copy under two classes, or one the validation split
    # drew (a leak: the check judges the splits training uses).
    problems = json.loads((run_dir / "check.json").read_text())["problems"]
    found = [p for p in problems if p["kind"] in ("duplicate", "leak")]
    assert [sorted(p["paths"]) for p in found] == [sorted([copy, rows[0][0]])]
    data = run.load_data()  # the run rebuilds its data from the labels file
    assert len(data.train) + len(data.val) == 25
    assert run.evaluate(data, split="val").accuracy >= 0.5


def test_a_folder_holding_a_labels_file_is_a_dataset_and_another_csv_changes_nothing(tmp_path):
    from sightline.data import datasets_in, is_dataset

    collection = tmp_path / "all"
    rows = _images(collection / "pets")
    _write(collection / "pets" / "labels.csv", ["path,label"] + [f"{p},{c}" for p, c in rows])
    (collection / "other").mkdir()
    _write(collection / "results.csv", ["run,accuracy", "a,0.9"])  # not a labels file
    assert is_dataset(collection / "pets") and not is_dataset(collection)
    assert datasets_in(collection) == [collection / "other", collection / "pets"]


def test_sightline_check_names_a_labels_files_images_as_its_rows_do(tmp_path):
    from sightline.health import check

    rows = _images(tmp_path)
    copy = "photos/IMG_copy.png"
    (tmp_path / copy).write_bytes((tmp_path / rows[0][0]).read_bytes())
    lines = [f"{p},{label}" for p, label in rows] + [f"{copy},dark"]
    csv = _write(tmp_path / "labels.csv", ["path,label", *lines])
    report = check(csv, labels=False)
    (dup,) = [p for p in report.problems if p.kind == "duplicate"]
    assert sorted(dup.paths) == sorted([copy, rows[0][0]])  # not "train/24"
    assert report.source == str(csv.resolve())
