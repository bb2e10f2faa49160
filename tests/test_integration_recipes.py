"""Integration: a named recipe trained on the real data as `sightline train --recipe` runs it,
the recipe's own settings but fewer epochs, for CI's time; the full recipes are trained and
timed by benchmarks/train.py (2 CPU cores without AMX: cifar3-fast 95.8-96.0 % in ~140 s,
fashion-mnist-fast 92.8-93.1 % in ~110 s; with AMX: fashion-mnist-fast, airnet there, 93.7-93.9 %
in ~51 s, fashion-mnist-long 94.75 % in 162 s), never timed here. airnet, the
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


def test_cifar10_airbench_recipe_trains_airbench94s_network(mirror, tmp_path):
    """The full-CIFAR-10 recipe end to end (its network, all ten classes, the 10,000 test images)
    for one epoch, its one-cycle schedule squeezed into it: 40.0 % measured (seed 0, bf16 on a CPU
    with AMX; the network is still early in learning after 196 steps: the 10-epoch run's first
    epoch trained to 40 % too). The whole recipe (24 epochs) reached 94.08 % in 1,160 s there."""
    result = sightline.run_training(recipe="cifar10-airbench", epochs=1, seed=0,
                                    data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
                                    runs_dir=tmp_path, report=False, progress="quiet")  # fmt: skip
    config = result.run.config
    assert config["model"]["name"] == "airnet" and config["model"]["options"]["widths"] == [64, 256, 256]
    assert config["train"]["extra"]["recipe"] == "cifar10-airbench"
    assert len(result.run.data.classes) == 10 and result.metrics.count == 10_000
    assert result.metrics.accuracy >= 0.30, result.metrics.accuracy  # chance: 0.10
