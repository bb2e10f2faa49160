"""airbench's alternating flip (``alternate_flip``): each image mirrored in every other epoch,
the same for a resumed run, and nothing without flips."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train import CrashAt, fit_toy, toy  # noqa: F401 (toy is a fixture)

import sightline
from sightline.data.augment import alternating_flips
from sightline.errors import ConfigError
from sightline.models import create_model
from sightline.plan.config import resolve_config
from sightline.train.loop import Trainer


def trainer(data, tmp_path, **options) -> Trainer:
    model = create_model("mlp", data.input_shape, data.num_classes, hidden=8)
    return Trainer(model, data, resolve_config(**options), tmp_path, [])


def mirrored(t: Trainer, epoch: int) -> torch.Tensor:
    """For each training image, whether the batch the loop builds at ``epoch`` holds it mirrored."""
    images = t.data.train.images
    idx = torch.arange(len(images))
    t.epoch = epoch
    x = t.feed.batch(t, images, idx, torch.Generator().manual_seed(epoch))
    plain = t.preprocess.normalize(images)
    flipped = torch.all((x == plain.flip(-1)).flatten(1), 1)
    assert torch.all(
        flipped | torch.all((x == plain).flatten(1), 1)
    )  # each image as it is or mirrored
    return flipped


def test_the_first_epochs_mirrors_are_drawn_once_from_the_seed():
    a, b = alternating_flips(1000, seed=0), alternating_flips(1000, seed=0)
    assert torch.equal(a, b) and not torch.equal(a, alternating_flips(1000, seed=1))
    assert 400 < int(a.sum()) < 600


def test_each_image_is_mirrored_in_every_other_epoch(toy, tmp_path):  # noqa: F811
    t = trainer(toy, tmp_path, flip=True, alternate_flip=True)
    first, second, third = (mirrored(t, e) for e in range(3))
    assert torch.equal(second, ~first) and torch.equal(third, first)
    assert 0 < int(first.sum()) < len(first)
    # A coin each epoch (the default) shows some images the same way twice in a row.
    coin = trainer(toy, tmp_path, flip=True)
    assert torch.any(mirrored(coin, 0) == mirrored(coin, 1))


def test_without_flips_it_changes_nothing(toy, tmp_path):  # noqa: F811
    t = trainer(toy, tmp_path, flip=False, alternate_flip=True)
    assert t.flip_base is None and not mirrored(t, 0).any() and not mirrored(t, 1).any()


def test_alternate_flip_must_be_a_bool():
    with pytest.raises(ConfigError, match="alternate_flip must be true or false"):
        resolve_config(alternate_flip="sometimes")


def test_a_run_with_alternating_flips_differs_and_resumes_bit_exact(toy, tmp_path):  # noqa: F811
    opts = dict(epochs=3, checkpoint_every=3, flip=True)
    coin = fit_toy(toy, tmp_path, name="coin", **opts)
    full = fit_toy(toy, tmp_path, name="full", alternate_flip=True, **opts)
    assert full.config["train"]["alternate_flip"] is True
    a, c = load_file(full.path / "last.safetensors"), load_file(coin.path / "last.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(
        SystemExit
    ):  # in the second epoch: the resumed run must mirror its complement
        fit_toy(
            toy,
            tmp_path,
            name="crashed",
            callbacks=[CrashAt(2000 + 5)],
            alternate_flip=True,
            **opts,
        )
    resumed = sightline.resume(tmp_path / "crashed", data=toy, progress="quiet")
    b = load_file(resumed.path / "last.safetensors")
    assert resumed.status["status"] == "finished" and all(torch.equal(a[k], b[k]) for k in a)


def test_a_head_on_frozen_features_sees_the_mirrored_features_the_mask_says():
    # The frozen-features feed picks each image's plain (0) or mirrored (1) features by the
    # trainer's flip mask, as the image path mirrors by it.
    from types import SimpleNamespace

    from sightline.train.frozen import FrozenFeatures

    features = torch.stack(
        [torch.zeros(16, 2), torch.ones(16, 2)]
    )  # (views, N, F): 0 plain, 1 mirrored
    idx = torch.arange(15, -1, -1)
    mask = alternating_flips(16, seed=3)
    stub = SimpleNamespace(flip_mask=lambda i: mask if torch.equal(i, idx) else None)
    batch = FrozenFeatures().batch(stub, features, idx, torch.Generator().manual_seed(0))
    assert torch.equal(batch[:, 0], mask.float())
