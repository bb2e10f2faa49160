"""Transfer learning on small generated data: a head trained on frozen features (only the head
changes, exact resume, the run needs no weights to predict), the pretrained input recorded in
the saved Preprocess, and the options' errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train import CrashAt, make_dataset

import sightline
from sightline.cli import main
from sightline.errors import ConfigError
from sightline.plan.config import FROZEN_HEAD_DEFAULTS, resolve_config
from sightline.plan.transfer import (
    pretrained_input,
    transfer_data_options,
    with_pretrained_normalization,
)

OPTS = dict(epochs=3, batch_size=8, progress="quiet")


@pytest.fixture(scope="module")
def small():
    return make_dataset(n_per_class=8, classes=3, size=32)


def _efficientnet(data, pretrained=False):
    torch.manual_seed(0)
    return sightline.create_model(
        "efficientnet-lite0", data.input_shape, data.num_classes, pretrained=pretrained
    )


def test_frozen_training_changes_only_the_head(small, tmp_path, monkeypatch):
    # A cache of its own: the features are computed here (an earlier run's cache would skip that).
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path / "cache"))
    model = _efficientnet(small)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    events = []
    run = sightline.fit(
        model, small, runs_dir=tmp_path, name="head", freeze=True, on_event=events.append, **OPTS
    )
    assert run.status["status"] == "finished" and len(run.history) == 3
    after = load_file(run.path / "last.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"_fc.weight", "_fc.bias"}  # BatchNorm statistics untouched too
    kinds = [e["kind"] for e in events]
    assert "features" in kinds and any(
        "Features of 24 train images" in e.get("text", "") for e in events
    )
    assert run.config["train"]["freeze"] is True
    # The saved model is the whole network: it predicts from images with nothing else.
    probs = sightline.load_run(run.path).predict(small.test.images)
    assert probs.shape == (len(small.test), 3)


def test_frozen_head_defaults_apply_only_with_freeze():
    cfg = resolve_config({"epochs": 3, "lr": 5e-4}, freeze=True)
    assert cfg.epochs == FROZEN_HEAD_DEFAULTS["epochs"] and cfg.lr == FROZEN_HEAD_DEFAULTS["lr"]
    assert resolve_config({"epochs": 3}, freeze=True, epochs=7).epochs == 7  # the user still wins
    assert resolve_config({"epochs": 3}).epochs == 3


@pytest.mark.parametrize("alternate_flip", [False, True])
def test_frozen_resume_is_exact(small, tmp_path, alternate_flip):
    flip = dict(
        OPTS, flip=True, alternate_flip=alternate_flip
    )  # the mirrored features are the augmentation
    full = sightline.fit(
        _efficientnet(small), small, runs_dir=tmp_path, name="full", freeze=True, **flip
    )
    with pytest.raises(SystemExit):
        sightline.fit(
            _efficientnet(small),
            small,
            runs_dir=tmp_path,
            name="crashed",
            freeze=True,
            callbacks=[CrashAt(2000 + 2)],
            checkpoint_every=1,
            **flip,
        )
    resumed = sightline.resume(tmp_path / "crashed", data=small, progress="quiet")
    assert resumed.status["status"] == "finished"
    a, b = load_file(full.path / "last.safetensors"), load_file(resumed.path / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_freeze_needs_a_backbone(small, tmp_path):
    fastcnn = sightline.create_model("fastcnn", small.input_shape, small.num_classes)
    with pytest.raises(ConfigError, match="no backbone/head split"):
        sightline.fit(fastcnn, small, runs_dir=tmp_path, freeze=True, **OPTS)
    with pytest.raises(
        ConfigError, match="go with pretrained weights"
    ):  # by name: no weights asked
        sightline.fit("fastcnn", small, runs_dir=tmp_path, freeze=True, **OPTS)


def test_pretrained_input_goes_into_the_saved_preprocess(small, tmp_path):
    want = pretrained_input("efficientnet-lite0")
    assert want["size"] == 224 and len(want["mean"]) == 3
    assert transfer_data_options("efficientnet-lite0", {"size": 128}) == {
        "size": 128,
        "channels": 3,
    }
    gray = with_pretrained_normalization(small, "efficientnet-lite0")
    assert gray.preprocess.mean == (pytest.approx(127 / 255),) and gray.preprocess.std == (
        pytest.approx(128 / 255),
    )
    run = sightline.fit(
        _efficientnet(small, pretrained=True),
        small,
        runs_dir=tmp_path,
        freeze=True,
        max_steps=2,
        **OPTS,
    )
    saved = sightline.load_run(run.path)
    assert saved.preprocess.mean == gray.preprocess.mean
    assert saved.config["model"]["options"]["pretrained"] is True
    with pytest.raises(
        ConfigError, match="no pretrained weights; models with them: efficientnet-lite0"
    ):
        pretrained_input("mlp")


def test_saved_pretrained_model_loads_without_the_weights(small, tmp_path, monkeypatch):
    run = sightline.fit(
        _efficientnet(small, pretrained=True),
        small,
        runs_dir=tmp_path,
        freeze=True,
        max_steps=1,
        **OPTS,
    )
    from sightline.models import pretrained as pw

    def no_weights(*a, **k):
        raise AssertionError("the ImageNet weights were read again")

    monkeypatch.setattr(pw, "load_pretrained_state_dict", no_weights)
    model = sightline.load_run(run.path).load_model()
    assert model.sightline_config["options"]["pretrained"] is True
    assert torch.equal(
        model.state_dict()["_fc.weight"], load_file(run.path / "best.safetensors")["_fc.weight"]
    )


def test_cli_transfer_options_are_checked(tmp_path, capsys):
    assert main(["train", "mnist", "--freeze", "--runs-dir", str(tmp_path)]) != 0
    assert "go with pretrained weights (--pretrained)" in capsys.readouterr().err
    assert (
        main(["train", "mnist", "--pretrained", "--model", "mlp", "--runs-dir", str(tmp_path)]) != 0
    )
    assert "model 'mlp' has no pretrained weights" in capsys.readouterr().err


def test_fine_tuning_trains_the_head_first_then_all_gently(small, tmp_path):
    model = _efficientnet(small, pretrained=True)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    seen = {}

    class AfterEpoch:
        def on_epoch_end(self, row):
            seen[row["epoch"]] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    run = sightline.fit(
        model,
        small,
        runs_dir=tmp_path,
        callbacks=[AfterEpoch()],
        freeze=False,  # pretrained weights are otherwise a head on frozen features
        **dict(OPTS, epochs=2),
    )
    cfg = run.config["train"]
    assert cfg["head_epochs"] == 1 and cfg["backbone_lr"] == 0.1 and cfg["freeze"] is False
    moved_1 = {k for k in start if not torch.equal(start[k], seen[1][k])}
    assert moved_1 == {
        "_fc.weight",
        "_fc.bias",
    }  # epoch 1: the head alone, BatchNorm statistics kept
    assert not torch.equal(
        seen[1]["_conv_stem.weight"], seen[2]["_conv_stem.weight"]
    )  # epoch 2: everything
    from sightline.plan.config import TrainConfig
    from sightline.train.optim import create_optimizer

    groups = create_optimizer(model, TrainConfig(backbone_lr=0.1, lr=1e-3, epochs=2)).param_groups
    assert [g["lr_scale"] for g in groups] == [1.0, 1.0, 0.1, 0.1]
    assert sum(len(g["params"]) for g in groups[:2]) == 2  # the head: weight and bias


def test_registry_states_the_weights_input_as_the_model_does():
    from sightline.models.efficientnet import PRETRAINED_INPUT

    want = pretrained_input("efficientnet-lite0")
    assert want["size"] == PRETRAINED_INPUT["size"]
    assert want["mean"] == pytest.approx(PRETRAINED_INPUT["mean"]) and want["std"] == pytest.approx(
        PRETRAINED_INPUT["std"]
    )


def test_predictions_run_a_copy_with_batchnorm_folded_and_the_same_outputs(small, tmp_path):
    from torch import nn

    from sightline.infer.batched import batched_logits

    run = sightline.fit(
        _efficientnet(small),
        small,
        runs_dir=tmp_path,
        name="fused",
        epochs=1,
        batch_size=8,
        progress="quiet",
    )
    loaded = sightline.load_run(run.path)
    net, model = loaded.inference_model(), loaded.load_model()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert any(
        isinstance(m, nn.BatchNorm2d) for m in model.modules()
    )  # inspect and export see the layers as trained
    probs = loaded.predict(small.test.images)
    want = batched_logits(model, small.test.images, loaded.preprocess, "cpu").softmax(1)
    assert torch.allclose(probs, want, atol=1e-4), (probs - want).abs().max()
    assert loaded.inference_model() is net  # made once per checkpoint and device
    # A model without fused() predicts with itself: no copy.
    mlp = sightline.load_run(
        sightline.fit("mlp", small, runs_dir=tmp_path, name="mlp", epochs=1, progress="quiet").path
    )
    assert mlp.inference_model() is mlp.load_model()


def test_the_folder_recipe_picks_the_backbone_by_the_folders_size_and_time_budget():
    from sightline.plan.transfer import FEATURE_BUDGET, pick_backbone

    every = lambda name: True  # noqa: E731 - all weights installed
    name, why = pick_backbone(600, None, False, every)
    assert name == "efficientnet-lite2" and "within 120 s" in why and "most accurate" in why
    # 5,000 photos: Lite2's features would take ~350 s here; Lite0's (~240 s) fit 300 s.
    name, why = pick_backbone(5000, 300, False, every)
    assert name == "efficientnet-lite0" and "within 300 s" in why
    name, why = pick_backbone(50_000, None, False, every)
    assert name == "efficientnet-lite0" and f"over {FEATURE_BUDGET:.0f} s" in why
    assert pick_backbone(50_000, None, True, every)[0] == "efficientnet-lite2"  # a GPU
    only0 = lambda name: name == "efficientnet-lite0"  # noqa: E731
    assert pick_backbone(600, None, False, only0)[0] == "efficientnet-lite0"
