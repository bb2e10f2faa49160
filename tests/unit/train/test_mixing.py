"""Mixup and CutMix (train/mixing.py): the blend, the box, the mixed loss, options that cannot
apply, and a run that uses them resuming bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from test_train import CrashAt, fit_toy, toy  # noqa: F401 (toy is a fixture)

import sightline
from sightline.errors import ConfigError
from sightline.plan.config import resolve_config
from sightline.train.loss import batch_loss
from sightline.train.mixing import Mixed, Mixer


def test_mixup_blends_pairs_and_cutmix_pastes_a_box_of_the_share_it_says():
    x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 10, 10).contiguous()
    y = torch.arange(8)
    mixer = Mixer(mixup=0.4)
    out = mixer(x, y, torch.Generator().manual_seed(0))
    lam, partner = mixer.last.lam, mixer.last.partner
    assert 0 < lam < 1 and sorted(partner.tolist()) == list(range(8))  # a permutation of the batch
    torch.testing.assert_close(out[:, 0, 0, 0], lam * y.float() + (1 - lam) * partner.float())
    cut = Mixer(cutmix=1.0)
    out = cut(x, y, torch.Generator().manual_seed(3))
    own = (out == x).float().mean((1, 2, 3))  # the share of each image left as it was
    same = cut.last.partner == y  # an image paired with itself is unchanged
    assert torch.allclose(own[~same], torch.full_like(own[~same], cut.last.lam))
    assert Mixer().active is False and Mixer()(x, y, None) is x


def test_the_mixed_loss_is_the_blend_of_both_labels_losses():
    logits, y, partner = (
        torch.randn(5, 3),
        torch.tensor([0, 1, 2, 0, 1]),
        torch.tensor([1, 1, 0, 2, 0]),
    )
    loss, _ = batch_loss(logits, y, 0.1, None, Mixed(partner, 0.3))
    want = 0.3 * F.cross_entropy(logits, y, label_smoothing=0.1) + 0.7 * F.cross_entropy(
        logits, partner, label_smoothing=0.1
    )
    torch.testing.assert_close(loss, want)
    plain, _ = batch_loss(logits, y, 0.1, None, Mixed(partner, 1.0))
    torch.testing.assert_close(plain, F.cross_entropy(logits, y, label_smoothing=0.1))


def test_options_that_cannot_apply_to_frozen_features_are_named():
    assert resolve_config(augment="trivial", mixup=0.2).augment == "trivial"
    with pytest.raises(ConfigError, match="augment and cutmix change the images"):
        resolve_config(freeze=True, augment="trivial")
    with pytest.raises(
        ConfigError, match="augment .auto.; choose one of none, trivial, randaugment"
    ):
        resolve_config(augment="auto")
    resolve_config(freeze=True, mixup=0.2)  # mixup of features is fine


def test_a_run_with_trivialaugment_mixup_and_cutmix_differs_and_resumes_bit_exact(toy, tmp_path):  # noqa: F811
    opts = dict(epochs=3, checkpoint_every=3, augment="trivial", mixup=0.4, cutmix=1.0)
    plain = fit_toy(toy, tmp_path, name="plain", epochs=3, checkpoint_every=3)
    full = fit_toy(toy, tmp_path, name="full", **opts)
    assert full.status["status"] == "finished"
    a, p = load_file(full.path / "last.safetensors"), load_file(plain.path / "last.safetensors")
    assert not all(torch.equal(a[k], p[k]) for k in a)
    with pytest.raises(SystemExit):
        fit_toy(toy, tmp_path, name="crashed", callbacks=[CrashAt(2000 + 5)], **opts)
    resumed = sightline.resume(tmp_path / "crashed", data=toy, progress="quiet")
    b = load_file(resumed.path / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (
        resumed.config["train"]["augment"] == "trivial" and resumed.config["train"]["cutmix"] == 1.0
    )
