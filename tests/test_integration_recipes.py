"""Integration: the named recipes trained in full on the real data, as `sightline train --recipe`
runs them, with floors a little under what benchmarks/train.py measured (seeds vary by ~0.3 %).
Their times are measured by benchmarks/train.py, never here."""

from __future__ import annotations

import pytest

import sightline

pytestmark = pytest.mark.integration


def test_fashion_mnist_fast_recipe(mirror, tmp_path):
    """fashion-mnist-fast: 92.8-93.1 % over seeds in benchmarks/train.py (~85 s on 2 cores)."""
    result = sightline.run_training(recipe="fashion-mnist-fast", data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
                                    runs_dir=tmp_path, report=False, progress="quiet")  # fmt: skip
    assert result.status == "finished"
    assert result.run.config["train"]["extra"]["recipe"] == "fashion-mnist-fast"
    assert result.metrics.count == 10_000
    assert result.metrics.accuracy >= 0.926, result.metrics.accuracy


def test_cifar3_fast_recipe(mirror, tmp_path):
    """cifar3-fast: 95.8-96.0 % in benchmarks/train.py (~140 s on 2 cores); the issue asks >= 95 %."""
    result = sightline.run_training(recipe="cifar3-fast", data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
                                    runs_dir=tmp_path, report=False, progress="quiet")  # fmt: skip
    assert result.run.data.classes == ["airplane", "automobile", "bird"]
    assert result.metrics.count == 3_000
    assert result.metrics.accuracy >= 0.95, result.metrics.accuracy
