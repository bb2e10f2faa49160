"""Training as a job: events, the run folder before training blocks, cooperative stop, failed
and diverged runs recorded, the schedule under max_steps, the caller's RNG left alone, the
train → evaluate → report pipeline, and prediction on uploaded bytes."""

from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image
from test_train import fit_toy, make_dataset

import sightline
from sightline.cli import main
from sightline.errors import ImageError
from sightline.train.callbacks import TrainingDiverged
from sightline.train.optim import lr_factor


@pytest.fixture
def toy():
    return make_dataset()


def test_events_are_dicts_and_the_run_folder_comes_before_training(toy, tmp_path):
    events: list[dict] = []

    def on_event(e):
        if e["kind"] == "run":
            assert (tmp_path / "ev" / "config.json").is_file()  # exists before training blocks
        events.append(e)

    fit_toy(toy, tmp_path, name="ev", epochs=2, on_event=on_event)
    kinds = [e["kind"] for e in events]
    # As run_training's: the data and the model, then the run folder before training blocks;
    # after training, the temperature fitted on the validation split.
    assert kinds[:3] == ["data", "model", "run"] and kinds[-2:] == ["train_end", "calibration"]
    cal = events[-1]
    assert cal["fitted_on"] == "val" and cal["method"] and 0 <= cal["ece_after"] <= 1
    assert kinds[kinds.index("run") + 1 :].index("train_begin") == 0
    assert kinds.count("epoch") == 2 and "step" in kinds
    step = next(e for e in events if e["kind"] == "step")
    assert {
        "epoch",
        "step",
        "steps",
        "loss",
        "accuracy",
        "images_per_sec",
        "eta_seconds",
        "global_step",
    } <= set(step)
    json.dumps(events)  # plain data, ready to send to a browser


def test_should_stop_stops_between_steps_and_the_run_resumes(toy, tmp_path):
    calls = {"n": 0}

    def stop_after_5():
        calls["n"] += 1
        return calls["n"] > 5

    run = fit_toy(toy, tmp_path, name="stopped", epochs=2, should_stop=stop_after_5)
    assert run.status["status"] == "interrupted" and run.status["global_step"] == 5
    resumed = sightline.resume(run.path, data=toy, progress="quiet")
    full = fit_toy(toy, tmp_path, name="full", epochs=2)
    a, b = resumed.load_model("last").state_dict(), full.load_model("last").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_crash_is_recorded_as_failed(toy, tmp_path):
    class Boom:
        def on_epoch_end(self, row):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        fit_toy(toy, tmp_path, name="crash", callbacks=[Boom()])
    st = json.loads((tmp_path / "crash" / "status.json").read_text())
    assert st["status"] == "failed" and "disk on fire" in st["error"]
    (row,) = [r.to_dict() for r in sightline.list_runs(tmp_path)]
    assert row["status"] == "failed" and "disk on fire" in row["error"]


def test_non_finite_loss_stops_with_a_clear_message(toy, tmp_path, monkeypatch):
    import torch.nn.functional as F

    real, calls = F.cross_entropy, [0]

    def poisoned(*args, **kwargs):  # the loss of the third step on is NaN (an lr of 1e30 was,
        calls[0] += 1  # before lr was bounded to 10)
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls[0] >= 3 else loss

    monkeypatch.setattr(F, "cross_entropy", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became (nan|inf).*Lower the learning rate"):
        fit_toy(toy, tmp_path, name="nan", optimizer="sgd", lr=0.1, momentum=0.0)
    st = json.loads((tmp_path / "nan" / "status.json").read_text())
    assert st["status"] == "failed" and "learning rate" in st["error"]


def test_exploding_finite_loss_stops_too(toy, tmp_path):
    """The issue's folder run: a finite loss of 34 for 5 classes is not training, it is noise."""
    with pytest.raises(
        TrainingDiverged,
        match=r"loss exploded to .* \(chance level is 1.10\).*Lower the learning rate",
    ):
        fit_toy(
            toy, tmp_path, name="boom", optimizer="sgd", lr=3.0, momentum=0.9, label_smoothing=0.0
        )
    assert json.loads((tmp_path / "boom" / "status.json").read_text())["status"] == "failed"


def test_max_steps_keeps_the_planned_schedule(toy, tmp_path):
    seen: list[float] = []

    class Lr:
        def on_epoch_end(self, row):
            seen.append(row["lr"])

    run = fit_toy(
        toy,
        tmp_path,
        name="short",
        epochs=4,
        max_steps=3,
        schedule="onecycle",
        lr=0.01,
        warmup=0.25,
        callbacks=[Lr()],
    )
    st = run.status
    assert st["status"] == "max_steps" and st["global_step"] == 3
    assert st["total_steps"] == 4 * st["steps_per_epoch"] and st["stop_step"] == 3
    # the lr at step 3 is the planned one: still warming up, not squeezed into 3 steps
    assert seen[-1] == pytest.approx(0.01 * lr_factor("onecycle", 2, st["total_steps"], 0.25))


def test_training_leaves_the_callers_random_state_alone(toy, tmp_path):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    sightline.fit("mlp", toy, runs_dir=tmp_path, epochs=1, progress="quiet", seed=7)
    assert torch.equal(torch.get_rng_state(), before)


def test_run_training_pipeline_events_and_result(toy, tmp_path):
    events: list[dict] = []
    result = sightline.run_training(
        toy,
        "mlp",
        runs_dir=tmp_path,
        epochs=2,
        progress="quiet",
        on_event=events.append,
        model_options={"hidden": 16},
    )
    kinds = [e["kind"] for e in events]
    for kind in ("data", "model", "run", "train_begin", "epoch", "evaluation", "report", "done"):
        assert kind in kinds, kind
    assert (
        kinds.index("run")
        < kinds.index("train_begin")
        < kinds.index("evaluation")
        < kinds.index("report")
    )
    assert result.status == "finished" and result.report.is_file()
    assert result.metrics.accuracy == result.run.evaluation["accuracy"]
    assert events[-1] == {"kind": "done", **result.to_dict()}


def test_run_training_reports_failure_as_an_event(toy, tmp_path):
    events: list[dict] = []
    with pytest.raises(sightline.errors.ModelError):
        sightline.run_training(toy, "no-such-model", runs_dir=tmp_path, on_event=events.append)
    assert events[-1]["kind"] == "failed" and "no-such-model" in events[-1]["error"]


def test_predict_on_bytes_and_file_objects(toy, tmp_path):
    run = fit_toy(toy, tmp_path, epochs=1)
    buf = io.BytesIO()
    Image.fromarray(toy.test.images[0, 0].numpy()).save(buf, format="PNG")
    path = tmp_path / "x.png"
    path.write_bytes(buf.getvalue())
    from_path = run.predict(str(path))
    assert torch.equal(run.predict(buf.getvalue()), from_path)
    assert torch.equal(run.predict(io.BytesIO(buf.getvalue())), from_path)
    with pytest.raises(ImageError, match="upload.*truncated|upload.*cannot decode"):
        run.predict(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="photo.jpg: not a recognised image format"):
        run.preprocess.prepare_image(sightline.data.images.open_image(b"hello", name="photo.jpg"))


def test_upload_size_is_bounded(monkeypatch):
    from sightline.data import images

    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", 100)
    with pytest.raises(ImageError, match="too large"):
        images.open_image(io.BytesIO(b"\x89PNG" + b"0" * 200))


def test_resume_flags_that_cannot_apply_are_named(toy, tmp_path, capsys, monkeypatch):
    run = fit_toy(
        toy, tmp_path, name="r", epochs=2, max_steps=2
    )  # ended: resume refuses, after the warning
    monkeypatch.chdir(tmp_path)
    assert (
        main(["train", "--resume", str(run.path), "--epochs", "9", "--lr", "0.1", "--no-eval"]) == 2
    )
    out = capsys.readouterr()
    assert "ignored: --epochs, --lr" in out.out and "already ended" in out.err


def test_progress_lines_print_within_an_epoch():
    from sightline.train.progress import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(stream=stream, live=False, line_every=0.0)
    bar.on_train_begin({"epochs": 1})
    bar.on_step(
        {
            "epoch": 1,
            "step": 3,
            "steps": 10,
            "loss": 0.5,
            "accuracy": 0.8,
            "images_per_sec": 100.0,
            "steps_per_sec": 2.0,
        }
    )
    assert "step 3/10" in stream.getvalue() and "epoch ETA 0:04" in stream.getvalue()


def test_schedule_of_a_run_comes_from_its_real_step_plan(toy, tmp_path):
    from sightline.report import schedule_figure

    run = fit_toy(toy, tmp_path, name="plan", epochs=4, max_steps=5, batch_size=32)
    ax = schedule_figure(run, 0).axes[0]
    steps = run.status["steps_per_epoch"]
    assert (
        steps == -(-len(toy.train) // 32) and len(ax.lines[0].get_xdata()) == 4 * steps
    )  # the toy's, not 54,000
    marks = [line for line in ax.lines[1:] if "max steps" in line.get_label()]
    assert marks and marks[0].get_xdata()[0] == pytest.approx(5 / steps)


def test_commands_name_the_newest_run_they_picked(toy, tmp_path, capsys):
    run = fit_toy(toy, tmp_path, name="newest", epochs=1)
    assert main(["plot", "curves", "--runs-dir", str(tmp_path), "-o", str(tmp_path / "c.png")]) == 0
    assert f"Using the newest run: {run.path.resolve()}" in capsys.readouterr().err
    assert main(["evaluate", "--runs-dir", str(tmp_path / "none")]) == 2
    assert f"no runs in {(tmp_path / 'none').resolve()}" in capsys.readouterr().err
