"""Lookahead weights (sightline/train/lookahead.py): the schedule, the sync, and a run that uses
them resuming bit for bit."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train import CrashAt, fit_toy, toy  # noqa: F401 (toy is a fixture)
from torch import nn

import sightline
from sightline.errors import ConfigError, RunError
from sightline.plan.config import resolve_config
from sightline.train.lookahead import BASE_DECAY, EVERY, Lookahead, decay_at


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def test_the_decay_ramps_from_zero_to_the_base_decay():
    assert decay_at(0, 100) == 0.0
    assert decay_at(50, 100) == pytest.approx(BASE_DECAY / 8)  # progress cubed
    assert decay_at(100, 100) == pytest.approx(BASE_DECAY) == pytest.approx(0.95**EVERY)


def test_a_sync_moves_the_slow_weights_and_restarts_the_network_from_them():
    model = net()
    la = Lookahead(model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.add_(2.0)
    la.sync(model, 0.75)
    assert torch.allclose(model[0].weight, start["0.weight"] + 0.25)
    assert torch.allclose(model[1].running_mean, start["1.running_mean"] + 0.5)  # buffers too
    assert torch.equal(la.slow["0.weight"], model[0].weight)
    assert (
        model[1].num_batches_tracked.dtype == torch.long and "1.num_batches_tracked" not in la.slow
    )


def test_syncs_come_every_few_steps_and_the_last_step_takes_the_slow_weights():
    model = net()
    la = Lookahead(model)
    start = model[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    la.after_step(model, EVERY - 1, 100)  # between syncs: nothing happens
    assert torch.equal(model[0].weight, start + 1.0)
    la.after_step(model, 100, 100)  # the end: decay 1, the network becomes the slow weights
    assert torch.equal(model[0].weight, start)


def test_lookahead_must_be_a_bool():
    assert resolve_config(lookahead=True).lookahead is True
    with pytest.raises(ConfigError, match="lookahead must be true or false"):
        resolve_config(lookahead="yes")


def test_a_run_with_lookahead_differs_and_resumes_bit_exact(toy, tmp_path):  # noqa: F811
    # 6 steps an epoch, 18 in all: syncs after steps 5, 10, 15 and 18. The crash at epoch 2,
    # step 5 (step 11) resumes from the checkpoint at step 9, so the sync at step 10 needs the
    # slow weights saved at step 9.
    opts = dict(epochs=3, checkpoint_every=3)
    plain = fit_toy(toy, tmp_path, name="plain", **opts)
    full = fit_toy(toy, tmp_path, name="full", lookahead=True, **opts)
    assert full.status["status"] == "finished"
    a, p = load_file(full.path / "last.safetensors"), load_file(plain.path / "last.safetensors")
    assert not all(torch.equal(a[k], p[k]) for k in a)  # it changes the weights
    with pytest.raises(SystemExit):
        fit_toy(
            toy, tmp_path, name="crashed", callbacks=[CrashAt(2000 + 5)], lookahead=True, **opts
        )
    resumed = sightline.resume(tmp_path / "crashed", data=toy, progress="quiet")
    assert resumed.status["status"] == "finished"
    b = load_file(resumed.path / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_state_from_another_network_is_a_clear_error():
    la = Lookahead(net())
    with pytest.raises(
        RunError,
        match="Lookahead weights lack 0.bias, 0.weight, 1.bias: it is from another network",
    ):
        la.load_state_dict({"1.weight": torch.ones(3)})
