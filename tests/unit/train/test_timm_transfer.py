"""A timm backbone through every face, on a small generated folder and local weights: the plan
takes the weights' input (size, mean/std) into the saved Preprocess; a head on frozen features
and a fine-tuned run both train, predict, inspect and export to ONNX with parity. (Random
weights stand in for ImageNet's: what is tested is the plumbing, not the accuracy.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from optional_libraries import require
from PIL import Image
from safetensors.torch import save_file

import sightline
from sightline.cli import main

timm = require("timm", "timm")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes x 12 photos of 40 px: a coloured square on noise."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(220, 40, 40), (40, 200, 40), (40, 40, 220)]):
        (root / f"c{c}").mkdir()
        for i in range(12):
            a = rng.integers(0, 60, (40, 40, 3)).astype(np.uint8)
            x, y = rng.integers(2, 20, 2)
            a[y : y + 18, x : x + 18] = colour
            Image.fromarray(a).save(root / f"c{c}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet10t.safetensors"
    save_file(timm.create_model("resnet10t").state_dict(), path)
    return path


def _train(folder, weights, tmp_path, *extra):
    main(["train", str(folder), "--model", "timm:resnet10t", "--weights", str(weights),
          "--size", "32", "--val-split", "0.25", "--runs-dir", str(tmp_path), "--name", "r",
          "--progress", "quiet", *extra])  # fmt: skip
    return sightline.load_run(tmp_path / "r")


@pytest.mark.parametrize("mode", [["--epochs", "2"], ["--fine-tune", "--epochs", "2"]])
def test_a_timm_backbone_trains_predicts_inspects_and_exports(
    folder, weights, tmp_path, monkeypatch, mode
):
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path / "cache"))
    run = _train(folder, weights, tmp_path, *mode)
    assert run.status["status"] == "finished"
    model = run.config["model"]
    assert model["name"] == "timm:resnet10t" and model["options"]["pretrained"] is True
    assert model["options"]["weights"] == str(weights)
    assert run.config["train"]["freeze"] is ("--fine-tune" not in mode)
    pre = run.preprocess  # the weights' normalisation, not the folder's
    assert pre.mean == pytest.approx((0.485, 0.456, 0.406)) and pre.size == (32, 32)
    assert pre.interpolation == "bicubic"  # as timm's config for resnet10t's weights says
    photo = folder / "c1" / "3.png"
    (answer,) = run.predict_files([photo]).predictions
    assert answer.closest in {"c0", "c1", "c2"} and 0 < answer.confidence <= 1
    # The run needs neither the weights file nor timm's download to be used again.
    weights_gone = tmp_path / "moved.safetensors"
    weights.rename(weights_gone)
    try:
        (again,) = sightline.load_run(run.path).predict_files([photo]).predictions
    finally:
        weights_gone.rename(weights)
    assert again.probabilities == pytest.approx(answer.probabilities, abs=1e-5)
    main(["inspect", str(run.path), str(photo), "--output-dir", str(tmp_path / "inspect")])
    assert (tmp_path / "inspect" / "saliency.png").is_file()
    main(["export", str(run.path)])
    parity = json.loads((run.path / "export" / "best.onnx.json").read_text())["parity"]
    assert parity["top1_agreement"] == 1.0 and parity["max_abs_diff"] < 1e-4


def test_a_missing_weights_file_is_said_before_the_data_loads(folder, tmp_path, capsys):
    code = main(["train", str(folder), "--model", "timm:resnet10t", "--weights",
                 str(tmp_path / "nope.safetensors"), "--runs-dir", str(tmp_path)])  # fmt: skip
    assert code != 0
    err = capsys.readouterr()
    assert "nope.safetensors not found" in err.err and "images per class" not in err.out
    assert not list(tmp_path.glob("*/config.json"))  # no run was started


@pytest.mark.parametrize("name", ["timm:mobilenetv3_small_050", "timm:vit_tiny_patch16_224"])
def test_other_small_timm_models_train_evaluate_predict_and_export_with_parity(name, tmp_path):
    """A MobileNetV3 (timm's BatchNormAct2d) and a ViT at 32 px (position embeddings made for
    its 2x2 patches), trained whole from random weights on generated 3-channel images."""
    from test_train import make_dataset

    from sightline.run.export import export_onnx

    gray = make_dataset(n_per_class=8, classes=3, size=32)
    rgb = lambda s: type(s)(s.images.expand(-1, 3, -1, -1).contiguous(), s.labels)  # noqa: E731
    pre = type(gray.preprocess)(3, (32, 32), mean=(0.3,) * 3, std=(0.3,) * 3)
    data = type(gray)("toy", gray.classes, rgb(gray.train), rgb(gray.val), rgb(gray.test), pre)
    torch.manual_seed(0)
    model = sightline.create_model(name, data.input_shape, data.num_classes)
    run = sightline.fit(model, data, runs_dir=tmp_path, name="r", epochs=1, batch_size=8,
                        progress="quiet")  # fmt: skip
    assert run.status["status"] == "finished"
    loaded = sightline.load_run(run.path)
    assert loaded.config["model"]["name"] == name
    metrics = loaded.evaluate(data, split="test")
    assert 0 <= metrics.accuracy <= 1 and len(loaded.predict(data.test.images)) == len(data.test)
    result = export_onnx(run)  # checks ONNX Runtime's logits against PyTorch's, else fails
    assert result.path.is_file()
    parity = json.loads(result.path.with_suffix(".onnx.json").read_text())["parity"]
    assert parity["top1_agreement"] == 1.0 and parity["max_abs_diff"] < 1e-4
