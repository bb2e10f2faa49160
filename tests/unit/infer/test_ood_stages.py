"""The "none of these" score with a convnet's later stages (infer/ood.py ``stage_taps``): the
taps name the right modules in the model and in its folded inference copy, the detector scores
each part and keeps them in the model file, and a run, its predictions and its ONNX export
give the same scores."""

from __future__ import annotations

import pytest
import torch
from test_train import make_dataset

import sightline
from sightline.infer.batched import batched_logits, feature_dims, inference_copy
from sightline.infer.ood import (
    STAGES_METHOD,
    Detector,
    detector_of,
    fit_detector,
    pooled,
    stage_taps,
)
from sightline.infer.predict import scored_logits
from sightline.models.fold import fold_batchnorms
from sightline.models.registry import create_model
from sightline.run import checkpoint as ckpt


@pytest.mark.parametrize(
    "name, options, taps",
    [
        ("airnet", {}, ("group3.conv1", "pool")),
        ("airnet", {"groups": 1}, ()),
        ("fastcnn", {}, ("stage3.conv.conv", "stage4.conv.conv", "pool")),
        ("fastcnn", {"pool_first": True, "depth": 1}, ("stage3.conv.conv", "stage4.conv.conv", "pool")),
        ("fastcnn", {"stages": 2}, ("pool",)),
        ("mlp", {}, ()),
    ],
)  # fmt: skip
def test_taps_read_the_outputs_of_every_stage_but_the_first(name, options, taps):
    model = create_model(name, (1, 28, 28), 10, **options).eval()
    assert stage_taps(model) == taps
    stages = [m for n, m in model.named_children() if n.startswith(("group", "stage"))]
    outputs, inputs = [], []
    for stage in stages:
        stage.register_forward_hook(lambda m, a, out: outputs.append(out))
    modules = dict(model.named_modules())
    for tap in taps:
        modules[tap].register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    with torch.no_grad():
        model(torch.randn(2, 1, 28, 28))
    assert len(inputs) == len(taps)
    for got, want in zip(inputs, outputs[1:], strict=True):  # every stage's but the first
        assert torch.equal(got, want)
    # the folded inference copy calls the same modules, by the same names
    folded = dict(fold_batchnorms(model).named_modules())
    assert all(tap in folded for tap in taps)


def test_pooled_features_are_each_channels_maximum_and_mean():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    f = pooled(x)
    assert f.shape == (2, 6)
    assert torch.equal(f[:, :3], x.amax((2, 3))) and torch.equal(f[:, 3:], x.mean((2, 3)))


def parts_data(n: int, seed: int, tap_shift: float = 0.0):
    """Penultimate features (8) and one tap's (6) of 3 classes; ``tap_shift`` moves only the
    tap's part away from the training data."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 14, generator=torch.Generator().manual_seed(5)) * 5
    labels = torch.arange(3).repeat_interleave(n // 3)
    f = centres[labels] + torch.randn(len(labels), 14, generator=g)
    f[:, 8:] += tap_shift
    return f, labels


def test_a_detector_with_taps_scores_each_part_and_keeps_them_in_the_model_file():
    train, labels = parts_data(600, seed=0)
    val, _ = parts_data(300, seed=1)
    detector = fit_detector(train, labels, 3, val, taps=("pool",), dims=[8, 6])
    assert detector.record()["method"] == STAGES_METHOD and detector.record()["taps"] == ["pool"]
    assert detector.zstats is not None and detector.zstats.shape == (2, 2)
    # each part in standard deviations of its validation scores: their sum has mean 0 there
    assert abs(float(detector.scores(val).mean())) < 0.1
    far, _ = parts_data(300, seed=2, tap_shift=8.0)  # unlike the training data in the tap only
    assert (detector.scores(far) > detector.threshold).float().mean() > 0.95
    plain = fit_detector(train[:, :8], labels, 3, val[:, :8])  # the penultimate features only
    assert (plain.scores(far[:, :8]) > plain.threshold).float().mean() < 0.2
    again = Detector.from_file(detector.tensors(), {"ood": detector.record()})
    assert again is not None and again.taps == ("pool",)
    assert torch.allclose(again.scores(far), detector.scores(far), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="split"):
        fit_detector(train, labels, 3, val, taps=("pool",), dims=[8, 5])
    with pytest.raises(ValueError, match="scores 14"):
        detector.scores(train[:, :8])


@pytest.fixture(scope="module")
def convnet_run(tmp_path_factory):
    """A small fastcnn run on an image folder (train / test subfolders), so that the CLI can
    load its data again."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("stages")
    toy = make_dataset(n_per_class=90)
    for split, part in (("train", toy.train), ("test", toy.test)):
        for i, (x, y) in enumerate(zip(part.images, part.labels, strict=True)):
            folder = tmp / "photos" / split / f"class{int(y)}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[0].numpy()).save(folder / f"{i}.png")
    run = sightline.fit("fastcnn", tmp / "photos", runs_dir=tmp / "runs", epochs=3,
                        progress="quiet", model_options={"width": 8})  # fmt: skip
    return run, tmp


def test_a_convnet_run_scores_its_later_stages_everywhere(convnet_run):
    run, _ = convnet_run
    _, meta = ckpt.read_model_file(run.model_file("best"))
    assert meta["ood"]["method"] == STAGES_METHOD
    assert meta["ood"]["taps"] == ["stage3.conv.conv", "stage4.conv.conv", "pool"]
    model = run.inference_model()
    detector = detector_of(model)
    assert detector is not None and detector.taps == tuple(meta["ood"]["taps"])
    images = run.load_data().test.images
    # features=True reads the detector's taps; the raw model and its folded copy agree
    _, features = batched_logits(model, images, run.preprocess, "cpu", features=True)
    assert features.shape[1] == sum(detector.dims)
    raw = run.load_model()
    assert feature_dims(raw, detector.taps, images, run.preprocess) == detector.dims
    _, raw_features = batched_logits(raw, images, run.preprocess, "cpu", features=True)
    scores = detector.scores(features)
    assert torch.allclose(detector.scores(raw_features), scores, rtol=1e-3, atol=1e-2)
    assert inference_copy(raw) is not raw  # its BatchNorms were folded, the taps still found
    # what predict and the server run (infer/predict.py) gives the same scores
    _, got = scored_logits(model, images, run.preprocess, "cpu", 64, detector)
    assert torch.allclose(got, scores, rtol=1e-4, atol=1e-4)


def test_the_onnx_export_of_a_convnet_run_gives_the_same_scores(convnet_run):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sightline import load_onnx
    from sightline.run.export import export_onnx

    run, tmp = convnet_run
    result = export_onnx(run, tmp / "m.onnx")
    assert result.parity.score_rel_diff is not None and result.parity.passed
    images = run.load_data().test.images[:8]
    pairs = [(str(i), x[0].numpy()) for i, x in enumerate(images)]
    pairs.append(("odd", torch.full((12, 12), 250, dtype=torch.uint8).numpy()))
    by_torch = run.predict_images(pairs).predictions
    by_onnx = load_onnx(result.path).predict_images(pairs).predictions
    for a, b in zip(by_torch, by_onnx, strict=True):
        assert (a.label, a.unknown, a.closest) == (b.label, b.unknown, b.closest)
        assert b.ood_score == pytest.approx(a.ood_score, rel=1e-3, abs=1e-2)


def test_calibrate_says_what_the_score_reads(convnet_run, capsys):
    from sightline.cli import main

    run, _ = convnet_run
    assert main(["calibrate", str(run.path)]) == 0
    assert "from its penultimate features and 3 later stages'" in capsys.readouterr().out
    assert detector_of(run.load_model()).taps == ("stage3.conv.conv", "stage4.conv.conv", "pool")
