"""One predictor (issue 52): every face predicts through ``Run.predictor``, whose engine is
chosen once, by one rule, and which says which; the CLI and the server run the inference copy
(BatchNorms folded), not the training model."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from test_export import timed_as  # noqa: E402
from test_train import make_dataset  # noqa: E402

from sightline.cli import main  # noqa: E402
from sightline.errors import ConfigError, NotExportedError  # noqa: E402
from sightline.infer import Predictor  # noqa: E402
from sightline.run import exported  # noqa: E402
from sightline.run.export import export_onnx  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A convnet with BatchNorms (fastcnn), trained for one epoch on the toy data."""
    import sightline

    data = make_dataset()
    torch.manual_seed(0)
    model = sightline.create_model("fastcnn", data.input_shape, data.num_classes, width=8)
    runs = tmp_path_factory.mktemp("runs")
    opts = dict(epochs=1, batch_size=32, optimizer="adam", lr=3e-3, progress="quiet")
    return sightline.fit(model, data, name="toy", runs_dir=runs, **opts), data


def test_a_runs_predictor_runs_the_folded_copy_and_says_its_engine(toy):
    run, data = toy
    predictor = run.predictor(engine="torch", device="cpu")
    assert isinstance(predictor, Predictor) and predictor.engine == "torch"
    assert predictor.name == run.name and predictor.classes == run.classes
    trained = run.load_model("best", "cpu")
    assert predictor.model is not trained  # the inference copy
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.model.modules())
    images = data.test.images[:8]
    with torch.inference_mode():
        want = trained(run.preprocess.normalize(images)).softmax(1)
    got = predictor.probabilities(images)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.equal(run.predict(images, engine="torch", device="cpu"), got)
    assert run.predictor(engine="torch", device="cpu") is predictor  # kept for the next call


def test_engine_words_and_a_missing_export_are_clear(toy):
    run, _ = toy
    with pytest.raises(ConfigError, match="engine must be one of auto, torch, onnx"):
        run.predictor(engine="tensorrt")
    with pytest.raises(NotExportedError, match="sightline export"):
        run.predictor(engine="onnx")


def test_the_engine_is_chosen_once_for_a_run_and_every_face_hears_why(
    toy, tmp_path, monkeypatch, capsys
):
    run, data = toy
    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    from sightline.run import Run

    copied = Run(copy)
    export_onnx(copied)
    asked = timed_as(monkeypatch, "onnx")
    chosen = []
    real = exported.auto_engine

    def counting(*args, **kwargs):
        chosen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(exported, "auto_engine", counting)
    predictor = copied.predictor(device="cpu")
    assert predictor.engine == "onnx" and "ONNX Runtime predicts faster here" in predictor.note
    assert "best.onnx" in predictor.note
    # a second call, and every prediction method, reuse the choice
    copied.predict(data.test.images[:4], device="cpu")
    copied.predict_images([("a", data.test.images[0, 0].numpy())], device="cpu")
    assert len(chosen) == 1 and len(asked) == 1

    # the CLI says it, with the same words
    png = tmp_path / "one.png"
    Image.fromarray(data.test.images[0, 0].numpy()).save(png)
    assert main(["predict", "--run", str(copy), str(png)]) == 0
    err = capsys.readouterr().err
    assert (
        "ONNX Runtime predicts faster here" in err
        and "--engine torch|onnx|openvino|litert chooses" in err
    )


def test_the_server_predicts_through_the_runs_predictor(toy, tmp_path):
    from sightline.serve.services.model_cache import ModelCache

    run, data = toy
    runs = tmp_path / "runs"
    shutil.copytree(run.path, runs / "toy")
    cache = ModelCache(runs, device="cpu", engine="torch")
    try:
        predictor = cache.get("toy")
        assert isinstance(predictor, Predictor) and predictor.engine == "torch"
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.model.modules())
        batched = cache.predictor("toy")
        report = batched.predict_images([("x", data.test.images[0, 0].numpy())])
        direct = predictor.predict_images([("x", data.test.images[0, 0].numpy())])
        assert report.predictions[0].label == direct.predictions[0].label
        assert abs(report.predictions[0].confidence - direct.predictions[0].confidence) < 1e-5
    finally:
        cache.close()
