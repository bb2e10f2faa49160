"""Integration: a named recipe trained on the real data as `sightline train --recipe` runs it,
the recipe's own settings but fewer epochs, for CI's time; the full recipes are trained and
timed by benchmarks/train.py (cifar3-fast: 95.8-96.0 % in ~140 s; fashion-mnist-fast: 92.8-93.1 %
in ~100 s; fashion-mnist-long: 94.2 % in ~300 s, on 2 cores), never timed here. airnet, the
fashion-mnist-long model, is the Fashion-MNIST default: tests/test_integration.py trains it."""

from __future__ import annotations

import pytest

import sightline

pytestmark = pytest.mark.integration


def test_cifar3_fast_recipe(mirror, tmp_path):
    """cifar3-fast with 3 of its 12 epochs (its one-cycle schedule squeezed into them): 88.6 % and
    87.6 % measured (seeds 0, 1); the full recipe reaches 95.8-96.0 % (the issue asks >= 95 %)."""
    result = sightline.run_training(recipe="cifar3-fast", epochs=3,
                                    data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
                                    runs_dir=tmp_path, report=False, progress="quiet")  # fmt: skip
    assert result.run.config["train"]["extra"]["recipe"] == "cifar3-fast"
    assert result.run.config["train"]["extra"]["given"] == ["epochs"]
    assert result.run.data.classes == ["airplane", "automobile", "bird"]
    assert result.metrics.count == 3_000
    assert result.metrics.accuracy >= 0.85, result.metrics.accuracy
