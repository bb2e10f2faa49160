"""Photos of test items, as a user would take them (tests/photo_generator.py: light paper or
table, gradient, tint, off-centre, 20-95 % of the frame, rotated, shadow, frame line, JPEG,
28-4000 px): a default run must see them as it sees the original images."""

from __future__ import annotations

from dataclasses import replace

import pytest
from photo_generator import photos

import sightline
from sightline.predict import predict_tensor

pytestmark = pytest.mark.integration

N = 500


def _agreement(name: str, mirror, tmp_path, run=None, **train) -> tuple[float, float]:
    """Train the default run for ``name`` (what `sightline train NAME` does, with ``train``'s
    changes) unless ``run`` is it already; return the share of N test items whose photo gets
    the same class as the original image, and the share of photos that the whole-photo framing
    (the old way) agrees on."""
    if run is None:
        data = sightline.load_dataset(name, mirror=mirror, cache_dir=tmp_path / "cache", progress=False)
        run = sightline.fit("fastcnn", data, runs_dir=tmp_path / "runs", progress="quiet", **train)
    data = run.data
    items = data.test.images[:N]
    originals = run.predict(items).argmax(1)
    shots = [s.data for s in photos(items[:, 0].numpy(), seed=7)]
    framed = run.predict(shots).argmax(1)
    assert run.preprocess.fit == data.preprocess.fit != "frame"
    old = predict_tensor(run.load_model(), replace(run.preprocess, fit="frame"), shots).argmax(1)
    return (framed == originals).float().mean().item(), (old == originals).float().mean().item()


def test_fashion_photos_agree_with_the_originals(mirror, tmp_path, default_fashion_run):
    agree, whole_photo = _agreement("fashion-mnist", mirror, tmp_path, default_fashion_run)
    # Measured: 0.962 since the object is found in colour and small photos keep their paper
    # (0.958 before; benchmarks/photos.py --seeds 3 5 7 11 13: 0.944-0.962, the issue asks
    # 0.96: see its notes); 0.928 before the default training re-framed images
    # (data.augment); scaling the whole photo: about 0.3.
    assert agree >= 0.95, agree
    assert whole_photo < agree - 0.3, whole_photo


def test_mnist_photos_agree_with_the_originals(mirror, tmp_path):
    # The default run with 1 of its 4 epochs, for CI's time (a full MNIST run is ~4 min on 2
    # cores): measured 0.996, whole photo 0.466 (2 epochs: 0.994 / 0.488; benchmarks/photos.py:
    # the full default run 0.998; 0.992 before training re-framed images). The photos are the
    # same; only the training is shorter.
    agree, whole_photo = _agreement("mnist", mirror, tmp_path, epochs=1)
    assert agree >= 0.98, agree
    assert whole_photo < agree - 0.2, whole_photo


def test_saved_run_keeps_its_framing(mirror, tmp_path):
    data = sightline.load_dataset("mnist", mirror=mirror, cache_dir=tmp_path / "cache", progress=False)
    run = sightline.fit("mlp", data, epochs=1, max_steps=2, runs_dir=tmp_path / "runs", progress="quiet")
    assert sightline.load_run(run.path).preprocess.fit == "digit"
    # An old run's preprocessing (saved before framing existed) keeps the whole photo.
    assert sightline.load_dataset("mnist", mirror=mirror, cache_dir=tmp_path / "cache", progress=False,
                                  fit="frame").preprocess.fit == "frame"  # fmt: skip
