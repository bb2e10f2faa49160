"""Parameters that learn in the first epochs only (``optim.limit_learning``): airnet's whitening
bias, as airbench's. It learns for ``WHITEN_BIAS_EPOCHS`` epochs and then stays as it is, with
no gradient; a run stopped on either side of that epoch resumes to the same weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train import CrashAt, make_dataset

import sightline
from sightline.models.airnet import WHITEN_BIAS_EPOCHS
from sightline.train.optim import limit_learning

OPTS = dict(epochs=WHITEN_BIAS_EPOCHS + 2, batch_size=32, optimizer="sgd", lr=0.2)


class BiasEachEpoch:
    """Keeps a copy of the model's whitening bias at the end of each epoch."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.seen = model, []

    def on_epoch_end(self, row):  # noqa: ARG002
        self.seen.append(self.model.whiten.bias.detach().clone())


def airnet(data) -> torch.nn.Module:
    torch.manual_seed(0)
    return sightline.create_model("airnet", data.input_shape, data.num_classes, width=8)


def test_it_is_a_function_of_the_epoch():
    model = sightline.create_model("airnet", (1, 12, 12), 3, width=8)
    assert model.learns_for_epochs == {"whiten.weight": 0, "whiten.bias": WHITEN_BIAS_EPOCHS}
    for epoch, learns in [(0, True), (WHITEN_BIAS_EPOCHS - 1, True), (WHITEN_BIAS_EPOCHS, False)]:
        limit_learning(model, epoch)
        assert model.whiten.bias.requires_grad is learns
    limit_learning(model, 0)  # the rule, not a one-way switch
    assert model.whiten.bias.requires_grad
    assert not model.whiten.weight.requires_grad  # the filters never learn: computed from the data


def test_the_whitening_bias_learns_in_the_first_epochs_only(tmp_path):
    data = make_dataset()
    model = airnet(data)
    start = model.whiten.bias.detach().clone()
    seen = BiasEachEpoch(model)
    run = sightline.fit(model, data, runs_dir=tmp_path, progress="quiet", callbacks=[seen], **OPTS)
    assert run.status["status"] == "finished" and len(seen.seen) == OPTS["epochs"]
    learning, kept = seen.seen[:WHITEN_BIAS_EPOCHS], seen.seen[WHITEN_BIAS_EPOCHS - 1 :]
    assert not torch.equal(learning[0], start)
    assert all(not torch.equal(a, b) for a, b in zip(learning, learning[1:], strict=False))
    assert all(torch.equal(kept[0], b) for b in kept[1:])
    assert run.history[-1]["val_accuracy"] > 0.9  # and the rest still learns


@pytest.mark.parametrize("crash_epoch", [WHITEN_BIAS_EPOCHS, WHITEN_BIAS_EPOCHS + 1])
def test_a_run_stopped_on_either_side_resumes_to_the_same_weights(tmp_path, crash_epoch):
    """Epochs count from 1 in the progress events: a crash in epoch WHITEN_BIAS_EPOCHS is while
    the bias still learns, one in the next after it stopped."""
    data = make_dataset()
    full = sightline.fit(
        airnet(data), data, name="full", runs_dir=tmp_path, progress="quiet", **OPTS
    )
    with pytest.raises(SystemExit):
        sightline.fit(airnet(data), data, name="stopped", runs_dir=tmp_path, progress="quiet",
                      callbacks=[CrashAt(crash_epoch * 1000 + 2)], checkpoint_every=2, **OPTS)  # fmt: skip
    resumed = sightline.resume(tmp_path / "stopped", data=data, progress="quiet")
    assert resumed.status["status"] == "finished"
    a, b = load_file(full.path / "last.safetensors"), load_file(resumed.path / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_fit_of_the_same_model_learns_it_again_and_resumes(tmp_path):
    """After a fit the model is trainable again, so a second fit of the same object trains the
    bias in its first epochs, and its resume.pt matches a fresh model's optimizer."""
    data = make_dataset()
    model = airnet(data)
    sightline.fit(model, data, name="first", runs_dir=tmp_path, progress="quiet", **OPTS)
    assert model.whiten.bias.requires_grad
    before = model.whiten.bias.detach().clone()
    seen = BiasEachEpoch(model)
    with pytest.raises(SystemExit):
        sightline.fit(model, data, name="second", runs_dir=tmp_path, progress="quiet",
                      callbacks=[seen, CrashAt((WHITEN_BIAS_EPOCHS + 1) * 1000 + 2)],
                      checkpoint_every=2, **OPTS)  # fmt: skip
    assert not torch.equal(seen.seen[0], before)  # it learned again in the first epoch
    resumed = sightline.resume(tmp_path / "second", data=data, progress="quiet")
    assert resumed.status["status"] == "finished"


def test_fine_tuning_head_epochs_never_make_the_computed_filters_learn(tmp_path):
    """head_epochs make every parameter but the classifier's trainable again after the head's
    epochs; the whitening filters, computed from the data, stay out of it."""
    data = make_dataset()
    model = airnet(data)
    sightline.fit(model, data, runs_dir=tmp_path, progress="quiet", head_epochs=1,
                  **{**OPTS, "epochs": 2})  # fmt: skip
    filters = model.whiten.weight.detach().clone()
    assert not model.whiten.weight.requires_grad and model.group1.conv1.weight.requires_grad
    sightline.fit(model, data, name="again", runs_dir=tmp_path, progress="quiet", head_epochs=1,
                  **{**OPTS, "epochs": 2})  # fmt: skip
    assert torch.equal(model.whiten.weight, filters)
