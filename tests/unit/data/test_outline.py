"""The data's outline (sightline.data.outline): what loading would give, without decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sightline.data import load_dataset
from sightline.data.load import decoded_path
from sightline.data.outline import outline_dataset
from sightline.data.registry import get_dataset_spec
from sightline.errors import DataError


def make_folder(root, layout: dict[str, dict[str, int]], rgb: bool = False):
    rng = np.random.default_rng(0)
    for split, classes in layout.items():
        for c, n in classes.items():
            folder = root / split / c if split else root / c
            folder.mkdir(parents=True)
            for i in range(n):
                shape = (18, 14, 3) if rgb else (18, 14)
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(
                    folder / f"{i}.png"
                )
    return root


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"classes": "b,c"},
        {"val_split": 0, "calibration_split": 0.25},
        {"size": 8, "channels": 3, "resize": "crop"},
    ],
)
def test_an_outline_has_the_loaded_splits_shape_and_notes(tmp_path, options):
    root = make_folder(tmp_path / "f", {"": {"a": 7, "b": 12, "c": 9}})
    outline, loaded = (
        outline_dataset(root, **options),
        load_dataset(root, progress=False, **options),
    )
    assert outline.describe() == loaded.describe()
    assert outline.classes == loaded.classes and outline.flip == loaded.flip
    assert outline.load_options == loaded.load_options
    assert outline.notes == loaded.notes  # gray files: the channels are known from their modes
    assert outline.train.labels.tolist() == loaded.train.labels.tolist()
    assert outline.train.images.is_meta  # no pixels: reading one fails, it never reads zeros
    with pytest.raises((RuntimeError, NotImplementedError)):
        outline.train.images[0].tolist()


def test_a_split_layout_and_colour_files(tmp_path):
    layout = {"train": {"x": 6, "y": 6}, "val": {"x": 2, "y": 2}, "test": {"x": 3, "y": 3}}
    root = make_folder(tmp_path / "g", layout, rgb=True)
    outline, loaded = outline_dataset(root), load_dataset(root, progress=False)
    assert outline.describe() == loaded.describe()  # the folder's own val/, 3 channels
    assert outline.notes[0].startswith("channels 3")


def test_errors_are_loadings_errors(tmp_path):
    with pytest.raises(DataError, match="neither a built-in dataset nor an existing folder"):
        outline_dataset(tmp_path / "nope")
    root = make_folder(tmp_path / "h", {"": {"a": 2, "b": 2}})
    with pytest.raises(DataError, match="unknown class 'z'"):
        outline_dataset(root, classes=["a", "z"])


def test_a_built_in_dataset_from_its_decoded_labels_or_none(tmp_path):
    spec = get_dataset_spec("mnist")
    assert outline_dataset("mnist", cache_dir=tmp_path) is None  # never loaded here: not known
    for names, n in ((spec.train_files, 100), (spec.test_files, 20)):
        path = decoded_path(spec, names, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, labels=np.arange(n) % 10, images=np.zeros((1,), np.uint8), crc=np.int64(0))
    outline = outline_dataset("mnist", cache_dir=tmp_path, classes=[3, 5], size=14)
    assert outline.classes == ["3", "5"] and outline.input_shape == (1, 14, 14)
    assert len(outline.train) + len(outline.val) == 20 and len(outline.test) == 4
    assert torch.equal(outline.test.labels, torch.tensor([0, 1, 0, 1]))
