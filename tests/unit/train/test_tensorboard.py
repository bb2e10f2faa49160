"""TensorBoard tracking as a training concern (sightline/train/callbacks/tensorboard.py): the
events TensorBoard's own reader finds after ``fit``, a resumed run continuing them without a
doubled curve, and a folder that cannot be written warning once while training goes on."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from test_train import fit_toy, make_dataset  # noqa: E402

import sightline  # noqa: E402
from sightline.train import Callback, TensorBoardTracker  # noqa: E402


def _events(folder):
    ea = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    ea.Reload()
    return ea


def test_the_curves_and_the_plan_are_in_tensorboards_events(tmp_path):
    run = fit_toy(make_dataset(), tmp_path, epochs=3, callbacks=[TensorBoardTracker()])
    ea = _events(run.path / "tensorboard")
    tags = ea.Tags()["scalars"]
    for tag in ("epoch/loss", "epoch/val_accuracy", "epoch/lr", "train/loss"):
        assert tag in tags, tags
    val = [e.value for e in ea.Scalars("epoch/val_accuracy")]
    assert [e.step for e in ea.Scalars("epoch/val_accuracy")] == [1, 2, 3]
    history = [row["val_accuracy"] for row in run.history]
    assert val == pytest.approx(history, abs=1e-6)  # the same numbers as metrics.csv
    assert "plan/text_summary" in ea.Tags()["tensors"]


class StopAfter(Callback):
    """Stops the run after ``epochs`` epochs, as Ctrl-C would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, trainer, row):
        if row["epoch"] == self.epochs:
            trainer.stop_requested = True


def test_a_resumed_run_continues_its_events_in_the_same_folder(tmp_path):
    data = make_dataset()
    run = fit_toy(data, tmp_path, epochs=4, callbacks=[TensorBoardTracker(), StopAfter(2)])
    assert len(run.history) == 2
    sightline.resume(run.path, data=data, progress="quiet", callbacks=[TensorBoardTracker()])
    steps = [e.step for e in _events(run.path / "tensorboard").Scalars("epoch/loss")]
    assert steps == [1, 2, 3, 4]


def test_an_unwritable_folder_warns_once_and_training_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = fit_toy(make_dataset(), tmp_path / "runs", epochs=2,
                      callbacks=[TensorBoardTracker(blocker / "tb")])  # fmt: skip
    said = [w for w in caught if "TensorBoard events cannot be written" in str(w.message)]
    assert len(said) == 1 and len(run.history) == 2


def test_track_tensorboard_is_an_option_of_every_face(tmp_path):
    """`track` is a plan option: fit(track=...) and `sightline train --track tensorboard` add the
    tracker; an unknown tracker is refused naming those there are; the folder is the command
    line's only (a client's path is never trusted)."""
    from sightline.cli import main
    from sightline.errors import ConfigError
    from sightline.plan.config import TrainConfig
    from sightline.plan.options import declared_option

    run = fit_toy(make_dataset(), tmp_path, epochs=2, track="tensorboard")
    assert "epoch/loss" in _events(run.path / "tensorboard").Tags()["scalars"]
    assert run.config["train"]["track"] == "tensorboard"
    with pytest.raises(ConfigError, match="track.*tensorboard"):
        fit_toy(make_dataset(), tmp_path, epochs=1, track="wandb")
    assert not declared_option(TrainConfig, "track_uri").spec.api
    folder = tmp_path / "digits"
    for c in range(2):
        (folder / f"c{c}").mkdir(parents=True)
        for i in range(12):
            from PIL import Image

            Image.new("L", (8, 8), 40 + 150 * c + i).save(folder / f"c{c}" / f"{i}.png")
    events = tmp_path / "tb-elsewhere"
    code = main(["train", str(folder), "--model", "mlp", "--epochs", "1", "--no-eval",
                 "--runs-dir", str(tmp_path / "cli-runs"), "--track", "tensorboard",
                 "--track-uri", str(events), "--progress", "quiet"])  # fmt: skip
    assert code == 0 and "epoch/loss" in _events(events).Tags()["scalars"]


def test_after_the_evaluation_the_metrics_figures_and_graph_are_in_the_events(tmp_path):
    """run_training with --track tensorboard: the test metrics, the confusion matrix, sample
    predictions and mistakes as images, and the model's graph, beside the curves."""
    from conftest import write_squares

    folder = write_squares(tmp_path)
    result = sightline.run_training(str(folder), "fastcnn", runs_dir=tmp_path / "runs", epochs=2,
                                    progress="quiet", model_options={"width": 8},
                                    track="tensorboard")  # fmt: skip
    assert result.run.tracking["tensorboard"]["log_dir"] == str(result.run.path / "tensorboard")
    ea = EventAccumulator(str(result.run.path / "tensorboard"),
                          size_guidance={"scalars": 0, "images": 0})  # fmt: skip
    ea.Reload()
    tags = ea.Tags()
    assert {"test/confusion_matrix", "test/predictions", "test/mistakes"} <= set(tags["images"])
    (accuracy,) = ea.Scalars("test/accuracy")
    assert accuracy.value == pytest.approx(result.metrics.accuracy)
    assert tags["graph"] and "Conv2d" in str(ea.Graph())
