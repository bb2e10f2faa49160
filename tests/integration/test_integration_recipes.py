"""Integration: a named recipe trained on the real data as `sightline train --recipe` runs it,
the recipe's own settings but fewer epochs, for CI's time; the full recipes are trained and
timed by benchmarks/train.py (2 CPU cores without AMX: cifar3-fast 95.8-96.1 % in 140-220 s,
fashion-mnist-fast 92.96-93.18 % in 87-95 s, fashion-mnist-long in 6 epochs 94.40 % (94.14-94.50) in
249-272 s; in float32 with AVX-512 fashion-mnist-long 94.72 % in 243-259 s; with AMX:
fashion-mnist-fast, airnet there, 93.7-93.9 % in ~51 s, fashion-mnist-long 94.75 % in 162 s), never
timed here. airnet, the fashion-mnist-long model, is the Fashion-MNIST default:
tests/integration/test_integration.py trains it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import sightline

pytestmark = pytest.mark.integration


def test_cifar3_fast_recipe(mirror, tmp_path):
    """cifar3-fast with 3 of its 12 epochs (its one-cycle schedule squeezed into them): 88.7 %
    measured (seed 0; 88.6 and 87.6 % before its fastcnn pooled first); the full recipe reaches
    95.8-96.1 % (the issue asks >= 95 %)."""
    result = sightline.run_training(
        recipe="cifar3-fast",
        epochs=3,
        data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
    )
    assert result.run.config["train"]["extra"]["recipe"] == "cifar3-fast"
    assert result.run.config["train"]["extra"]["given"] == ["epochs"]
    assert result.run.data.classes == ["airplane", "automobile", "bird"]
    assert result.metrics.count == 3_000
    assert result.metrics.accuracy >= 0.85, result.metrics.accuracy


def test_fashion_mnist_fast_recipe_without_amx(mirror, tmp_path):
    """fashion-mnist-fast as it trains on a CPU without AMX (its own fastcnn, asked for by name so
    that an AMX machine does not switch to airnet): width 16, pooling before BatchNorm, Lookahead
    and label smoothing 0.1, for as many of its 12 epochs as fit in 8 s of training here (its own
    budget is 80 s): a few steps are timed first. One epoch on 2 cores without AMX (5.5 s with
    AVX-512, 12-14 s with AVX2): 89.8 % measured (seed 0); the whole recipe 93.54 % (93.49-93.61,
    12 epochs, AVX-512) and 92.96-93.18 % (5 seeds, the 6 epochs its budget fits on AVX2)."""
    events = []
    result = sightline.run_training(
        "fashion-mnist",
        model="fastcnn",
        recipe="fashion-mnist-fast",
        time_budget=8,
        data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
        on_event=events.append,
    )
    config = result.run.config
    budget = config["train"]["extra"]["time_budget"]
    epochs = config["train"]["epochs"]
    assert budget["seconds"] == 8 and budget["max_epochs"] == 12 and budget["epochs"] == epochs
    assert (
        epochs == 1 or epochs * budget["epoch_s"] <= 8
    )  # what fit, or the one epoch a run trains anyway
    assert result.run.status["epochs_done"] == epochs
    assert any(e.get("text", "").startswith("time budget 8 s of training") for e in events)
    assert config["model"]["options"] == {"width": 16, "depth": 0, "stages": 4, "pool_first": True}
    assert (
        config["train"]["extra"]["recipe"] == "fashion-mnist-fast"
        and config["data"]["val_split"] == 0
    )
    assert config["train"]["lookahead"] is True and config["train"]["label_smoothing"] == 0.1
    assert result.metrics.count == 10_000
    assert result.metrics.accuracy >= 0.87, result.metrics.accuracy


def test_fashion_mnist_long_recipe_in_float32_trains_with_lookahead(mirror, tmp_path):
    """fashion-mnist-long as it trains in float32 (``amp=False`` keeps an AMX CPU off its bf16
    variant): airnet with Lookahead and alternating flips. 1 epoch here (given, so the recipe's
    time budget stands aside), the run ending on the averaged weights: 91.6 % measured (seed 0);
    the whole recipe 94.72 % in 12 epochs (AVX-512), 94.51 % (94.40-94.67, 3 seeds) in 8, 94.38 %
    (94.32-94.45) in 6."""
    from sightline.plan.recipes import for_machine, get_recipe

    result = sightline.run_training(
        "fashion-mnist",
        recipe="fashion-mnist-long",
        epochs=1,
        amp=False,
        data_options={"mirror": mirror, "cache_dir": tmp_path / "cache"},
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
    )
    config = result.run.config
    assert config["model"]["name"] == "airnet" and config["train"]["lookahead"] is True
    assert config["train"]["alternate_flip"] is True and config["train"]["amp"] is False
    assert for_machine(get_recipe("fashion-mnist-long"), amp=False).variant == ""
    assert (
        "recipe_variant" not in config["train"]["extra"]
        and "time_budget" not in config["train"]["extra"]
    )
    assert config["train"]["epochs"] == 1 and config["train"]["time_budget"] == 300
    assert result.metrics.count == 10_000
    assert result.metrics.accuracy >= 0.90, result.metrics.accuracy


def test_cifar10_airbench_recipe_trains_airbench94s_network(mirror, tmp_path):
    """The full-CIFAR-10 recipe end to end (its network and parametrization, all ten classes, 1,000
    test images with its flip and shift TTA) for one epoch over an eighth of the training images
    (6,400), for CI's time (one full epoch is ~6 min on 2 cores without AMX): at batch 256 and lr
    0.375, the recipe's per-image lr (1.5 at batch 1024), to take 25 steps. 45.6 % measured
    (seed 0, AMD EPYC, 2026-11-28; 59.8 % in 50 steps on a CPU with AMX); the recipe's network
    without airbench94's parametrization reached 18.0 % in 50 steps, so the floor (35 %) still
    tells the two apart. The whole recipe (10 epochs with Lookahead and alternating flips):
    94.10 % mean over 5 seeds (benchmarks/README.md)."""
    data = sightline.load_dataset(
        "cifar10", val_split=0, mirror=mirror, cache_dir=tmp_path / "cache", progress=False
    )
    quarter = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:6_400]
    # 2,000 of the test images: with the recipe's flip and shift TTA (6 views an image) the
    # evaluation of all 10,000 cost more than the training here.
    some = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(1))[:1_000]
    data = dataclasses.replace(data, train=data.train.select(quarter), test=data.test.select(some))
    result = sightline.run_training(
        data,
        recipe="cifar10-airbench",
        epochs=1,
        batch_size=256,
        lr=0.375,
        seed=0,
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
    )
    config = result.run.config
    assert config["model"]["name"] == "airnet"
    assert (
        config["model"]["options"]["widths"] == [64, 256, 256]
        and config["model"]["options"]["airbench"] is True
    )
    assert config["train"]["extra"]["recipe"] == "cifar10-airbench"
    assert config["train"]["momentum"] == 0.85 and config["train"]["shift_tta"] == 1
    assert config["train"]["lookahead"] is True and config["train"]["alternate_flip"] is True
    print(f"cifar10-airbench, 25 steps: {result.metrics.accuracy:.4f}")
    assert result.run.status["global_step"] == 25
    assert len(result.run.data.classes) == 10 and result.metrics.count == 1_000
    assert result.metrics.accuracy >= 0.35, result.metrics.accuracy  # chance: 0.10
