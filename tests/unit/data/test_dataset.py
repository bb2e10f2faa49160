"""Dataset operations, augmentation, and load_dataset on tiny built-in-style datasets."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
import torch
from conftest import MIRROR, needs_mirror
from PIL import Image

from sightline.data import Augment, Dataset, ImageSet, Preprocess, dataset_info, load_dataset
from sightline.data import registry as reg
from sightline.data.dataset import channel_stats, looks_dark_background, split_validation
from sightline.data.load import convert_images
from sightline.errors import DataError


def make_set(n_per_class: list[int], shape=(1, 4, 4), seed: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    images = torch.randint(0, 256, (len(labels), *shape), generator=g, dtype=torch.uint8)
    return ImageSet(images, labels, [f"img{i}.png" for i in range(len(labels))])


def make_dataset(
    train: ImageSet, test: ImageSet | None = None, classes=("a", "b", "c", "d")
) -> Dataset:
    return Dataset(
        "toy",
        list(classes),
        train,
        None,
        test,
        Preprocess(train.images.shape[1], train.images.shape[2:]),
    )


# ----------------------------------------------------------------------- select_classes
def test_select_classes_relabels_in_given_order():
    train = make_set([3, 4, 5, 6])
    ds = make_dataset(train, make_set([1, 1, 1, 1], seed=1)).select_classes(["c", 0])
    assert ds.classes == ["c", "a"]
    assert len(ds.train) == 5 + 3 and len(ds.test) == 2
    assert sorted(ds.train.labels.tolist()) == [0] * 5 + [1] * 3
    # The images that were class "c" (2) are now label 0, unchanged.
    assert torch.equal(ds.train.images[ds.train.labels == 0], train.images[train.labels == 2])
    assert all(p in train.paths for p in ds.train.paths)


@pytest.mark.parametrize(
    "wanted, match",
    [
        (["a", "zebra"], "unknown class 'zebra'"),
        (["a", "A"], "listed twice"),
        (["b"], "at least 2 classes"),
        ([0, 9], "unknown class '9'"),
    ],
)
def test_select_classes_errors(wanted, match):
    with pytest.raises(DataError, match=match):
        make_dataset(make_set([2, 2, 2, 2])).select_classes(wanted)


# ----------------------------------------------------------------------- split_validation
def test_split_validation_is_stratified_disjoint_and_seeded():
    train = make_set([20, 40, 10])
    tr, val = split_validation(train, 0.1, seed=7)
    assert val.class_counts(3) == [2, 4, 1]
    assert tr.class_counts(3) == [18, 36, 9]
    assert set(tr.paths).isdisjoint(val.paths) and set(tr.paths) | set(val.paths) == set(
        train.paths
    )
    _, val2 = split_validation(train, 0.1, seed=7)
    _, val3 = split_validation(train, 0.1, seed=8)
    assert val2.paths == val.paths
    assert val3.paths != val.paths


def test_split_validation_keeps_tiny_classes_in_train():
    tr, val = split_validation(make_set([1, 2, 50]), 0.5, seed=0)
    assert tr.class_counts(3)[0] == 1 and val.class_counts(3)[0] == 0
    assert val.class_counts(3)[1] == 1 and tr.class_counts(3)[1] == 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_validation_bad_fraction(fraction):
    with pytest.raises(DataError, match="between 0 and 1"):
        split_validation(make_set([5, 5]), fraction, seed=0)


# ----------------------------------------------------------------------- statistics
def test_channel_stats_known_values():
    x = torch.zeros((4, 2, 2, 2), dtype=torch.uint8)
    x[:, 0, 0] = 255  # channel 0: half the pixels white → mean 0.5
    mean, std = channel_stats(x)
    assert mean == pytest.approx((0.5, 0.0))
    assert std[0] == pytest.approx(float(torch.tensor([0.0, 1.0]).repeat(8).std()), abs=1e-5)
    assert std[1] == pytest.approx(1e-3)  # constant channel: clamped, never 0


def test_channel_stats_subsamples_consistently():
    x = torch.randint(
        0, 256, (5000, 1, 3, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    full = channel_stats(x, max_samples=10**6)
    sub = channel_stats(x, max_samples=500)
    assert sub[0][0] == pytest.approx(full[0][0], abs=0.02)


def test_looks_dark_background():
    dark = torch.zeros((10, 1, 8, 8), dtype=torch.uint8)
    dark[:, :, 3:5, 3:5] = 255
    assert looks_dark_background(dark)
    assert not looks_dark_background(255 - dark)


# ----------------------------------------------------------------------- augment
def batch(n=64, c=1, h=16, w=16):
    return torch.rand((n, c, h, w), generator=torch.Generator().manual_seed(1))


def test_default_augment_changes_nothing():
    x = batch()
    assert not Augment().active
    assert torch.equal(Augment()(x, torch.Generator().manual_seed(0)), x)


@pytest.mark.parametrize(
    "aug",
    [
        Augment(flip=True),
        Augment(translate=3),
        Augment(translate=2, flip=True),
        Augment(reframe=0.5),
        Augment(flip=True, reframe=1.0),
    ],
)
def test_augment_shape_and_determinism(aug):
    x = batch(c=3, h=12, w=10)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_flip_only_when_asked():
    x = batch(n=200)
    assert torch.equal(Augment(flip=False)(x, torch.Generator().manual_seed(0)), x)
    y = Augment(flip=True)(x, torch.Generator().manual_seed(0))
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all())  # every image is either untouched or exactly mirrored
    assert 50 < int(mirrored.sum()) < 150  # about half


def test_translate_shifts_content_within_bounds():
    pad, n = 3, 300
    x = torch.zeros((n, 1, 16, 16))
    x[:, 0, 8, 7] = 1.0  # one bright pixel, far enough from the border that padding can't copy it
    y = Augment(translate=pad)(x, torch.Generator().manual_seed(0))
    assert torch.equal(y.sum((1, 2, 3)), x.sum((1, 2, 3)))  # content kept, only moved
    pos = y[:, 0].flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 7
    assert int(dy.abs().max()) <= pad and int(dx.abs().max()) <= pad
    assert {int(v) for v in dy} == set(range(-pad, pad + 1))  # every shift occurs
    assert {int(v) for v in dx} == set(range(-pad, pad + 1))


def test_reframe_changes_its_share_and_keeps_the_object():
    n = 400
    x = torch.zeros((n, 1, 28, 28))
    x[:, :, 8:20, 10:18] = 1.0  # an object in the middle of a dark background
    y = Augment(reframe=0.5)(x, torch.Generator().manual_seed(0))
    changed = (y - x).abs().flatten(1).amax(1) > 1e-6
    # Half turned/scaled/shifted, 0.6 x half degraded, drawn apart: 1 - 0.5 x 0.7 = 65 % changed.
    assert 220 < int(changed.sum()) < 300
    assert torch.equal(y[~changed], x[~changed])  # the rest untouched
    # Small turns, scales and shifts: the object keeps most of its place and its mass; the
    # degraded ones get noise, so compare the mass of the clean ones and the overlap of all.
    inside = y[changed][:, :, 8:20, 10:18].mean((1, 2, 3))
    assert float(inside.min()) > 0.5 and float(inside.median()) > 0.8
    assert float(y[changed].sum((1, 2, 3)).median()) == pytest.approx(96.0, rel=0.15)
    assert torch.equal(Augment(reframe=0.0)(x, torch.Generator().manual_seed(0)), x)


def test_reframe_defaults_by_how_photos_are_framed():
    from sightline.data.augment import REFRAME_SHARE, default_reframe

    assert default_reframe("object") == default_reframe("digit") == REFRAME_SHARE > 0
    assert default_reframe("frame") == 0.0


# ----------------------------------------------------------------------- convert_images
def test_convert_rgb_to_gray_matches_pil():
    rgb = torch.randint(
        0, 256, (2, 3, 5, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    gray = convert_images(rgb, 1, None)
    pil = np.asarray(Image.fromarray(rgb[0].permute(1, 2, 0).numpy()).convert("L"))
    assert gray.shape == (2, 1, 5, 6)
    assert int((gray[0, 0].int() - torch.from_numpy(pil.astype(np.int32))).abs().max()) <= 1


def test_convert_gray_to_rgb_and_resize_modes():
    x = torch.full((3, 1, 10, 20), 200, dtype=torch.uint8)
    rgb = convert_images(x, 3, None)
    assert rgb.shape == (3, 3, 10, 20) and torch.equal(rgb[:, 0], rgb[:, 2])
    squash = convert_images(x, None, (8, 8), "squash")
    assert squash.shape == (3, 1, 8, 8) and bool((squash == 200).all())
    pad = convert_images(x, None, (8, 8), "pad")  # 10x20 → 4x8 plus black bands
    assert bool((pad[:, :, 2:6] == 200).all()) and bool((pad[:, :, :2] == 0).all())
    crop = convert_images(x, None, (8, 8), "crop")
    assert crop.shape == (3, 1, 8, 8) and bool((crop == 200).all())
    assert convert_images(x, None, None) is x


# ----------------------------------------------------------------------- tiny built-in datasets
def _idx(images: np.ndarray | None = None, labels: np.ndarray | None = None) -> bytes:
    import gzip

    if images is not None:
        return gzip.compress(struct.pack(">IIII", 2051, *images.shape) + images.tobytes())
    return gzip.compress(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


@pytest.fixture
def tiny_builtin(tmp_path, monkeypatch):
    """A 4-class 6x6 IDX dataset registered as 'tiny' (alias 'tn'), held in a mirror folder."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 40), ("t10k", 8)):
        labels = np.arange(n, dtype=np.uint8) % 4
        images = np.zeros((n, 6, 6), dtype=np.uint8)
        images[:, 1:5, 1:5] = rng.integers(100, 256, size=(n, 4, 4), dtype=np.uint8)
        files[f"{split}-images-idx3-ubyte.gz"] = _idx(images=images)
        files[f"{split}-labels-idx1-ubyte.gz"] = _idx(labels=labels)
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    for name, data in files.items():
        (mirror / "tiny" / name).write_bytes(data)
    spec = reg.DatasetSpec(
        name="tiny",
        aliases=("tn",),
        classes=("w", "x", "y", "z"),
        shape=(1, 6, 6),
        files=tuple(reg.DataFile(n, hashlib.md5(d).hexdigest(), len(d)) for n, d in files.items()),
        urls=("http://127.0.0.1:9/",),
        flip=False,
        dark_background=True,
        resize="pad",
        format="idx",
        folder="tiny",
        train_files=tuple(list(files)[:2]),
        test_files=tuple(list(files)[2:]),
        num_train=40,
        num_test=8,
    )
    monkeypatch.setitem(reg.DATASETS, "tiny", spec)
    return mirror


def test_load_builtin_from_mirror(tiny_builtin, tmp_path):
    ds = load_dataset(
        "TN", mirror=tiny_builtin, cache_dir=tmp_path / "cache", val_split=0.3, progress=False
    )
    assert ds.name == "tiny" and ds.classes == ["w", "x", "y", "z"]
    assert (len(ds.train), len(ds.val), len(ds.test)) == (28, 12, 8)
    assert ds.train.images.dtype == torch.uint8 and ds.input_shape == (1, 6, 6)
    assert ds.flip is False and ds.preprocess.dark_background
    assert ds.preprocess.mean == channel_stats(ds.train.images)[0]
    assert ds.test.labels.tolist() == [0, 1, 2, 3] * 2
    cached = [
        p.relative_to(tmp_path / "cache") for p in (tmp_path / "cache").rglob("*") if p.is_file()
    ]
    assert cached and all(p.parts[0] == "decoded" for p in cached)  # mirror files read in place
    assert ds.load_options["name_or_path"] == "tiny" and ds.load_options["val_split"] == 0.3
    again = load_dataset(**ds.load_options, progress=False)  # the options rebuild the same data
    assert torch.equal(again.val.images, ds.val.images)


def test_load_builtin_options(tiny_builtin):
    ds = load_dataset("tiny", mirror=tiny_builtin, val_split="test", classes=["z", "x"], flip=True)
    assert ds.val is ds.test and ds.classes == ["z", "x"]
    assert ds.train.class_counts(2) == [10, 10] and ds.flip is True
    conv = load_dataset("tiny", mirror=tiny_builtin, channels=3, size=12, val_split=None)
    assert conv.val is None
    assert conv.input_shape == (3, 12, 12) and conv.test.images.shape == (8, 3, 12, 12)
    assert conv.preprocess.input_shape == (3, 12, 12)


@pytest.mark.parametrize("val_split, match", [(1.5, "between 0 and 1"), ("half", "val_split")])
def test_bad_val_split(tiny_builtin, val_split, match):
    with pytest.raises(DataError, match=match):
        load_dataset("tiny", mirror=tiny_builtin, val_split=val_split)


def test_dataset_info(tiny_builtin, tmp_path):
    info = dataset_info("tiny", mirror=tiny_builtin, cache_dir=tmp_path / "empty")
    assert info["mirrored"] is True and info["cached"] is False
    assert info["shape"] == [1, 6, 6] and info["train"] == 40 and len(info["files"]) == 4
    assert dataset_info("fmnist", mirror=tmp_path / "none")["classes"][9] == "Ankle boot"


def test_registry_names():
    assert reg.list_datasets() == ["fashion-mnist", "mnist", "cifar10"]
    assert reg.get_dataset_spec("Fashion_MNIST").name == "fashion-mnist"
    assert reg.get_dataset_spec("cifar-10").resize == "crop"
    assert reg.get_dataset_spec("mnist").flip is False
    with pytest.raises(DataError, match=r"fashion-mnist.*mnist.*cifar10"):
        reg.get_dataset_spec("imagenet")


# ----------------------------------------------------------------------- the real files
@pytest.mark.integration
@needs_mirror
def test_real_datasets_from_mirror(tmp_path):
    fm = load_dataset(
        "fashion-mnist", mirror=MIRROR, cache_dir=tmp_path, val_split=0, progress=False
    )
    assert (len(fm.train), len(fm.test)) == (60000, 10000)
    assert fm.input_shape == (1, 28, 28)
    assert fm.train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert fm.classes[int(fm.train.labels[0])] == "Ankle boot"
    assert fm.train.class_counts(10) == [6000] * 10

    c10 = load_dataset("cifar10", mirror=MIRROR, cache_dir=tmp_path, val_split=0, progress=False)
    assert (len(c10.train), len(c10.test)) == (50000, 10000)
    assert c10.input_shape == (3, 32, 32)
    assert c10.train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]

    sub = load_dataset(
        "cifar",
        mirror=MIRROR,
        cache_dir=tmp_path,
        classes=["airplane", "automobile", "bird"],
        val_split="test",
        progress=False,
    )
    assert (len(sub.train), len(sub.test)) == (15000, 3000)
    assert sorted(sub.train.labels.unique().tolist()) == [0, 1, 2]
    assert sub.test.class_counts(3) == [1000, 1000, 1000]
    assert sub.classes == ["airplane", "automobile", "bird"]
    assert [p.name for p in tmp_path.iterdir()] == [
        "decoded"
    ]  # source files read in place, not copied
    again = load_dataset(
        "cifar",
        mirror=MIRROR,
        cache_dir=tmp_path,
        classes=["airplane", "automobile", "bird"],
        val_split="test",
        progress=False,
    )  # from the decoded copies: the same tensors
    assert torch.equal(again.train.images, sub.train.images) and torch.equal(
        again.test.labels, sub.test.labels
    )


def test_decoded_copies_are_used_and_checked(tiny_builtin, tmp_path, monkeypatch):
    import sightline.data.load as load_module

    first = load_dataset(
        "tiny", mirror=tiny_builtin, cache_dir=tmp_path / "c", val_split=0, progress=False
    )
    copies = sorted((tmp_path / "c" / "decoded").glob("tiny-*.npz"))
    assert len(copies) == 2

    def no_parse(*a, **k):
        raise AssertionError("parsed the source files although a good decoded copy exists")

    monkeypatch.setattr(load_module, "_read_split", no_parse)
    again = load_dataset(
        "tiny", mirror=tiny_builtin, cache_dir=tmp_path / "c", val_split=0, progress=False
    )
    assert torch.equal(again.train.images, first.train.images) and torch.equal(
        again.test.labels, first.test.labels
    )
    # a damaged copy (one flipped byte) is never used: the source is parsed again
    raw = bytearray(copies[0].read_bytes())
    raw[-200] ^= 0xFF
    copies[0].write_bytes(bytes(raw))
    with pytest.raises(AssertionError, match="parsed the source files"):
        load_dataset(
            "tiny", mirror=tiny_builtin, cache_dir=tmp_path / "c", val_split=0, progress=False
        )


def test_the_augmentation_is_built_from_the_training_config():
    """One place turns a config into its augmentation (a new one: a field and its option)."""
    from sightline.plan.config import resolve_config

    cfg = resolve_config(translate=2, reframe=0.5)
    assert Augment.from_config(cfg, dataset_flip=True) == Augment(2, True, 0.5)
    assert Augment.from_config(resolve_config(flip=False), dataset_flip=True) == Augment()


def test_channel_stats_in_chunks_equal_the_whole_samples_mean_and_std():
    """Summed STATS_CHUNK images at a time (a 20,000-photo folder in float64 at once was 24 GB):
    the same numbers as one pass over everything, across chunk boundaries."""
    from sightline.data.dataset import STATS_CHUNK, channel_stats

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (STATS_CHUNK * 4 + 7, 3, 9, 11), generator=g, dtype=torch.uint8)
    y = x.to(torch.float64) / 255
    mean, std = channel_stats(x)
    assert mean == pytest.approx(y.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert std == pytest.approx(y.std(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert channel_stats(torch.full((5, 1, 4, 4), 7, dtype=torch.uint8))[1] == (1e-3,)  # flat
