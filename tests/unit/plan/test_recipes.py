"""Named recipes: what they hold is valid, the caller's options win, the run records the recipe."""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import subprocess
import sys

import pytest
from test_train import make_dataset

import sightline
from sightline.errors import ConfigError
from sightline.models import get_model_entry
from sightline.plan.config import resolve_config
from sightline.plan.recipes import (
    RECIPES,
    VARIANTS,
    apply_recipe,
    for_machine,
    get_recipe,
    list_recipes,
)

LOAD_OPTIONS = {"classes", "val_split", "calibration_split", "seed", "channels", "size", "resize"}


@pytest.mark.parametrize(
    "recipe",
    [*list_recipes(), *(v for r in list_recipes() for v in r.variants())],
    ids=lambda r: r.name + (f"/{r.variant}" if r.variant else ""),
)
def test_every_recipe_and_variant_is_valid(recipe):
    from sightline.data.registry import find_dataset_spec

    for r in list_recipes():  # a variant replaces only the network and its training
        for changes in (r.on_amx, r.on_avx2):
            assert set(changes) <= {"model", "model_options", "train_options", "measured"}, changes
    assert not (recipe.on_amx or recipe.on_avx2) or not recipe.variant  # a variant has no variants

    entry = get_model_entry(recipe.model)
    assert set(recipe.model_options) <= set(entry.options()), recipe.model_options
    assert set(recipe.data_options) <= LOAD_OPTIONS, recipe.data_options
    assert set(inspect.signature(sightline.load_dataset).parameters) >= LOAD_OPTIONS
    # No validation split: images kept aside instead, to calibrate the run and its threshold on.
    if not recipe.data_options.get("val_split"):
        assert 0 < recipe.data_options["calibration_split"] < 0.1, recipe.data_options
    cfg = resolve_config(
        entry.train_defaults, **recipe.train_options
    )  # raises on unknown or bad values
    for key, value in recipe.train_options.items():
        assert getattr(cfg, key) == value, key
    assert find_dataset_spec(recipe.dataset) is not None, recipe.dataset
    assert recipe.description and recipe.measured, (
        "a recipe says what it is for and what it measured"
    )


def test_unknown_recipe_names_the_choices():
    with pytest.raises(ConfigError, match="unknown recipe 'fastest'.*fashion-mnist-fast"):
        get_recipe("fastest")


def test_the_callers_options_win_and_the_recipe_is_recorded():
    r = get_recipe("fashion-mnist-fast")
    model, model_opts, data_opts, train = apply_recipe(
        r,
        None,
        {"width": 24},
        {"val_split": 0.1, "classes": None},
        {"epochs": 2, "lr": None, "seed": None},
    )
    assert model == r.model
    assert model_opts["width"] == 24
    assert data_opts == {**r.data_options, "val_split": 0.1}
    assert train["epochs"] == 2  # given
    assert train["lr"] == r.train_options["lr"]  # left unset (None): the recipe's
    assert train["seed"] is None  # neither: stays unset, the model's defaults decide
    assert train["extra"]["recipe"] == r.name


def test_a_recipe_with_another_model_is_an_error():
    with pytest.raises(ConfigError, match="trains fastcnn, not mlp"):
        apply_recipe(get_recipe("cifar3-fast"), "mlp", {}, {}, {})
    assert apply_recipe(get_recipe("cifar3-fast"), "fastcnn", {}, {}, {})[0] == "fastcnn"


def test_recipes_command_lists_them_without_torch():
    code = (
        "import contextlib, io, json, sys\n"
        "from sightline.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['recipes', '--json']) == 0\n"
        "print(out.getvalue())\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert [x["name"] for x in listed] == list(RECIPES)
    from sightline.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as text:
        assert main(["recipes"]) == 0
    assert "fashion-mnist-fast" in text.getvalue() and "measured:" in text.getvalue()


@pytest.mark.parametrize("amx", [False, True], ids=["cpu", "cpu-with-amx"])
def test_run_training_with_a_recipe_trains_its_model_and_records_it(tmp_path, monkeypatch, amx):
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: amx)
    monkeypatch.setattr(
        "sightline.devices.cpu_has_avx512", lambda: True
    )  # the recipe as written, without AMX
    events = []
    result = sightline.run_training(
        make_dataset(size=16),
        recipe="fashion-mnist-fast",
        epochs=1,
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
        on_event=events.append,
        device="cpu",
    )
    config = json.loads((result.run.path / "config.json").read_text())
    assert config["train"]["extra"]["recipe"] == "fashion-mnist-fast"
    assert config["train"]["epochs"] == 1 and config["train"]["batch_size"] == 128
    notes = [e["text"] for e in events if e["kind"] == "message" and e.get("topic") == "recipe"]
    if amx:  # its variant: airnet, which trains in bf16 there
        assert config["model"]["name"] == "airnet" and config["train"]["amp"] is True
        assert config["train"]["extra"]["recipe_variant"] == "cpu-amx"
        assert any(
            n.startswith("recipe fashion-mnist-fast (its variant for a CPU with AMX") for n in notes
        ), notes
    else:
        assert config["model"]["name"] == "fastcnn" and config["model"]["options"]["width"] == 16
        assert "recipe_variant" not in config["train"]["extra"]
        assert any(n.startswith("recipe fashion-mnist-fast:") for n in notes), notes


def test_a_recipes_amx_variant_is_chosen_only_for_bf16_on_a_cpu_with_amx(monkeypatch, on_a_cpu):
    base = get_recipe("fashion-mnist-fast")
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: True)
    monkeypatch.setattr("sightline.devices.cpu_has_avx512", lambda: True)  # every AMX CPU has it
    variant = for_machine(base)
    assert (variant.model, variant.variant, variant.train_options["epochs"]) == (
        "airnet",
        "cpu-amx",
        4,
    )
    assert (
        variant.name == base.name
        and variant.data_options == base.data_options
        and not variant.on_amx
    )
    assert for_machine(base, model="airnet") == variant
    assert (
        for_machine(base, model="fastcnn") == base
    )  # the recipe's own model: the recipe as written
    assert for_machine(base, amp=False) == base  # float32 asked for: airnet would be 3x slower
    assert for_machine(get_recipe("cifar3-fast")) == get_recipe("cifar3-fast")  # no variant
    with pytest.raises(ConfigError, match=r"trains fastcnn \(on a CPU with AMX: airnet\), not mlp"):
        apply_recipe(for_machine(base, model="mlp"), "mlp", {}, {}, {})
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: False)
    assert for_machine(base) == base and for_machine(base, device="cpu") == base
    assert apply_recipe(variant, None, {}, {}, {})[3]["extra"]["recipe_variant"] == "cpu-amx"


@pytest.mark.parametrize(
    "amx, avx512, amp, device, expected",
    [
        (False, False, None, None, "cpu-avx2"),  # AVX2: the shorter schedule
        (False, True, None, None, ""),  # AVX-512 without AMX: the recipe as written
        (True, True, None, None, "cpu-amx"),
        (True, True, False, None, ""),  # float32 asked for on an AMX CPU: its AVX-512 float32 rate
        (False, False, False, "cpu", "cpu-avx2"),
        (False, False, None, "cuda", ""),  # a GPU: the recipe as written
    ],
)
def test_each_recipe_trains_its_variant_for_this_cpu(
    monkeypatch, amx, avx512, amp, device, expected
):
    """fashion-mnist-long has an AMX variant (bf16, another schedule) and no AVX2 one (its time
    budget fits the epochs to the CPU); cifar3-tutorial-cnn has an AVX2 one (its target is a
    speed ratio against Keras, not minutes) and no AMX one."""
    import torch

    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: amx)
    monkeypatch.setattr("sightline.devices.cpu_has_avx512", lambda: avx512)
    monkeypatch.setattr(
        "sightline.devices.resolve_device",
        lambda spec="auto": torch.device("cuda" if spec == "cuda" else "cpu"),
    )
    for name, has in (
        ("fashion-mnist-long", "cpu-amx"),
        ("fashion-mnist-fast", "cpu-amx"),
        ("cifar3-tutorial-cnn", "cpu-avx2"),
    ):
        base = get_recipe(name)
        wanted = expected if expected == has else ""
        chosen = for_machine(base, None, device, amp)
        assert chosen.variant == wanted, name
        assert chosen == (base.with_variant(wanted) if wanted else base)
        assert (
            for_machine(base, chosen.model, device, amp) == chosen
        )  # its own model named: still the variant
        assert (
            for_machine(base, "mlp", device, amp) == base
        )  # another: the recipe, and apply_recipe's error
        if wanted:
            train = apply_recipe(chosen, None, {}, {}, {})[3]
            assert train["extra"]["recipe_variant"] == wanted
            assert (
                train["epochs"]
                == getattr(base, VARIANTS[wanted][0])["train_options"]["epochs"]
                != base.train_options["epochs"]
            )


def test_variants_are_described_and_listed(capsys):
    from sightline.cli import main
    from sightline.plan.recipes import VARIANTS

    long, tutorial = get_recipe("fashion-mnist-long"), get_recipe("cifar3-tutorial-cnn")
    assert [v.variant for v in long.variants()] == [
        "cpu-amx"
    ]  # AVX2: its time budget fits the epochs
    assert [v.variant for v in tutorial.variants()] == ["cpu-avx2"]
    assert (
        tutorial.with_variant("cpu-avx2").on_avx2 == {}
        and tutorial.with_variant("cpu-avx2").name == tutorial.name
    )
    assert get_recipe("cifar3-fast").variants() == []
    assert get_recipe("cifar3-fast").with_variant("cpu-avx2") == get_recipe("cifar3-fast")
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for key in VARIANTS:
        assert VARIANTS[key][1] + ", chosen there by itself" in out
    assert json.loads(json.dumps(tutorial.to_dict()))["on_avx2"]["train_options"]["epochs"] == 5
    assert json.loads(json.dumps(long.to_dict()))["on_amx"]["train_options"]["epochs"] == 15


def test_plain_cifar10_on_a_cuda_gpu_trains_the_airbench_recipe(monkeypatch):
    import torch

    from sightline.plan.recipes import gpu_default_recipe

    seen = []

    def fake_resolve(spec="auto"):
        seen.append(spec)
        return torch.device("cuda" if spec in ("auto", "cuda", "cuda:1") else "cpu")

    monkeypatch.setattr("sightline.devices.resolve_device", fake_resolve)
    assert gpu_default_recipe("cifar10", None, {}, {}, None) == "cifar10-airbench"
    assert (
        gpu_default_recipe("cifar10", None, {}, {"val_split": 0.1}, "cuda:1") == "cifar10-airbench"
    )
    assert seen == ["auto", "cuda:1"]
    # anything the caller chose about the network or the classes: the plain defaults
    assert gpu_default_recipe("cifar10", "fastcnn", {}, {}, None) is None
    assert gpu_default_recipe("cifar10", None, {"width": 32}, {}, None) is None
    assert (
        gpu_default_recipe("cifar10", None, {}, {"classes": "airplane,automobile,bird"}, None)
        is None
    )
    assert gpu_default_recipe("fashion-mnist", None, {}, {}, None) is None
    assert gpu_default_recipe(make_dataset(size=4), None, {}, {}, None) is None
    assert (
        gpu_default_recipe("cifar10", None, {}, {}, "cpu") is None
    )  # on a CPU it would take 9-70 minutes


def test_run_training_applies_the_gpu_default_recipe_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: False)
    asked = []
    monkeypatch.setattr(
        "sightline.plan.recipes.gpu_default_recipe",
        lambda *a: asked.append(a) or "fashion-mnist-fast",
    )
    events = []
    data = make_dataset(size=16)
    result = sightline.run_training(
        data,
        epochs=1,
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
        on_event=events.append,
        device="cpu",
    )
    config = json.loads((result.run.path / "config.json").read_text())
    assert (
        config["train"]["extra"]["recipe"] == "fashion-mnist-fast"
        and config["model"]["name"] == "fastcnn"
    )
    assert config["train"]["epochs"] == 1  # the caller's options still win
    assert asked == [(data, None, {}, {}, "cpu")]
    notes = [e["text"] for e in events if e["kind"] == "message" and e.get("topic") == "recipe"]
    assert any(n.startswith("GPU: training") and "recipe fashion-mnist-fast" in n for n in notes), (
        notes
    )
    # a named recipe is never replaced
    asked.clear()
    sightline.run_training(
        data,
        recipe="fashion-mnist-mlp",
        epochs=1,
        runs_dir=tmp_path,
        report=False,
        progress="quiet",
        device="cpu",
        evaluate=False,
    )
    assert asked == []


# ----------------------------------------------------------------------------- device defaults
def test_gpu_gets_large_batches_and_a_scaled_lr_unless_the_caller_chose():
    from sightline.plan.config import TrainConfig
    from sightline.plan.device import GPU_BATCH, GPU_EPOCH_FACTOR, adapt_to_device

    cfg = TrainConfig(batch_size=64, lr=0.2, epochs=4)
    gpu, notes = adapt_to_device(cfg, "cuda", set(), 60_000, 28 * 28)
    assert gpu.batch_size == GPU_BATCH and gpu.lr == pytest.approx(0.2 * (GPU_BATCH / 64) ** 0.5)
    assert (
        gpu.epochs == 4 * GPU_EPOCH_FACTOR
    )  # fewer steps per epoch: more epochs (one costs ~1 s there)
    assert (
        gpu.extra["device_defaults"]["batch_size"] == [64, GPU_BATCH]
        and "GPU: batch 512" in notes[0]
    )
    assert adapt_to_device(cfg, "cpu", set(), 60_000, 784) == (
        cfg,
        [],
    )  # the CPU keeps what was tuned on it
    assert adapt_to_device(cfg, "cuda", {"batch_size"}, 60_000, 784) == (
        cfg,
        [],
    )  # the caller's batch stays
    kept, _ = adapt_to_device(cfg, "cuda", {"lr", "epochs"}, 60_000, 784)
    assert (kept.batch_size, kept.lr, kept.epochs) == (GPU_BATCH, 0.2, 4)
    assert adapt_to_device(cfg, "cuda", set(), 2_000, 784) == (
        cfg,
        [],
    )  # small data needs the steps
    assert adapt_to_device(cfg, "cuda", set(), 60_000, 224 * 224) == (
        cfg,
        [],
    )  # 512 photos may not fit
    frozen = TrainConfig(batch_size=32, freeze=True)
    assert adapt_to_device(frozen, "cuda", set(), 60_000, 784) == (frozen, [])


def test_cpu_trains_a_convnet_in_bf16_only_where_that_is_faster():
    from sightline.plan.config import TrainConfig
    from sightline.plan.device import adapt_to_device

    cfg = TrainConfig(batch_size=128, lr=0.3, epochs=4)
    bf16, notes = adapt_to_device(cfg, "cpu", set(), 60_000, 784, fast_bf16=True)
    assert bf16.amp is True and (bf16.batch_size, bf16.lr, bf16.epochs) == (128, 0.3, 4)
    assert (
        bf16.extra["device_defaults"]["amp"] == [None, True]
        and "AMX" in notes[0]
        and "--no-amp" in notes[0]
    )
    assert adapt_to_device(cfg, "cpu", set(), 60_000, 784) == (
        cfg,
        [],
    )  # no AMX (or an MLP): float32
    no_amp = TrainConfig(amp=False)
    assert adapt_to_device(no_amp, "cpu", {"amp"}, 60_000, 784, fast_bf16=True) == (
        no_amp,
        [],
    )  # --no-amp wins
    frozen = TrainConfig(
        batch_size=32, freeze=True
    )  # a head on cached features: no convolutions to speed up
    assert adapt_to_device(frozen, "cpu", set(), 60_000, 784, fast_bf16=True) == (frozen, [])
    gpu, _ = adapt_to_device(cfg, "cuda", set(), 60_000, 784, fast_bf16=True)
    assert gpu.amp is None  # CUDA has its own mixed-precision default


def test_autocast_follows_the_resolved_amp_setting(monkeypatch):
    import torch

    from sightline import devices
    from sightline.models import hardware

    assert isinstance(devices.cpu_has_amx(), bool)  # this machine's answer, whatever it is
    cpu = torch.device("cpu")
    assert devices.autocast_dtype(cpu, None) is None and devices.autocast_dtype(cpu, False) is None
    assert devices.autocast_dtype(cpu, True) is torch.bfloat16
    assert devices.autocast_dtype(torch.device("mps"), True) is None
    convnet = sightline.create_model("fastcnn", (1, 12, 12), 3, width=8)
    mlp = sightline.create_model("mlp", (1, 12, 12), 3, hidden=8)
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: True)
    assert hardware.cpu_bf16_is_fast(convnet) and not hardware.cpu_bf16_is_fast(mlp)
    monkeypatch.setattr(devices, "cpu_has_amx", lambda: False)
    assert not hardware.cpu_bf16_is_fast(convnet)
    monkeypatch.undo()
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: 1 / 0, raising=False)
    assert (
        devices.cpu_has_amx() is False
    )  # a probe that fails (a PyTorch that moved it): float32, no crash


@pytest.mark.parametrize("amx", [True, False])
def test_fit_records_bf16_on_an_amx_cpu_and_the_run_learns(tmp_path, monkeypatch, amx):
    monkeypatch.setattr("sightline.models.hardware.cpu_bf16_is_fast", lambda model: amx)
    events: list[dict] = []
    model = sightline.create_model("fastcnn", (1, 12, 12), 3, width=8)
    run = sightline.fit(
        model,
        make_dataset(),
        runs_dir=tmp_path,
        epochs=4,
        batch_size=32,
        lr=0.05,
        progress="quiet",
        device="cpu",
        on_event=events.append,
    )
    config = json.loads((run.path / "config.json").read_text())["train"]
    assert config["amp"] is (True if amx else None)
    notes = [e["text"] for e in events if e["kind"] == "message" and e.get("topic") == "device"]
    assert any("bf16" in n for n in notes) is amx
    assert (
        run.evaluate().accuracy > 0.9
    )  # bf16 steps (on any CPU: slower without AMX, same result) still learn


def test_a_recipes_own_values_still_adapt_to_the_gpu_but_the_callers_do_not():
    _, _, _, train = apply_recipe(
        get_recipe("fashion-mnist-fast"), None, {}, {}, {"epochs": 3, "lr": None}
    )
    assert train["extra"]["given"] == [
        "epochs"
    ]  # batch_size 128 is the recipe's: a GPU may raise it


def test_a_simulated_cpu_is_a_cpu_on_a_gpu_machine_too(monkeypatch, request):
    """The recipe tests simulate a CPU's features (AMX, AVX-512) through `on_a_cpu`: on a
    machine with a GPU, "auto" must still be that CPU (issue 51: the AMX test failed on an
    H200, where "auto" found CUDA)."""
    import torch

    from sightline.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine
    assert resolve_device("auto").type == "cuda"
    request.getfixturevalue("on_a_cpu")
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: True)
    monkeypatch.setattr("sightline.devices.cpu_has_avx512", lambda: True)
    assert for_machine(get_recipe("fashion-mnist-fast")).variant == "cpu-amx"
