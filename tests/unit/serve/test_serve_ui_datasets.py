"""The web UI's dataset and model endpoints: /api/datasets/{kind}/{name} (+ sample rows) and
/api/models. No run is needed: the server is started on an empty runs folder with a generated
image folder as its --data-dir; the built-in datasets are looked for in empty (or the real
mirror's) folders, never downloaded."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from PIL import Image  # noqa: E402
from test_serve_ui_api import COLORS, N_TEST, _mkdir, assert_error, client, square  # noqa: E402


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    """A server whose one data folder, "shapes", is laid out like the trained run's (plus an
    unreadable file that sorts first in class red)."""
    base = tmp_path_factory.mktemp("ui-data")
    folder = base / "shapes"
    for split, n in (("train", 20), ("test", N_TEST)):
        for i, (name, color) in enumerate(COLORS.items()):
            for j in range(n):
                square(color, seed=1000 * i + j).save(
                    _mkdir(folder / split / name) / f"{j:02d}.png"
                )
    (folder / "train" / "red" / "00-broken.png").write_bytes(b"not a png")
    return client(_mkdir(base / "runs"), data_dirs=[folder])


def test_folder_dataset_detail_and_samples(c):
    body = c.get("/api/datasets/folder/shapes").json()
    assert body["name"] == "shapes" and body["kind"] == "folder" and body["classes"] == list(COLORS)
    assert body["available"] is True and body["message"] is None
    assert (
        body["splits"]["test"] == {name: N_TEST for name in COLORS}
        and body["splits"]["train"]["red"] == 21
    )
    assert body["sizes"] == {
        "train": 61,
        "test": 3 * N_TEST,
    }  # files, as the folder scan counts them
    r = c.get(
        "/api/datasets/folder/shapes/samples/2.png", params={"n": 4}
    )  # red: its broken file is skipped
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (4 * 64 + 3 * 2, 64)  # 16 px enlarged to >= 56
    assert (
        c.get("/api/datasets/folder/shapes/samples/0.png").content
        == c.get("/api/datasets/folder/shapes/samples/0.png").content
    )
    assert_error(c.get("/api/datasets/folder/shapes/samples/3.png"), 404, "no class 3")
    assert_error(c.get("/api/datasets/folder/shapes/samples/0.png", params={"n": 0}), 422, "n")


def test_dataset_refusals(c):
    assert_error(c.get("/api/datasets/folder/elsewhere"), 404, "the server's folders are: shapes")
    assert_error(c.get("/api/datasets/folder/..%2Fshapes"), 404)
    assert_error(c.get("/api/datasets/remote/shapes"), 404, "unknown dataset kind 'remote'")
    assert_error(
        c.get("/api/datasets/builtin/imagenet"), 404, "no built-in dataset named 'imagenet'"
    )
    assert_error(c.get("/api/datasets/builtin/imagenet/samples/0.png"), 404, "no built-in dataset")


def test_a_builtin_dataset_that_is_not_downloaded(c, monkeypatch, tmp_path):
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(_mkdir(tmp_path / "cache")))
    monkeypatch.setenv("SIGHTLINE_DATA_MIRROR", str(_mkdir(tmp_path / "mirror")))
    body = c.get("/api/datasets/builtin/mnist").json()
    assert body["available"] is False and "sightline datasets --download mnist" in body["message"]
    assert body["classes"][:2] == ["0", "1"] and body["sizes"] == {"train": 60000, "test": 10000}
    assert_error(
        c.get("/api/datasets/builtin/mnist/samples/0.png"),
        409,
        "sightline datasets --download mnist",
    )
    assert not any((tmp_path / "cache").iterdir())


def test_a_downloaded_builtin_dataset(c, mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SIGHTLINE_DATA_MIRROR", str(mirror))
    body = c.get("/api/datasets/builtin/mnist").json()
    assert body["available"] is True and sum(body["splits"]["train"].values()) == 60000
    assert (
        set(body["splits"]) == {"train", "test"} and sum(body["splits"]["test"].values()) == 10000
    )
    row = Image.open(
        io.BytesIO(c.get("/api/datasets/builtin/mnist/samples/3.png", params={"n": 3}).content)
    )
    assert row.size == (3 * 56 + 2 * 2, 56)


def test_models_with_their_training_defaults(c):
    body = c.get("/api/models").json()
    assert body["default"] == "fastcnn" and body["dataset_defaults"] == {"fashion-mnist": "airnet"}
    models = {m["name"]: m for m in body["models"]}
    fast = models["fastcnn"]
    assert fast["pretrained"] is False and fast["options"] == {
        "width": 32,
        "depth": 0,
        "stages": 4,
        "pool_first": False,
    }
    d = fast["defaults"]
    assert (d["epochs"], d["batch_size"], d["optimizer"], d["lr"], d["patience"]) == (
        4,
        64,
        "sgd",
        0.2,
        None,
    )
    assert (
        d["weight_decay"] == 0.0005 and "extra" not in d and "folder recipe" in fast["folder_note"]
    )
    assert models["mlp"]["defaults"]["optimizer"] == "adam"
    lite = models["efficientnet-lite0"]
    assert lite["pretrained"] is True and lite["pretrained_defaults"]["head_epochs"] == 1
    convnext = models["timm:convnext_tiny"]  # the curated timm backbones (make test installs timm)
    assert convnext["pretrained"] is True and "28.6 M params" in convnext["description"]


def test_one_model_by_name_also_a_timm_model_the_list_does_not_show(c):
    listed = {m["name"] for m in c.get("/api/models").json()["models"]}
    assert "timm:resnet10t" not in listed
    r = c.get("/api/models/timm:resnet10t")  # any timm architecture, typed on the Train page
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "timm:resnet10t" and body["pretrained"] is True
    assert body["pretrained_defaults"] and body["defaults"]["epochs"] >= 1
    assert c.get("/api/models/fastcnn").json()["options"]["width"] == 32
    assert_error(c.get("/api/models/timm:resnet10tt"), 404, "resnet10t")  # the nearest names
    assert_error(c.get("/api/models/nope"), 404, "available")
    assert c.get("/api/models/" + "x" * 300).status_code == 422
