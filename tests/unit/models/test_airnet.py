"""airnet: the patch-whitening stem is computed from the data once, frozen, and saved."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_train import make_dataset

import sightline
from sightline.errors import ModelError
from sightline.models import create_model, summary


def _stem_outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    half = model.whiten.out_channels // 2  # the second half are the negatives of the first
    return model.whiten(x)[:, :half].permute(0, 2, 3, 1).reshape(-1, half).double()


def test_whitening_decorrelates_the_data_patches():
    gen = torch.Generator().manual_seed(0)
    # Smooth images: neighbouring pixels strongly correlated, as in real photos.
    x = (
        torch.nn.functional.avg_pool2d(torch.randn(400, 3, 18, 18, generator=gen), 3, 1, padding=1)
        * 5
        + 2
    )
    model = create_model("airnet", (3, 18, 18), 4)
    assert not bool(model.whiten.initialized)
    before = torch.cov(_stem_outputs(model, x).T)
    model.init_from_data(x)
    assert bool(model.whiten.initialized)
    cov = torch.cov(_stem_outputs(model, x).T)
    off = cov - torch.diag(torch.diag(cov))
    assert before.abs().max() > 1.0  # the raw patches are far from white
    assert off.abs().max() < 1e-6  # decorrelated ...
    assert torch.allclose(
        torch.diag(cov), torch.ones(12, dtype=cov.dtype), atol=0.05
    )  # ... unit variance
    # A second call keeps the first result: a checkpoint's whitening is never recomputed.
    w = model.whiten.weight.clone()
    model.init_from_data(torch.randn(50, 3, 18, 18))
    assert torch.equal(model.whiten.weight, w)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 9, 9)])
def test_any_size_down_to_its_poolings(shape):
    model = create_model("airnet", shape, 5)
    assert model(torch.randn(2, *shape)).shape == (2, 5)
    rows = summary(model, shape).layers
    assert rows[0].name == "whiten"
    assert (
        rows[0].trainable == model.whiten.out_channels < rows[0].params
    )  # frozen filters, a learnt bias


@pytest.mark.parametrize("widths", [[64, 256, 256], "64,256,256", (64, 256, 256)])
def test_group_widths_spelled_out(widths):
    model = create_model("airnet", (3, 32, 32), 10, widths=widths)  # airbench94's groups
    assert [model.get_submodule(f"group{i}").conv2.out_channels for i in (1, 2, 3)] == [
        64,
        256,
        256,
    ]
    assert model.classifier.in_features == 256 and model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert [
        create_model("airnet", (1, 28, 28), 3, width=8, groups=2)
        .get_submodule(f"group{i}")
        .conv2.out_channels
        for i in (1, 2)
    ] == [8, 16]


@pytest.mark.parametrize("bad", ["a,b", [], [64, 2], "64;256"])
def test_bad_group_widths_are_a_clear_error(bad):
    with pytest.raises(sightline.errors.ModelError, match="widths must be channel counts"):
        create_model("airnet", (3, 32, 32), 10, widths=bad)


def test_too_small_inputs_are_refused_with_the_size_needed():
    with pytest.raises(sightline.errors.ModelError, match="9x9"):
        create_model("airnet", (1, 8, 8), 3)


def test_fit_whitens_from_the_training_data_and_the_run_keeps_it(tmp_path):
    data = make_dataset(n_per_class=32, classes=3, size=12)
    run = sightline.fit(
        "airnet",
        data,
        runs_dir=tmp_path,
        progress="quiet",
        epochs=1,
        batch_size=32,
        model_options={"groups": 2, "width": 8},
    )
    fresh = create_model("airnet", (1, 12, 12), 3, groups=2, width=8)
    expected = create_model("airnet", (1, 12, 12), 3, groups=2, width=8)
    expected.init_from_data(data.preprocess.normalize(data.train.images))
    loaded = run.load_model()
    assert bool(loaded.whiten.initialized)
    assert not torch.equal(loaded.whiten.weight, fresh.whiten.weight)
    # The stem is the data's whitening, untouched by training (frozen: no gradient, no decay).
    assert torch.allclose(loaded.whiten.weight, expected.whiten.weight, atol=1e-6)
    assert run.evaluate().accuracy > 0.5  # the toy classes are separable


@pytest.mark.parametrize("airbench", [False, True])
def test_a_stopped_run_resumes_bit_exact_with_its_own_whitening(tmp_path, airbench):
    """The whitening comes from the checkpoint on resume (never recomputed), so a run stopped
    between steps ends with exactly the weights of an uninterrupted one; with ``airbench=True``
    too (its fast BatchNorm biases are a param group of their own, its norm scales stay 1)."""
    data = make_dataset(n_per_class=16, size=12)
    opts = dict(
        epochs=2,
        batch_size=8,
        runs_dir=tmp_path,
        progress="quiet",
        model_options={"groups": 2, "width": 8, "airbench": airbench},
    )
    full = sightline.fit("airnet", data, name="full", **opts)
    steps = iter(range(1000))
    stopped = sightline.fit(
        "airnet", data, name="stopped", should_stop=lambda: next(steps) == 7, **opts
    )
    assert stopped.status["status"] == "interrupted"
    resumed = sightline.resume(tmp_path / "stopped", data=data, progress="quiet")
    a, b = load_file(full.path / "last.safetensors"), load_file(resumed.path / "last.safetensors")
    assert "whiten.weight" in a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert bool(a["whiten.initialized"])
    assert full.evaluate().accuracy > 0.5  # the toy classes are separable
    if airbench:
        assert (
            torch.equal(a["group1.bn1.weight"], torch.ones(8))
            and a["group1.bn1.bias"].abs().max() > 0
        )
        loaded = full.load_model()
        assert isinstance(loaded.temperature, torch.nn.Module) and loaded.norm_bias_lr_scale == 64.0


def test_a_model_passed_to_fit_keeps_the_whitening_it_has(tmp_path):
    model = create_model("airnet", (1, 12, 12), 3, groups=2, width=8)
    model.init_from_data(torch.randn(64, 1, 12, 12) * 3)  # e.g. computed on other data by the user
    before = model.whiten.weight.clone()
    run = sightline.fit(
        model,
        make_dataset(n_per_class=8, size=12),
        runs_dir=tmp_path,
        progress="quiet",
        epochs=1,
        batch_size=8,
    )
    assert torch.equal(run.load_model().whiten.weight, before)


# ----------------------------------------------------------------------------- airbench=True
def test_airbench_parametrization_identity_convs_scale_free_norms_fast_biases_and_a_temperature():
    from sightline.train.optim import param_groups, set_lr

    model = create_model("airnet", (3, 16, 16), 4, widths=[8, 16, 16], airbench=True)
    plain = create_model("airnet", (3, 16, 16), 4, widths=[8, 16, 16])
    conv = (
        model.group2.conv1.weight
    )  # 8 -> 16 channels: its first 8 filters pass their channel through
    eye = torch.zeros_like(conv[:8])
    torch.nn.init.dirac_(eye)
    assert torch.equal(conv[:8], eye) and not torch.equal(plain.group2.conv1.weight[:8], eye)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.weight.requires_grad and m.bias.requires_grad for m in norms)
    assert model.whiten.eps < plain.whiten.eps
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    assert torch.allclose(
        model(x), model.classifier(model.flatten(model.pool(model[:-4](x)))) / 9, atol=1e-6
    )
    # The BatchNorm biases learn 64x faster, in a group of their own; nothing else changes.
    groups = param_groups(model, weight_decay=5e-4)
    fast = [g for g in groups if g["lr_scale"] == 64.0]
    assert len(fast) == 1 and {id(p) for p in fast[0]["params"]} == {id(m.bias) for m in norms}
    assert fast[0]["weight_decay"] == 0.0 and all(
        g["lr_scale"] == 1.0 for g in groups if g is not fast[0]
    )
    assert not any(g["lr_scale"] != 1.0 for g in param_groups(plain, weight_decay=5e-4))
    opt = torch.optim.SGD(groups, lr=0.1)
    set_lr(opt, 0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and fast[0]["lr"] == pytest.approx(6.4)


def test_airbench_takes_only_true_or_false():
    with pytest.raises(ModelError, match="airbench must be true or false, not 'maybe'"):
        create_model("airnet", (3, 16, 16), 4, widths=[8, 16, 16], airbench="maybe")
