"""Epochs chosen to fit a time budget (sightline/train/time_budget.py), on small generated data."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import load_file
from test_train import fit_toy, make_dataset, toy  # noqa: F401 (toy is a fixture)

import sightline
from sightline.cli import build_parser
from sightline.errors import ConfigError
from sightline.plan.config import TrainConfig, resolve_config
from sightline.plan.recipes import apply_recipe, get_recipe
from sightline.train import time_budget


def with_step_time(monkeypatch, seconds: float) -> list[int]:
    """Make every probe report ``seconds`` a step; returns a list that counts the probes."""
    calls: list[int] = []

    def fake(model, data, cfg):
        calls.append(1)
        return seconds

    monkeypatch.setattr(time_budget, "measure_step_seconds", fake)
    return calls


def mlp(data):
    torch.manual_seed(0)
    return sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=16)


# ----------------------------------------------------------------------------- the choice
def test_as_many_epochs_as_fit_at_most_the_configured_ones(toy, monkeypatch):  # noqa: F811
    with_step_time(
        monkeypatch, 0.5
    )  # toy: 192 training images, batch 32 = 6 steps = 3 s an epoch (+ validation)
    cfg = resolve_config(epochs=10, batch_size=32, time_budget=10.0, flip=False)
    chosen, notes = time_budget.epochs_for_budget(mlp(toy), toy, cfg)
    per_epoch = time_budget.epoch_seconds(0.5, toy, cfg, flip_tta=False)
    assert 3.0 < per_epoch < 3.5  # 6 steps and a validation forward pass of 48 images
    assert chosen.epochs == 3 == int(10.0 // per_epoch)
    assert chosen.extra["time_budget"] == {
        "seconds": 10.0,
        "step_s": 0.5,
        "epoch_s": round(per_epoch, 2),
        "max_epochs": 10,
        "epochs": 3,
    }
    assert (
        "3 of at most 10 fit" in notes[0] and "--epochs N fixes the number" in notes[0]
    )  # a recipe's budget
    _, notes = time_budget.epochs_for_budget(mlp(toy), toy, cfg, budget_given=True)
    assert (
        "--epochs N sets the most it trains" in notes[0] and "fixes" not in notes[0]
    )  # the user's own
    roomy, notes = time_budget.epochs_for_budget(
        mlp(toy), toy, resolve_config(epochs=4, batch_size=32, time_budget=1e4)
    )
    assert roomy.epochs == 4 and "all 4 fit" in notes[0]


def test_a_budget_too_short_for_one_epoch_still_trains_one(toy, monkeypatch):  # noqa: F811
    with_step_time(monkeypatch, 10.0)
    chosen, notes = time_budget.epochs_for_budget(
        mlp(toy), toy, resolve_config(epochs=5, time_budget=1.0)
    )
    assert chosen.epochs == 1 and "fewer than 1 fit; trains 1 anyway" in notes[0]
    one, notes = time_budget.epochs_for_budget(
        mlp(toy), toy, resolve_config(epochs=1, time_budget=1.0)
    )
    assert one.epochs == 1 and "fewer than 1 fit; trains 1 anyway" in notes[0]
    # fine-tuning needs an epoch after the head's own
    tuned, notes = time_budget.epochs_for_budget(
        mlp(toy), toy, resolve_config(epochs=5, head_epochs=2, time_budget=1.0)
    )
    assert tuned.epochs == 3 and "fewer than 1 fit; trains 3 anyway" in notes[0]
    one_fits, notes = time_budget.epochs_for_budget(
        mlp(toy), toy, resolve_config(epochs=5, head_epochs=2, time_budget=15)
    )
    assert (
        one_fits.epochs == 3 and "only 1 fit; trains 3 anyway" in notes[0]
    )  # ~11 s an epoch (one step)


def test_validation_with_flip_tta_counts_twice():
    data = make_dataset(n_per_class=64)
    cfg = resolve_config(batch_size=64, time_budget=60.0)
    plain, flipped = (time_budget.epoch_seconds(0.3, data, cfg, flip_tta=f) for f in (False, True))
    steps = 3 * 0.3  # 192 images at batch 64
    assert flipped - steps == pytest.approx(2 * (plain - steps)) and plain > steps


def test_who_set_the_epochs_decides_whether_the_budget_applies():
    recipe_budget = resolve_config(epochs=6, time_budget=300.0)
    assert time_budget.wants_budget(
        recipe_budget, given=set()
    )  # a recipe's budget, the recipe's epochs
    assert not time_budget.wants_budget(
        recipe_budget, given={"epochs"}
    )  # the user's --epochs wins over a recipe's budget
    assert time_budget.wants_budget(
        recipe_budget, given={"epochs", "time_budget"}
    )  # both the user's: a cap and a budget
    assert not time_budget.wants_budget(resolve_config(epochs=6), given=set())
    assert not time_budget.wants_budget(
        resolve_config(freeze=True, time_budget=5.0), given={"time_budget"}
    )


@pytest.mark.parametrize("bad", [0, -3.0, float("nan"), float("inf"), "60", True])
def test_a_budget_is_a_positive_number_of_seconds(bad):
    with pytest.raises(
        ConfigError,
        match="time_budget must be (more than 0 and at most 2,592,000 seconds|a finite number)",
    ):
        TrainConfig(time_budget=bad)
    assert TrainConfig(time_budget=90).time_budget == 90


def test_the_cli_takes_seconds():
    parser = build_parser()
    assert parser.parse_args(["train", "--time-budget", "300"]).time_budget == 300.0
    assert parser.parse_args(["train"]).time_budget is None
    for bad in ("0", "-5", "soon", "nan"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--time-budget", bad])


def test_the_fashion_and_cifar3_recipes_carry_their_budgets_in_every_variant():
    for name in ("fashion-mnist-fast", "fashion-mnist-long", "cifar3-fast"):
        for recipe in [get_recipe(name), *get_recipe(name).variants()]:
            assert recipe.train_options["time_budget"] > 0, (name, recipe.variant)
    _, _, _, train = apply_recipe(get_recipe("fashion-mnist-long"), None, {}, {}, {"epochs": 3})
    assert train["time_budget"] == 300 and train["extra"]["given"] == [
        "epochs"
    ]  # so the budget stands aside


# ----------------------------------------------------------------------------- the probe
@pytest.fixture
def short_probe(monkeypatch):
    monkeypatch.setattr(time_budget, "TIMED_SECONDS", 0.2)


def test_the_probe_times_real_steps_without_touching_the_model_or_the_random_state(
    toy,  # noqa: F811
    short_probe,
):
    model = mlp(toy)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    seconds = time_budget.measure_step_seconds(
        model, toy, resolve_config(epochs=2, batch_size=32, device="cpu")
    )
    assert 0 < seconds < 5
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert torch.equal(torch.rand(3), expected_next)


def test_the_probe_times_its_steps_for_long_enough(toy, monkeypatch, short_probe):  # noqa: F811
    """At least TIMED_STEPS steps after the warm-up, and for at least TIMED_SECONDS: a step of
    0.15 s is timed 3 times (a large model's step takes seconds); one of 0.001 s more often, until
    TIMED_SECONDS have passed."""
    from sightline.train.loop import Trainer

    real = Trainer.train_step
    for pause, least in ((0.15, time_budget.TIMED_STEPS), (0.001, time_budget.TIMED_STEPS + 1)):
        steps = []

        def slow_step(self, x, y, pause=pause, steps=steps):
            steps.append(1)
            time.sleep(pause)
            return real(self, x, y)

        monkeypatch.setattr(Trainer, "train_step", slow_step)
        seconds = time_budget.measure_step_seconds(
            mlp(toy), toy, resolve_config(epochs=2, batch_size=32, device="cpu")
        )
        timed = len(steps) - time_budget.WARMUP_STEPS
        assert timed >= least and seconds >= pause
        assert timed * seconds >= time_budget.TIMED_SECONDS


def test_a_run_with_a_budget_trains_what_fits_and_says_so(toy, tmp_path, monkeypatch):  # noqa: F811
    calls = with_step_time(monkeypatch, 1.0)  # 6 steps an epoch: ~6.3 s
    events = []
    run = fit_toy(toy, tmp_path, epochs=5, time_budget=14.0, on_event=events.append)
    assert calls and run.config["train"]["epochs"] == 2
    assert run.config["train"]["extra"]["time_budget"]["max_epochs"] == 5
    assert json.loads((run.path / "status.json").read_text())["epochs_done"] == 2
    texts = [e.get("text", "") for e in events]
    assert any(
        "time budget 14 s of training: 2 of at most 5 fit" in t and "sets the most" in t
        for t in texts
    )
    # the user's --epochs with a recipe-like budget (not given by the user) trains those epochs, unprobed
    calls.clear()
    fixed = fit_toy(
        toy, tmp_path, name="fixed", epochs=3, extra={"given": ["epochs"]}, time_budget=14.0
    )
    assert not calls and fixed.config["train"]["epochs"] == 3


def test_the_probe_leaves_the_run_as_it_would_be_without_it(toy, tmp_path, short_probe):  # noqa: F811
    """Same seed, same epochs: the same weights whether or not a budget was timed first."""
    plain = fit_toy(toy, tmp_path, name="plain", epochs=2)
    budgeted = fit_toy(toy, tmp_path, name="budgeted", epochs=2, time_budget=1e6)
    assert (
        budgeted.config["train"]["epochs"] == 2
        and "time_budget" in budgeted.config["train"]["extra"]
    )
    a, b = (load_file(str(r.path / "last.safetensors")) for r in (plain, budgeted))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
