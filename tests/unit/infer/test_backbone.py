"""A pretrained backbone's features through ONNX Runtime where that is faster (infer/backbone.py):
the same numbers as PyTorch's, the choice timed once per machine and kept, an export made only
where it pays, never on a GPU. Speed itself lives in benchmarks/features.py."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from sightline.data.preprocess import Preprocess
from sightline.infer import backbone
from sightline.infer.backbone import OnnxBackbone
from sightline.infer.batched import batched_logits, inference_copy
from sightline.infer.engine import EngineChoice
from sightline.models import create_model
from sightline.train.frozen import extract_features

pytest.importorskip("onnxruntime")

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("efficientnet-lite0", SHAPE, 3).eval()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(backbone, "EXPORT_PAYS", 8)  # small jobs here stand for large ones
    return tmp_path


@pytest.fixture(scope="module")
def one_export(model, tmp_path_factory):
    """The model's backbone exported once for the module (an export takes seconds)."""
    path = tmp_path_factory.mktemp("export") / "backbone.onnx"
    backbone.export_backbone(model.fused(), PRE, path)
    return path


@pytest.fixture
def exported(cache, one_export, model):
    """A cache folder that already holds the export where ``fast_backbone`` looks for it."""
    path = backbone.export_path(model, PRE)
    path.parent.mkdir(parents=True)
    shutil.copy(one_export, path)
    return cache


def timed(engine: str, monkeypatch) -> list[int]:
    """The timing replaced by a fixed answer; returns a list that counts the timings."""
    calls: list[int] = []

    def faster_engine(engines, input_shape, batches, task):
        calls.append(1)
        assert set(engines) == {"torch", "onnx"} and input_shape == SHAPE
        for fn in engines.values():  # both engines run on the images they would get
            assert fn(torch.zeros((2, *SHAPE), dtype=torch.uint8)).shape == (2, 1280)
        return EngineChoice(engine, {"torch": 2.0, "onnx": 1.0}, task=task)

    monkeypatch.setattr(backbone, "faster_engine", faster_engine)
    return calls


PRE = Preprocess(3, SHAPE[1:], "pad", (127 / 255,) * 3, (128 / 255,) * 3)  # (x - 127) / 128


def test_onnx_features_are_pytorchs_and_the_choice_is_kept(model, cache, monkeypatch):
    calls = timed("onnx", monkeypatch)
    images = torch.randint(0, 256, (10, *SHAPE), dtype=torch.uint8)
    notes: list[str] = []
    feats = extract_features(model, images, PRE, torch.device("cpu"), note=notes.append)
    with torch.inference_mode():
        expected = model.features(PRE.normalize(images))
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-4)
    assert notes == [
        "Backbone features through ONNX Runtime: 1.0 ms an image (PyTorch 2.0), timed once on this machine"
    ]
    saved = json.loads((cache / "engines.json").read_text())
    assert [v["engine"] for v in saved.values()] == ["onnx"]
    assert len(list((cache / "backbones").glob("*-3x32x32-*.onnx"))) == 1
    # Once timed, never again; and with the export there, even one image goes through it.
    net = inference_copy(model, PRE, "cpu", images=1)
    assert isinstance(net, OnnxBackbone) and calls == [1]


def test_where_pytorch_is_faster_no_export_is_made_again(model, exported, monkeypatch):
    cache = exported
    calls = timed("torch", monkeypatch)
    assert not isinstance(inference_copy(model, PRE, "cpu", images=10), OnnxBackbone)
    exports = list((cache / "backbones").glob("*.onnx"))
    assert calls == [1] and len(exports) == 1
    exports[0].unlink()
    notes: list[str] = []
    assert not isinstance(
        inference_copy(model, PRE, "cpu", images=10, note=notes.append), OnnxBackbone
    )
    assert calls == [1] and not list((cache / "backbones").glob("*.onnx"))
    assert notes[0].startswith(
        "Backbone features through PyTorch: 2.0 ms an image (ONNX Runtime 1.0)"
    )


def test_an_export_onnx_runtime_cannot_read_leaves_pytorch_to_it(model, exported, monkeypatch):
    cache = exported
    calls = timed("onnx", monkeypatch)
    assert isinstance(inference_copy(model, PRE, "cpu", images=10), OnnxBackbone)
    export = next((cache / "backbones").glob("*.onnx"))
    backbone._sessions.clear()
    export.write_bytes(b"not a model")
    net = inference_copy(model, PRE, "cpu", images=10)
    assert not isinstance(net, OnnxBackbone) and calls == [1]
    assert net.features(PRE.normalize(torch.zeros((1, *SHAPE), dtype=torch.uint8))).shape == (
        1,
        1280,
    )


def test_a_small_job_makes_no_export_and_a_gpu_none(model, cache, monkeypatch):
    calls = timed("onnx", monkeypatch)
    assert not isinstance(inference_copy(model, PRE, "cpu", images=7), OnnxBackbone)
    assert not isinstance(inference_copy(model, PRE, "cpu"), OnnxBackbone)  # count unknown
    assert backbone.fast_backbone(model.fused(), model, PRE, torch.device("cuda"), 10**6) is None
    assert calls == [] and not (cache / "backbones").exists()


def test_predictions_through_the_onnx_backbone_keep_logits_features_and_calibration(
    model, exported, monkeypatch
):
    """Flip TTA and a calibrator, as batched_logits gives them through PyTorch; shifted views and
    other preprocessing go through PyTorch."""
    from sightline.infer.calibration import Calibrator, calibrator_of, set_calibrator

    timed("onnx", monkeypatch)
    calibrated = set_calibrator(
        create_model("efficientnet-lite0", SHAPE, 3).eval(), Calibrator(scale=0.5, curve=0.1)
    )
    calibrated.load_state_dict(model.state_dict())
    pre = dataclasses.replace(PRE, flip_tta=True)
    net = inference_copy(calibrated, pre, "cpu", images=100)
    assert isinstance(net, OnnxBackbone) and calibrator_of(net).scale == 0.5
    images = torch.randint(0, 256, (10, *SHAPE), dtype=torch.uint8)
    logits, feats = batched_logits(net, images, pre, "cpu", features=True)
    reference = inference_copy(calibrated)
    ref_logits, ref_feats = batched_logits(reference, images, pre, "cpu", features=True)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(feats, ref_feats, rtol=1e-4, atol=1e-4)
    assert not net.accepts(dataclasses.replace(pre, shift_tta=1))
    assert not net.accepts(dataclasses.replace(pre, mean=(0.5,) * 3))
    shifted = dataclasses.replace(pre, shift_tta=1)
    torch.testing.assert_close(
        batched_logits(net, images, shifted, "cpu"),
        batched_logits(reference, images, shifted, "cpu"),
        rtol=1e-4,
        atol=1e-4,
    )
