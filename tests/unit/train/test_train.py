"""Training on small generated data: config, schedules, fit, checkpoints, early stopping, resume."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

import sightline
from sightline.data.dataset import Dataset, ImageSet, channel_stats
from sightline.data.preprocess import Preprocess
from sightline.errors import ConfigError, RunError
from sightline.plan.config import DEFAULTS, resolve_config
from sightline.train.optim import lr_factor


def make_dataset(n_per_class: int = 64, classes: int = 3, size: int = 12, seed: int = 0) -> Dataset:
    """Class c = a bright square in quadrant c, plus noise: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> ImageSet:
        labels = torch.arange(classes).repeat_interleave(n)
        images = torch.randint(0, 60, (len(labels), 1, size, size), generator=g, dtype=torch.uint8)
        half = size // 2
        for c in range(classes):
            r, q = divmod(c, 2)
            images[labels == c, :, r * half : (r + 1) * half, q * half : (q + 1) * half] += 180
        return ImageSet(images, labels)

    train, val, test = split(n_per_class), split(n_per_class // 4), split(n_per_class // 4)
    mean, std = channel_stats(train.images)
    pre = Preprocess(channels=1, size=(size, size), mean=mean, std=std, dark_background=True)
    names = [f"class{i}" for i in range(classes)]
    return Dataset("toy", names, train, val, test, pre, flip=False)


@pytest.fixture
def toy() -> Dataset:
    return make_dataset()


def fit_toy(data, tmp_path, name="run", **kw):
    torch.manual_seed(0)
    model = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=32)
    opts = dict(epochs=3, batch_size=32, optimizer="adam", lr=3e-3, progress="quiet")
    opts.update(kw)
    return sightline.fit(model, data, name=name, runs_dir=tmp_path, **opts)


def test_config_layers_user_over_model_over_defaults():
    cfg = resolve_config({"lr": 0.5, "optimizer": "sgd"}, lr=0.01, epochs=None)
    assert cfg.lr == 0.01 and cfg.optimizer == "sgd" and cfg.epochs == DEFAULTS["epochs"]


@pytest.mark.parametrize(
    "bad",
    [
        {"epochs": 0},
        {"optimizer": "rmsprop"},
        {"schedule": "step"},
        {"lr": -1.0},
        {"warmup": 1.5},
        {"patience": 0},
        {"monitor": "f1"},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        resolve_config(None, **bad)


def test_config_rejects_unknown_option():
    with pytest.raises(ConfigError, match="unknown training option"):
        resolve_config(None, learning_rate=0.1)


def test_schedules_shape():
    total = 100
    assert lr_factor("constant", 50, total, 0.0) == 1.0
    one = [lr_factor("onecycle", s, total, 0.2) for s in range(total)]
    assert one[0] == pytest.approx(0.1 + 0.9 / 20) and max(one) == pytest.approx(1.0)
    assert one.index(max(one)) == 19 and one[-1] < 0.05
    cos = [lr_factor("cosine", s, total, 0.0) for s in range(total)]
    assert cos[0] == pytest.approx(1.0) and all(a >= b for a, b in zip(cos, cos[1:], strict=False))
    lin = [lr_factor("linear", s, total, 0.1) for s in range(total)]
    assert lin[0] == pytest.approx(0.1) and lin[-1] < 0.02


def test_fit_learns_and_writes_run_folder(toy, tmp_path):
    run = fit_toy(toy, tmp_path)
    for f in (
        "config.json",
        "metrics.csv",
        "status.json",
        "best.safetensors",
        "last.safetensors",
        "resume.pt",
    ):
        assert (run.path / f).is_file(), f
    hist = run.history
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert hist[-1]["val_accuracy"] > 0.9
    assert run.status["status"] == "finished"
    metrics = run.evaluate()
    assert metrics.accuracy > 0.9
    assert json.loads((run.path / "evaluations" / "test.json").read_text())[
        "accuracy"
    ] == pytest.approx(metrics.accuracy)


def test_load_run_restores_model_and_preprocessing(toy, tmp_path):
    run = fit_toy(toy, tmp_path, epochs=1)
    again = sightline.load_run(run.path)
    assert again.classes == toy.classes
    assert again.preprocess == toy.preprocess
    probs = again.predict(toy.test.images[:5])
    assert probs.shape == (5, 3) and torch.allclose(probs.sum(1), torch.ones(5), atol=1e-5)


def test_model_file_is_self_contained_safetensors(toy, tmp_path):
    run = fit_toy(toy, tmp_path, epochs=1)
    tensors = load_file(run.path / "best.safetensors")
    assert any(k.endswith("weight") for k in tensors)
    model, meta = sightline.run.checkpoint.load_model(run.path / "best.safetensors")
    assert meta["model"]["name"] == "mlp" and meta["classes"] == toy.classes
    assert meta["preprocess"]["dark_background"] is True


def test_corrupt_model_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(RunError, match="model.safetensors"):
        sightline.run.checkpoint.load_model(bad)


def test_early_stopping_stops(toy, tmp_path):
    # lr 0 never improves after epoch 1, so patience 2 stops at epoch 3 of 20.
    run = fit_toy(
        toy,
        tmp_path,
        epochs=20,
        lr=1e-12,
        patience=2,
        monitor="val_loss",
        schedule="constant",
        warmup=0.0,
    )
    assert run.status["status"] == "early_stopped"
    assert len(run.history) == 3


def test_best_checkpoint_tracks_monitor(toy, tmp_path):
    run = fit_toy(toy, tmp_path, epochs=4)
    best = max(run.history, key=lambda r: r["val_accuracy"])
    meta = run.metadata("best")
    assert meta["epoch"] == min(
        r["epoch"] for r in run.history if r["val_accuracy"] == best["val_accuracy"]
    )


def test_seeded_runs_are_identical(toy, tmp_path):
    a = fit_toy(toy, tmp_path, name="a", translate=1, flip=True)
    b = fit_toy(toy, tmp_path, name="b", translate=1, flip=True)
    assert a.history[-1]["loss"] == b.history[-1]["loss"]
    ta, tb = load_file(a.path / "last.safetensors"), load_file(b.path / "last.safetensors")
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


class CrashAt:
    """Simulates a crash (like kill -9: nothing saved at the crash) at a given global step."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.count = 0

    def on_step(self, s):
        self.count += 1
        if s["epoch"] * 1000 + s["step"] >= self.step:
            raise SystemExit("simulated crash")


@pytest.mark.parametrize("checkpoint_every", [0, 3])
def test_resume_after_crash_is_bit_exact(toy, tmp_path, checkpoint_every):
    opts = dict(epochs=3, translate=1, flip=True, checkpoint_every=checkpoint_every)
    full = fit_toy(toy, tmp_path, name="full", **opts)
    with pytest.raises(SystemExit):
        fit_toy(
            toy, tmp_path, name="crashed", callbacks=[CrashAt(2000 + 5)], **opts
        )  # epoch 2, step 5
    crashed = sightline.load_run(tmp_path / "crashed")
    resumed = sightline.resume(crashed, data=toy, progress="quiet")
    assert resumed.status["status"] == "finished"
    a, b = load_file(full.path / "last.safetensors"), load_file(resumed.path / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = [
        {k: v for k, v in r.items() if k not in ("time", "images_per_sec")} for r in full.history
    ]
    assert strip == [
        {k: v for k, v in r.items() if k not in ("time", "images_per_sec")} for r in resumed.history
    ]


class CtrlCAt:
    """A real Ctrl-C at a given global step: SIGINT to this process, caught by fit's handler,
    which finishes the step, saves and stops (status "interrupted")."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, s):
        if s["epoch"] * 1000 + s["step"] == self.step:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.parametrize("stop", ["crash", "ctrl-c"])
def test_resume_with_dropout_is_bit_exact(tmp_path, stop):
    """tutorial-cnn draws new Dropout masks every step: resuming must restore the RNG exactly.
    6 steps an epoch, max 11: a crash at step 10 resumes from the mid-epoch checkpoint at 9."""
    data = make_dataset(n_per_class=16, size=24)  # tutorial-cnn needs at least 22x22
    opts = dict(
        epochs=2,
        batch_size=8,
        max_steps=11,
        checkpoint_every=3,
        runs_dir=tmp_path,
        progress="quiet",
    )
    model = sightline.create_model("tutorial-cnn", data.input_shape, data.num_classes)
    assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
    full = sightline.fit("tutorial-cnn", data, name="full", **opts)
    assert full.status["status"] == "max_steps" and full.status["global_step"] == 11
    if stop == "crash":
        with pytest.raises(SystemExit):
            sightline.fit(
                "tutorial-cnn", data, name="stopped", callbacks=[CrashAt(2000 + 4)], **opts
            )
    else:
        run = sightline.fit(
            "tutorial-cnn", data, name="stopped", callbacks=[CtrlCAt(2000 + 2)], **opts
        )
        assert run.status["status"] == "interrupted" and run.status["global_step"] == 8
    resumed = sightline.resume(tmp_path / "stopped", data=data, progress="quiet")
    assert resumed.status["status"] == "max_steps" and resumed.status["global_step"] == 11
    a, b = load_file(full.path / "last.safetensors"), load_file(resumed.path / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = [
        {k: v for k, v in r.items() if k not in ("time", "images_per_sec")} for r in full.history
    ]
    assert strip == [
        {k: v for k, v in r.items() if k not in ("time", "images_per_sec")} for r in resumed.history
    ]


def test_resume_finished_run_is_refused(toy, tmp_path):
    run = fit_toy(toy, tmp_path, epochs=1)
    with pytest.raises(RunError, match="already ended"):
        sightline.resume(run, data=toy, progress="quiet")


def test_max_steps_stops_mid_epoch(toy, tmp_path):
    run = fit_toy(toy, tmp_path, epochs=5, max_steps=4)
    assert run.status["status"] == "max_steps" and run.status["global_step"] == 4


def test_fit_rejects_mismatched_model(toy, tmp_path):
    model = sightline.create_model("mlp", (1, 8, 8), 3)
    with pytest.raises(ConfigError, match="built for input"):
        sightline.fit(model, toy, runs_dir=tmp_path, progress="quiet")


def test_json_progress_emits_events(toy, tmp_path, capsys):
    fit_toy(toy, tmp_path, epochs=2, progress="json")
    events = [json.loads(line)["kind"] for line in capsys.readouterr().out.splitlines()]
    assert events[0] == "train_begin" and events.count("epoch") == 2 and events[-1] == "train_end"


def test_flip_trained_model_predicts_with_flip_tta(toy, tmp_path):
    from sightline.infer.batched import batched_logits

    run = fit_toy(toy, tmp_path, epochs=1, flip=True)
    pre = run.preprocess
    assert (
        pre.flip_tta is True
        and fit_toy(toy, tmp_path, name="noflip", epochs=1).preprocess.flip_tta is False
    )
    model, x = run.load_model(), toy.test.images[:8]
    plain = batched_logits(model, x, replace(pre, flip_tta=False))
    mirrored = batched_logits(model, x.flip(-1), replace(pre, flip_tta=False))
    assert torch.allclose(batched_logits(model, x, pre), (plain + mirrored) / 2, atol=1e-5)


def test_shift_tta_is_saved_with_the_model_and_predicts_over_the_shifted_images(toy, tmp_path):
    from sightline.infer.batched import batched_logits

    run = fit_toy(toy, tmp_path, epochs=1, translate=1, shift_tta=1)
    pre = run.preprocess
    assert (
        pre.shift_tta == 1
        and json.loads((run.path / "config.json").read_text())["train"]["shift_tta"] == 1
    )
    model, x = run.load_model(), toy.test.images[:8]
    plain = replace(pre, shift_tta=0)
    views = [
        x,
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[..., :12, :12],
        torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")[..., 2:, 2:],
    ]
    want = sum(batched_logits(model, v, plain) for v in views) / 3
    assert torch.allclose(batched_logits(model, x, pre), want, atol=1e-5)
    assert torch.allclose(
        run.predict(x), want.softmax(1), atol=1e-5
    )  # what predict, evaluate and serve use
    with pytest.raises(
        ConfigError, match="shift_tta must be from 0 to 5 pixels, not 6 for 12x12 images"
    ):
        fit_toy(toy, tmp_path, name="too-far", epochs=1, shift_tta=6)
    # Its folder existed already: it says why training never started (not "not started" forever).
    never = sightline.load_run(tmp_path / "too-far")
    assert never.status["status"] == "failed" and "not 6 for 12x12 images" in never.status["error"]
    with pytest.raises(ConfigError, match="shift_tta"):
        fit_toy(toy, tmp_path, name="negative", epochs=1, shift_tta=-1)


@pytest.mark.parametrize(
    "fit, given, expected",
    [
        ("object", None, 0.5),
        ("digit", None, 0.5),
        ("frame", None, 0.0),
        ("object", 0.0, 0.0),
        ("frame", 0.25, 0.25),
    ],
)
def test_reframe_resolved_from_the_data_and_saved(tmp_path, fit, given, expected):
    from dataclasses import replace

    data = make_dataset()
    data.preprocess = replace(data.preprocess, fit=fit)
    model = sightline.create_model("fastcnn", data.input_shape, data.num_classes, width=4, stages=2)
    run = sightline.fit(
        model, data, runs_dir=tmp_path, progress="quiet", epochs=1, max_steps=2, reframe=given
    )
    assert run.config["train"]["reframe"] == expected


def test_runs_from_before_reframing_resume_without_it():
    from sightline.plan.config import TrainConfig

    old = TrainConfig().to_dict()
    del old["reframe"]
    assert TrainConfig.from_dict(old).reframe == 0.0


def test_the_trainer_trains_the_final_plan_as_it_is(tmp_path):
    """The plan is final before the trainer starts (issue 52): given a settled config and the
    run's preprocessing, the trainer keeps both as they are; the rule that settles them is
    plan/resolve.py's, the one fit's plan went through."""
    from sightline.plan.resolve import run_preprocess, settle
    from sightline.train.loop import Trainer

    data = make_dataset()
    cfg = settle(resolve_config(epochs=1, flip=True, device="cpu"), data)
    assert cfg.reframe is not None
    pre = run_preprocess(cfg, data)
    assert pre.flip_tta and not data.preprocess.flip_tta
    model = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=8)
    trainer = Trainer(model, data, cfg, tmp_path / "run", [], preprocess=pre)
    assert trainer.cfg is cfg and trainer.preprocess is pre
    with pytest.raises(ConfigError, match="for 12x12 images"):
        run_preprocess(replace(cfg, shift_tta=20), data)
    run = fit_toy(data, tmp_path, name="fit", epochs=1, flip=True)
    saved = json.loads((run.path / "config.json").read_text())["train"]
    assert saved["reframe"] is not None and run.preprocess.flip_tta
