"""Integration: a named recipe trained on the real data as `sightline train --recipe` runs it,
the recipe's own settings but fewer epochs, for CI's time; the full recipes are trained and
timed by benchmarks/train.py (cifar3-fast: 95.8-96.0 % in ~140 s; fashion-mnist-fast: 92.8-93.1 %
in ~100 s; fashion-mnist-long: 94.2 % in ~300 s, on 2 cores), never timed here."""

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


def test_fashion_mnist_long_recipe_whitens_airnet_from_the_data(mirror, tmp_path):
    """fashion-mnist-long (airnet) with 1 of its 6 epochs: 91.7 % measured (fastcnn after 1
    epoch: 89.4 %); the full recipe 94.2 %. Its stem whitens the training images' 2x2 patches
    and is saved with the run."""
    import torch

    from sightline.models.airnet import WHITEN_EPS

    result = sightline.run_training(recipe="fashion-mnist-long", epochs=1,
                                    data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
                                    runs_dir=tmp_path, report=False, progress="quiet")  # fmt: skip
    model = result.run.load_model()
    assert result.run.config["model"]["name"] == "airnet" and bool(model.whiten.initialized)
    images = result.run.data.preprocess.normalize(result.run.data.train.images[:5000])
    patches = torch.nn.functional.unfold(images, 2).transpose(0, 1).flatten(1).double()  # (4, N * L)
    filters = model.whiten.weight[: model.whiten.out_channels // 2].flatten(1).double()
    cov = torch.cov(filters @ patches)
    # Decorrelated, each direction's variance λ / (λ + eps): 1 but for the faintest patterns.
    eigenvalues = torch.linalg.eigvalsh(torch.cov(patches))
    assert torch.allclose(cov, torch.diag(eigenvalues / (eigenvalues + WHITEN_EPS)), atol=1e-3), cov
    assert result.metrics.count == 10_000
    assert result.metrics.accuracy >= 0.90, result.metrics.accuracy
