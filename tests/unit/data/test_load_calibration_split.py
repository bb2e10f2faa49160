"""load_dataset(calibration_split=): images held out from train where there is no validation
split, to calibrate a run on (the recipes keep 2 %)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sightline
from sightline.errors import DataError


@pytest.fixture
def folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    for c, count in (("a", 50), ("b", 30)):
        (tmp_path / c).mkdir()
        for i in range(count):
            pixels = torch.randint(0, 256, (8, 8), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / c / f"{i}.png")
    return tmp_path


def test_held_out_per_class_disjoint_and_seeded(folder):
    whole = sightline.load_dataset(folder, val_split=0)
    ds = sightline.load_dataset(folder, val_split=0, calibration_split=0.1)
    assert ds.val is None and ds.held_out is ds.calibration
    assert torch.bincount(ds.calibration.labels).tolist() == [5, 3]  # stratified
    assert len(ds.train) + len(ds.calibration) == len(whole.train) == 80
    kept = set(ds.train.paths) | set(ds.calibration.paths)
    assert kept == set(whole.train.paths) and not set(ds.train.paths) & set(ds.calibration.paths)
    assert ds.load_options["calibration_split"] == 0.1
    same = sightline.load_dataset(**{k: v for k, v in ds.load_options.items()})
    assert same.calibration.paths == ds.calibration.paths  # a run's config rebuilds it
    assert "calibration_split" not in whole.load_options  # old configs stay as they were


def test_a_validation_split_wins_and_bad_fractions_are_refused(folder):
    ds = sightline.load_dataset(folder, val_split=0.2, calibration_split=0.1)
    assert ds.calibration is None and ds.held_out is ds.val
    with pytest.raises(DataError, match="calibration_split"):
        sightline.load_dataset(folder, val_split=0, calibration_split=1.5)
