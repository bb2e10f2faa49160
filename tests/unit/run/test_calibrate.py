"""A run's calibrator (sightline.run.calibrate): fitted on the validation split after training,
kept in the model file, and applied by every face that loads the model; the classes never
change, and a run trained before calibration is calibrated by `sightline calibrate`."""

from __future__ import annotations

import json

import pytest
import torch
from test_train import fit_toy, make_dataset

import sightline
from sightline.cli import main
from sightline.infer.calibration import Calibrator, calibrator_of
from sightline.run import checkpoint as ckpt


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = make_dataset(n_per_class=96)
    run = fit_toy(data, tmp_path_factory.mktemp("runs"), epochs=6, lr=1e-2)
    return run, data


def test_training_calibrates_on_the_validation_split_and_keeps_it_in_the_model_file(trained):
    run, data = trained
    meta = ckpt.read_model_file(run.model_file("best"))[1]
    record = meta["calibration"]
    assert record["fitted_on"] == "val" and record["images"] == len(data.val)
    assert record["method"] in ("temperature", "log-quadratic") and record["scale"] > 0
    assert record["after"]["nll"] <= record["before"]["nll"] + 1e-9  # fitted to lower it
    assert not run.calibrator().identity
    assert calibrator_of(run.load_model()) == run.calibrator() == Calibrator.from_dict(record)


def network_logits(run, images):
    raw, _ = ckpt.load_model(run.model_file("best"), "cpu", calibrated=False)
    x = run.preprocess.normalize(images)
    with torch.no_grad():
        return (raw(x) + raw(x.flip(-1))) / 2 if run.preprocess.flip_tta else raw(x)


def test_every_face_maps_the_networks_logits_through_the_calibrator(trained):
    run, data = trained
    images = data.test.images[:16]
    logits = network_logits(run, images)
    want = run.calibrator().apply(logits).softmax(1)
    assert torch.allclose(run.predict(images), want, atol=1e-5)  # Run.predict (library)
    assert torch.allclose(sightline.load_run(run.path).predict(images), want, atol=1e-5)
    assert torch.equal(run.predict(images).argmax(1), logits.argmax(1))  # the answers stay
    metrics = run.evaluate(data, split="test", save=False)
    assert metrics.calibrator == run.calibrator()
    assert metrics.to_dict()["uncalibrated"]["nll"] == pytest.approx(
        torch.nn.functional.cross_entropy(
            network_logits(run, data.test.images), data.test.labels.long()
        ).item(),
        abs=1e-4,
    )


def test_a_run_from_before_calibration_is_calibrated_again(trained):
    run, data = trained
    fitted = run.calibrator()
    ckpt.set_fitted(run.model_file("best"), calibration=None)  # as a run trained before it existed
    old = sightline.load_run(run.path)
    assert old.calibrator().identity and calibrator_of(old.load_model()).identity
    record = old.calibrate(data)
    assert Calibrator.from_dict(record) == fitted
    from sightline.infer.ood import threshold_share

    ood = record["ood"]  # the threshold's quantile of the held-out images, and how many
    assert ood["validation_images"] == len(data.val)
    assert ood["validation_share"] == pytest.approx(threshold_share(0.95, len(data.val)), abs=1e-6)
    assert calibrator_of(old.load_model()) == fitted  # no stale model kept


def test_the_calibrate_command_on_a_folder_run(tmp_path, capsys):
    from PIL import Image

    data = make_dataset(n_per_class=180)  # 10 % held out: 54 images, over the minimum
    for i, (x, y) in enumerate(zip(data.train.images, data.train.labels, strict=True)):
        folder = tmp_path / "photos" / "train" / f"class{int(y)}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[0].numpy()).save(folder / f"{i}.png")
    run = sightline.fit("mlp", tmp_path / "photos", runs_dir=tmp_path / "runs", epochs=2,
                        progress="quiet", model_options={"hidden": 16})  # fmt: skip
    fitted = run.calibrator()
    assert not fitted.identity  # calibrated by training, on the 10 % it held out
    ckpt.set_fitted(run.model_file("best"), calibration=None)
    assert main(["calibrate", str(run.path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert Calibrator.from_dict(record) == fitted and record["fitted_on"] == "val"
    assert sightline.load_run(run.path).calibrator() == fitted
    assert main(["calibrate", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "ECE" in out and "from its penultimate features (" in out  # an mlp has no stages
    assert "(ECE from sampling alone: " in out


def test_data_without_a_validation_split_is_a_clear_error(trained):
    run, data = trained
    from dataclasses import replace

    with pytest.raises(sightline.errors.RunError, match="no validation split"):
        run.calibrate(replace(data, val=None))


def test_set_fitted_keeps_the_weights_byte_for_byte(trained, tmp_path):
    run, _ = trained
    copy = tmp_path / "m.safetensors"
    copy.write_bytes(run.model_file("best").read_bytes())
    before = ckpt.read_model_file(copy)[0]
    ckpt.set_fitted(copy, calibration={"temperature": 2.5})
    tensors, meta = ckpt.read_model_file(copy)
    assert meta["calibration"] == {"temperature": 2.5}
    assert ckpt.calibrator_in(meta) == Calibrator(0.4, 0.0)  # a plain temperature reads too
    assert (
        all(torch.equal(before[k], tensors[k]) for k in before) and before.keys() == tensors.keys()
    )


def test_the_onnx_export_carries_the_calibrator(trained, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sightline import load_onnx
    from sightline.run.export import export_onnx

    run, data = trained
    images = data.test.images[:8]
    path = run.model_file("best")
    record = ckpt.read_model_file(path)[1]["calibration"]
    strong = Calibrator(0.2, 0.05)  # far from the identity: the check below means something
    try:
        ckpt.set_fitted(path, calibration=strong.to_dict())
        fresh = sightline.load_run(run.path)
        result = export_onnx(fresh, tmp_path / "m.onnx", images=images)
        onnx_probs = torch.as_tensor(load_onnx(result.path).predict(images))
        want = strong.apply(network_logits(fresh, images)).softmax(1)
        assert torch.allclose(onnx_probs, want, atol=1e-5)
        assert torch.allclose(onnx_probs, fresh.predict(images), atol=1e-5)
        raw = network_logits(fresh, images).log_softmax(1)  # the toy is sure: compare the logs
        assert not torch.allclose(onnx_probs.log(), raw, atol=0.5)
    finally:
        ckpt.set_fitted(path, calibration=record)


def test_large_inputs_fit_their_gaussians_on_fewer_training_images():
    from sightline.run.calibrate import OOD_FIT_IMAGES, OOD_FIT_MIN, ood_fit_images

    assert ood_fit_images((1, 28, 28)) == ood_fit_images((3, 32, 32)) == OOD_FIT_IMAGES
    assert ood_fit_images((3, 96, 96)) == OOD_FIT_IMAGES * 32 * 32 // (96 * 96)
    assert ood_fit_images((3, 224, 224)) == OOD_FIT_MIN  # a pretrained run's photos


def test_a_run_without_validation_is_calibrated_on_its_calibration_split(tmp_path, capsys):
    """The recipes train with val_split=0: 2 % of train is kept aside instead (calibration_split),
    never trained or validated on, and the run is calibrated and learns its 'none of these'
    threshold on it; run.load_data() rebuilds the same split."""
    from PIL import Image

    data = make_dataset(n_per_class=100)  # 60 kept aside: over the minimum
    for i, (x, y) in enumerate(zip(data.train.images, data.train.labels, strict=True)):
        folder = tmp_path / "photos" / f"class{int(y)}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[0].numpy()).save(folder / f"{i}.png")
    runs = tmp_path / "runs"
    assert main(["train", str(tmp_path / "photos"), "--model", "mlp", "--epochs", "2",
                 "--val-split", "0", "--calibration-split", "0.2", "--runs-dir", str(runs),
                 "--no-report", "--progress", "lines"]) == 0  # fmt: skip
    assert "Calibrated on the calibration split" in capsys.readouterr().out
    run = sightline.load_run(next(runs.iterdir()))
    again = run.load_data()
    assert again.val is None and len(again.calibration) == 60 and len(again.train) == 240
    meta = ckpt.read_model_file(run.model_file("best"))[1]
    assert meta["calibration"]["fitted_on"] == "the calibration split"
    assert meta["calibration"]["images"] == 60 and meta["ood"]["threshold"] > 0
    assert "calibration 60" in again.describe()
    assert run.to_dict()["has_validation"] is False  # the Runs page: no "best val." to show


def test_a_handful_of_held_out_images_calibrates_nothing_and_says_why(tmp_path, capsys):
    """Issue 51: a run "calibrated" on 3 validation images (ECE 26.6 -> 25.1 %)."""
    from PIL import Image

    from sightline.run.calibrate import CALIBRATION_MIN_IMAGES

    data = make_dataset(n_per_class=40)  # 10 % held out: 12 images
    for i, (x, y) in enumerate(zip(data.train.images, data.train.labels, strict=True)):
        folder = tmp_path / "few" / f"class{int(y)}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[0].numpy()).save(folder / f"{i}.png")
    events: list[dict] = []
    run = sightline.run_training(str(tmp_path / "few"), "mlp", runs_dir=tmp_path / "runs",
                                 epochs=2, progress="quiet", report=False, on_event=events.append,
                                 model_options={"hidden": 16})  # fmt: skip
    (event,) = [e for e in events if e["kind"] == "calibration"]
    assert event["images"] < CALIBRATION_MIN_IMAGES and event["method"] == "none"
    assert event["skipped"].startswith(f"only {event['images']} held-out images")
    assert run.run.calibrator().identity  # the network's own probabilities, as said
    record = ckpt.read_model_file(run.run.model_file("best"))[1]["calibration"]
    assert record["skipped"] == event["skipped"]
    assert run.run.to_dict()["has_validation"] is True  # 12 images, but a validation split
    assert main(["calibrate", str(run.run.path)]) == 0
    assert "calibration skipped: only" in capsys.readouterr().out
    from sightline.report import write_report  # the report says why too, not "run calibrate"

    text = write_report(run.run).read_text()
    assert f"calibration was skipped ({event['skipped']})" in text.replace("&#x27;", "'")
