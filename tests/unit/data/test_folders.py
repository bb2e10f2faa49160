"""Image-folder datasets built from generated files, including broken and unusual ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sightline.data import load_dataset
from sightline.data.folders import find_splits, load_folder
from sightline.errors import DataError

W, H = 24, 20  # PIL sizes are (width, height)


def save(path: Path, img: Image.Image, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def rgb(color: tuple[int, int, int], size: tuple[int, int] = (W, H)) -> Image.Image:
    return Image.new("RGB", size, color)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_classes(root: Path, n: int = 3, size: tuple[int, int] = (W, H)) -> None:
    """Two clean classes: red cats and blue dogs."""
    for i in range(n):
        save(root / "cat" / f"c{i}.png", rgb((200, 10, 10), size))
        save(root / "dog" / f"d{i}.png", rgb((10, 10, 200), size))


@pytest.fixture
def messy(tmp_path) -> Path:
    """Class folders with every kind of file a real folder holds."""
    root = tmp_path / "pets"
    cat, dog = root / "cat", root / "dog"
    save(cat / "a.png", rgb((220, 20, 20)))
    save(cat / "b.jpg", rgb((220, 20, 20)), "JPEG")
    save(cat / "nested" / "deeper" / "c.png", rgb((220, 20, 20)))
    save(cat / ".hidden.png", rgb((0, 255, 0)))  # ignored: hidden
    save(cat / ".thumbs" / "t.png", rgb((0, 255, 0)))  # ignored: hidden folder
    (cat / "notes.txt").write_text("not an image")  # ignored: not an image extension
    (cat / "zero.png").write_bytes(b"")  # skipped: empty
    (cat / "trunc.png").write_bytes(png_bytes(rgb((1, 2, 3)))[:60])  # skipped: truncated
    (cat / "fake.jpg").write_text("hello, I am text")  # skipped: not an image
    rgba = Image.new("RGBA", (W, H), (20, 20, 220, 255))
    save(dog / "rgba.png", rgba)
    save(dog / "deep16.png", Image.fromarray(np.full((H, W), 40000, dtype=np.uint16)))
    save(dog / "pal.gif", rgb((20, 20, 220)).convert("P"))
    save(dog / "cmyk.jpg", Image.new("CMYK", (W, H), (200, 200, 0, 0)), "JPEG")
    save(dog / "UPPER.PNG", rgb((20, 20, 220)))
    return root


def test_messy_folder_loads_good_files_and_reports_bad_ones(messy):
    ds = load_folder(messy)
    assert ds.classes == ["cat", "dog"]
    assert ds.name == "pets"
    assert ds.train.images.shape == (3 + 5, 3, H, W)  # one RGB image anywhere → 3 channels
    assert ds.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    names = sorted(Path(p).name for p in ds.train.paths)
    assert names == sorted(
        ["a.png", "b.jpg", "c.png", "rgba.png", "deep16.png", "pal.gif", "cmyk.jpg", "UPPER.PNG"]
    )
    skipped = {Path(p).name: why for p, why in ds.skipped}
    assert set(skipped) == {"zero.png", "trunc.png", "fake.jpg"}
    assert "empty" in skipped["zero.png"]
    assert "truncated" in skipped["trunc.png"] or "decode" in skipped["trunc.png"]
    assert "not a recognised image" in skipped["fake.jpg"]
    assert ds.val is None and ds.test is None
    assert ds.preprocess.input_shape == (3, H, W)


def test_labels_follow_the_folders(messy):
    ds = load_folder(messy)
    red, blue = (
        ds.train.images[:, 0].float().mean((1, 2)),
        ds.train.images[:, 2].float().mean((1, 2)),
    )
    cats = ds.train.labels == 0
    assert bool((red[cats] > blue[cats]).all())
    rgba = [i for i, p in enumerate(ds.train.paths) if p.endswith("rgba.png")][0]
    assert ds.train.labels[rgba] == 1 and blue[rgba] > red[rgba]


def test_sixteen_bit_gray_is_scaled_not_clipped(messy):
    ds = load_folder(messy)
    i = [i for i, p in enumerate(ds.train.paths) if p.endswith("deep16.png")][0]
    level = int(ds.train.images[i, 0, 5, 5])
    assert 150 < level < 160  # 40000 / 65535 * 255 ≈ 156
    assert torch.equal(ds.train.images[i, 0], ds.train.images[i, 1])  # gray in an RGB dataset


def test_grayscale_folder_gets_one_channel(tmp_path):
    for i in range(2):
        save(tmp_path / "a" / f"{i}.png", Image.new("L", (W, H), 30))
        save(
            tmp_path / "b" / f"{i}.png",
            Image.fromarray(np.full((H, W), 1000 * (i + 1), dtype=np.uint16)),
        )
    ds = load_folder(tmp_path)
    assert ds.train.images.shape == (4, 1, H, W)


def test_tiff_files_are_images_too(tmp_path):
    """The Build page keeps an uploaded TIFF as .tif: training and the check must see it."""
    for i in range(2):
        save(tmp_path / "a" / f"{i}.tif", Image.new("L", (W, H), 30))
        save(tmp_path / "b" / f"{i}.tiff", Image.new("L", (W, H), 200))
    ds = load_folder(tmp_path)
    assert ds.train.images.shape == (4, 1, H, W) and ds.classes == ["a", "b"]


def test_explicit_channels_and_size(messy):
    ds = load_folder(messy, channels=1, size=(16, 12), resize="squash")
    assert ds.train.images.shape == (8, 1, 16, 12)
    assert ds.preprocess.input_shape == (1, 16, 12)
    assert ds.preprocess.resize == "squash"


def test_mixed_sizes_take_the_median_image(tmp_path):
    # Was "mixed sizes → 64x64" until issue 10: a fixed 64 px enlarged small images (and cost
    # 5x the compute of 28 px digits). Now the median image's longer side, square when the
    # shapes differ (4 of 5 images are 24x20, one is 30x30: not 90 % alike).
    make_classes(tmp_path, 2)
    save(tmp_path / "cat" / "other.png", rgb((200, 10, 10), (30, 30)))
    ds = load_folder(tmp_path)
    assert ds.train.images.shape[1:] == (3, 24, 24)
    assert any(n.startswith("size 24x24: the median image") for n in ds.notes)


def test_large_images_are_capped_at_64_keeping_their_shape(tmp_path):
    # Was 64x64 for any large image; now the images' shared 3:2 shape is kept (no padding
    # bands to compute on), at most 64 px a side: 43 px rounds to 44.
    make_classes(tmp_path, 2, size=(300, 200))
    ds = load_folder(tmp_path)
    assert ds.train.images.shape[1:] == (3, 44, 64)
    x = ds.train.images[0]
    assert int(x[0, 22, 32]) > 150 and int(x[2, 22, 32]) < 50
    assert any("at most 64 px a side" in n for n in ds.notes)


def test_large_images_of_mixed_shapes_are_padded_into_a_square(tmp_path):
    make_classes(tmp_path, 2, size=(300, 200))
    for i in range(2):
        save(tmp_path / "cat" / f"tall{i}.png", rgb((200, 10, 10), (200, 300)))
    ds = load_folder(tmp_path)
    assert ds.train.images.shape[1:] == (3, 64, 64)
    # "pad" keeps the 3:2 aspect ratio: 64x43 of red between dark bands top and bottom.
    x = ds.train.images[0]
    assert int(x[0, 32, 32]) > 150 and int(x[2, 32, 32]) < 50
    assert int(x[0, 0, 32]) < 50 and int(x[0, 63, 32]) < 50


def test_dark_background_is_detected(tmp_path):
    for c in ("x", "y"):
        for i in range(3):
            a = np.zeros((H, W), dtype=np.uint8)
            a[6:14, 8:16] = 255
            save(tmp_path / c / f"{i}.png", Image.fromarray(a))
    ds = load_folder(tmp_path)
    assert ds.preprocess.dark_background
    assert not load_folder_light(tmp_path.parent / "light").preprocess.dark_background


def load_folder_light(root: Path):
    make_classes(root, 2)
    return load_folder(root)


# ----------------------------------------------------------------------- errors
def test_empty_class_folder_is_named(tmp_path):
    make_classes(tmp_path, 2)
    (tmp_path / "bird").mkdir()
    with pytest.raises(DataError, match=r"bird.*no readable images"):
        load_folder(tmp_path)


def test_class_with_only_bad_files_is_named(tmp_path):
    make_classes(tmp_path, 2)
    (tmp_path / "bird").mkdir()
    (tmp_path / "bird" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"bird.*failed to decode.*x\.png"):
        load_folder(tmp_path)


def test_single_class_is_an_error(tmp_path):
    save(tmp_path / "only" / "a.png", rgb((1, 2, 3)))
    with pytest.raises(DataError, match="at least 2 classes"):
        load_folder(tmp_path)


def test_images_without_class_folders(tmp_path):
    save(tmp_path / "a.png", rgb((1, 2, 3)))
    with pytest.raises(DataError, match="no class subfolders"):
        load_folder(tmp_path)


def test_no_images_at_all(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="no image files found"):
        load_folder(tmp_path)


def test_missing_folder_and_file_given(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nope")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        load_folder(tmp_path / "f.png")


def test_bad_options(tmp_path):
    make_classes(tmp_path, 2)
    with pytest.raises(DataError, match="resize"):
        load_folder(tmp_path, resize="stretch")
    with pytest.raises(DataError, match="channels"):
        load_folder(tmp_path, channels=2)
    with pytest.raises(DataError, match="size"):
        load_folder(tmp_path, size=(0, 5))


# ----------------------------------------------------------------------- train/val/test layout
def test_train_val_test_layout(tmp_path):
    make_classes(tmp_path / "train", 4)
    make_classes(tmp_path / "valid", 2)
    make_classes(tmp_path / "test", 1)
    ds = load_folder(tmp_path)
    assert ds.classes == ["cat", "dog"]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (8, 4, 2)
    assert ds.test.labels.tolist() == [0, 1]
    assert all("/valid/" in p for p in ds.val.paths)


def test_split_layout_mismatched_classes(tmp_path):
    make_classes(tmp_path / "train", 2)
    save(tmp_path / "test" / "cat" / "x.png", rgb((1, 2, 3)))
    save(tmp_path / "test" / "bird" / "x.png", rgb((1, 2, 3)))
    with pytest.raises(DataError, match=r"do not match.*missing dog.*extra bird"):
        load_folder(tmp_path)


def test_two_val_folders_is_an_error(tmp_path):
    make_classes(tmp_path / "train", 2)
    make_classes(tmp_path / "val", 1)
    make_classes(tmp_path / "validation", 1)
    with pytest.raises(DataError, match="keep only one val"):
        load_folder(tmp_path)


def test_a_class_called_train_is_still_a_class(tmp_path):
    save(tmp_path / "train" / "t.png", rgb((1, 2, 3)))
    save(tmp_path / "car" / "c.png", rgb((1, 2, 3)))
    assert find_splits(tmp_path) == {"train": tmp_path}
    assert load_folder(tmp_path).classes == ["car", "train"]


# ----------------------------------------------------------------------- through load_dataset
def test_load_dataset_on_a_folder_carves_validation(tmp_path):
    make_classes(tmp_path, 10)
    ds = load_dataset(tmp_path, val_split=0.2, seed=3)
    assert (len(ds.train), len(ds.val)) == (16, 4)
    assert ds.val.class_counts(2) == [2, 2]
    assert ds.test is None
    again = load_dataset(str(tmp_path), val_split=0.2, seed=3)
    assert again.val.paths == ds.val.paths  # seeded
    assert ds.flip is True and load_dataset(tmp_path, flip=False).flip is False


def test_load_dataset_folder_options(tmp_path):
    make_classes(tmp_path / "train", 3)
    make_classes(tmp_path / "val", 1)
    make_classes(tmp_path / "test", 2)
    ds = load_dataset(tmp_path, val_split="test", size=8, channels=1)
    assert ds.val is ds.test and ds.input_shape == (1, 8, 8)
    assert len(load_dataset(tmp_path).val) == 2  # the folder's own val/ wins over a fraction
    assert load_dataset(tmp_path, val_split=0).val is None
    sub = load_dataset(tmp_path, classes="dog, cat")
    assert sub.classes == ["dog", "cat"] and sub.train.labels[sub.train.labels == 0].numel() == 3
    assert sub.load_options["name_or_path"] == str(tmp_path.resolve())
    assert sub.load_options["classes"] == ["dog", "cat"]


def test_load_dataset_unknown_name_mentions_folders(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset(str(tmp_path / "nothing-here"))
    msg = str(e.value)
    assert "fashion-mnist" in msg and "cifar10" in msg and "folder" in msg
