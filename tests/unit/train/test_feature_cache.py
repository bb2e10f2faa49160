"""The frozen-feature cache (sightline/train/feature_cache.py): keyed by content, read back
instead of computed, and bounded: the least recently used files go first."""

from __future__ import annotations

import os
import time

import pytest
import torch

from sightline.train.feature_cache import FeatureCache, cached_features

FEATURE_BYTES = 128 + 8 * 4  # an .npy of 8 float32 numbers


def features_of(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)[:, :8].float()


def test_features_are_read_back_and_only_the_new_ones_computed(tmp_path):
    cache = FeatureCache("r", tmp_path / "features" / "r")
    images = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
    feats, computed = cached_features(images, cache, features_of)
    assert computed == 6 and torch.equal(feats, features_of(images))
    more = torch.cat([images, torch.full((2, 1, 4, 4), 7, dtype=torch.uint8)])
    asked: list[int] = []
    feats, computed = cached_features(more, cache, lambda x: asked.append(len(x)) or features_of(x))
    assert computed == 2 and asked == [2] and torch.equal(feats, features_of(more))


def test_the_folder_is_trimmed_least_recently_used_first(tmp_path, monkeypatch):
    cache = FeatureCache("r", tmp_path / "features" / "r")
    other = FeatureCache("s", tmp_path / "features" / "s")  # every recipe counts
    old = time.time() - 1000
    for i in range(10):
        (cache if i % 2 else other).put(f"{i:02d}key", torch.zeros(8))
        path = (cache if i % 2 else other)._path(f"{i:02d}key")
        os.utime(path, (old + i, old + i))  # 00key the oldest
    assert cache.get("00key") is None and other.get("00key") is not None  # read: now the newest
    size = os.path.getsize(other._path("00key"))
    assert size == FEATURE_BYTES
    assert cache.trim(limit=20 * size) == 0  # under the bound: nothing goes
    removed = cache.trim(limit=5 * size)  # down to 80 %: 4 files stay
    assert removed == 6
    kept = sorted(p.stem for p in (tmp_path / "features").glob("*/*/*.npy"))
    assert kept == ["00key", "07key", "08key", "09key"]
    monkeypatch.setenv("SIGHTLINE_FEATURE_CACHE_MB", str(2 * size / 1024 / 1024))
    assert cache.trim() == 3 and other.get("00key") is not None  # the env's bound, the same rule


def test_a_bound_that_is_no_number_of_megabytes_is_named_and_the_default_kept(monkeypatch):
    from sightline.train.feature_cache import LIMIT_MB, limit_bytes

    monkeypatch.setenv("SIGHTLINE_FEATURE_CACHE_MB", "2GB")
    with pytest.warns(UserWarning, match=r"SIGHTLINE_FEATURE_CACHE_MB='2GB' is not a number"):
        assert limit_bytes() == LIMIT_MB * 1024 * 1024
    monkeypatch.setenv("SIGHTLINE_FEATURE_CACHE_MB", "-1")
    with pytest.warns(UserWarning, match="0 or more"):
        assert limit_bytes() == LIMIT_MB * 1024 * 1024
    monkeypatch.setenv("SIGHTLINE_FEATURE_CACHE_MB", "0.5")
    assert limit_bytes() == 512 * 1024
