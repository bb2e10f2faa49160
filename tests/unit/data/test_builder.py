"""Building an image folder (sightline.data.builder): names sanitised, images checked and kept
as they came, two writers never lose a file, a folder of datasets told from a dataset."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from sightline.data.builder import (
    add_images,
    class_folder,
    datasets_in,
    is_dataset,
    new_dataset,
    rename_class,
)
from sightline.errors import DataError


def png(colour=(200, 30, 30), size=(20, 16), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


def test_a_dataset_is_built_class_by_class(tmp_path):
    data = new_dataset(tmp_path / "collection", "fruit")  # the parent is made if missing
    assert datasets_in(tmp_path / "collection") == [data] and not is_dataset(data)
    apples = class_folder(data, "apples", create=True)
    added = add_images(apples, [("red apple.png", png()), ("x.jpg", png(fmt="JPEG")),
                                ("notes.txt", b"hello"), ("fake.png", b"\x89PNG\r\n\x1a\nbroken")])  # fmt: skip
    assert added.saved == ["red-apple.png", "x.jpg"]
    assert [name for name, _ in added.skipped] == ["notes.txt", "fake.png"]
    assert (apples / "red-apple.png").read_bytes() == png()  # kept as it came
    assert add_images(apples, [("red apple.png", png())]).saved == [
        "red-apple-1.png"
    ]  # no overwrite
    assert is_dataset(data) and datasets_in(tmp_path / "collection") == [data]
    assert datasets_in(data) == [data]  # a dataset given itself stays one
    renamed = rename_class(data, "apples", "Apples 2")
    assert renamed.name == "Apples 2" and not apples.exists() and len(list(renamed.iterdir())) == 3
    class_folder(data, "pears", create=True)
    with pytest.raises(DataError, match="exists already"):
        rename_class(data, "pears", "Apples 2")
    with pytest.raises(DataError, match="exists already"):
        new_dataset(tmp_path / "collection", "fruit")


@pytest.mark.parametrize("bad", ["", "..", ".hidden", "a/b", "../x", "x" * 65, "a\\b", "end."])
def test_names_that_are_not_plain_names_are_refused(tmp_path, bad):
    with pytest.raises(DataError, match="not allowed"):
        new_dataset(tmp_path, bad)
    data = new_dataset(tmp_path, "ok")
    with pytest.raises(DataError, match="not allowed"):
        class_folder(data, bad, create=True)


def test_two_writers_at_once_keep_every_image(tmp_path):
    folder = class_folder(new_dataset(tmp_path, "d"), "c", create=True)
    images = [png((i, 0, 0)) for i in range(40)]

    def upload(part):
        add_images(folder, [("same name.png", data) for data in part])

    threads = [threading.Thread(target=upload, args=(images[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = sorted(p.read_bytes() for p in folder.iterdir())
    assert kept == sorted(images)  # 40 files, none replaced, no temporary file left


def test_pixels_over_the_limit_are_refused_before_decoding(tmp_path):
    folder = class_folder(new_dataset(tmp_path, "d"), "c", create=True)
    added = add_images(folder, [("big.png", png(size=(400, 300)))], max_pixels=100_000)
    assert added.saved == [] and "too large" in added.skipped[0][1]
