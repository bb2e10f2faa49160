"""The web UI's API (run assets, test images, inspect, zip predictions, datasets, models).

One tiny fastcnn run is trained per module on a generated image FOLDER (so its test split can
be loaded again, as the pages show it), with its report and plots; beside it, an MLP run on an
in-memory dataset, whose data the server cannot load again (its endpoints must say so).
Requests go through FastAPI's TestClient, to http://127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from test_serve_api import assert_error  # noqa: E402
from test_train import fit_toy, make_dataset  # noqa: E402

from sightline.run import evaluations as store  # noqa: E402
from sightline.serve import create_app  # noqa: E402
from sightline.serve.api import datasets as dataset_routes  # noqa: E402
from sightline.serve.api import inspect as inspect_routes  # noqa: E402
from sightline.serve.api import run_files as run_assets  # noqa: E402

CSRF = {"X-Sightline-Request": "1"}
RUN, MEM = "shapes", "mem"
COLORS = {"blue": (30, 30, 200), "green": (30, 180, 30), "red": (200, 30, 30)}
N_TEST = 6  # per class


def square(color, seed: int = 0, size: int = 16) -> Image.Image:
    a = np.random.default_rng(seed).integers(0, 60, (size, size, 3), dtype=np.uint8)
    a[4:12, 4:12] = color
    return Image.fromarray(a)


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,"), uri[:40]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(runs folder, data folder): run "shapes" (fastcnn on the folder, evaluated, report and
    plots written) and run "mem" (an MLP on an in-memory dataset, evaluated)."""
    from sightline.pipeline import run_training

    base = tmp_path_factory.mktemp("ui")
    folder = base / "shapes"
    for split, n in (("train", 20), ("test", N_TEST)):
        for i, (name, color) in enumerate(COLORS.items()):
            for j in range(n):
                square(color, seed=1000 * i + j + (500 if split == "test" else 0)).save(
                    _mkdir(folder / split / name) / f"{j:02d}.png"
                )
    (folder / "train" / "red" / "00-broken.png").write_bytes(
        b"not a png"
    )  # skipped by training and samples
    runs = base / "runs"
    run_training(
        folder,
        "fastcnn",
        model_options={"width": 8},
        epochs=2,
        batch_size=16,
        runs_dir=runs,
        name=RUN,
        progress="quiet",
    )
    data = make_dataset(n_per_class=32)
    fit_toy(data, runs, name=MEM, epochs=1).evaluate(data)
    return runs, folder


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.fixture
def runs(served, tmp_path) -> Path:
    """A private copy of the runs folder, for tests that change runs."""
    shutil.copytree(served[0], tmp_path / "runs")
    return tmp_path / "runs"


def client(runs_dir, data_dirs=(), **options) -> TestClient:
    app = create_app(runs_dir=runs_dir, data_dirs=data_dirs, start_workers=False, **options)
    paths = {getattr(r, "path", None) for r in app.routes}
    for module in (run_assets, inspect_routes, dataset_routes):  # until app.py includes them
        if not {getattr(r, "path", None) for r in module.router.routes} <= paths:
            app.include_router(module.router)
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def c(served) -> TestClient:
    return client(served[0], data_dirs=[served[1]])


def fetch_test_image(c, index: int, **params) -> Image.Image:
    r = c.get(f"/api/runs/{RUN}/test-images/{index}.png", params=params)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return Image.open(io.BytesIO(r.content))


# ---------------------------------------------------------------------------- run detail, files
def test_run_detail_has_plots_report_models_and_the_test_evaluation(c):
    body = c.get(f"/api/runs/{RUN}").json()
    assert {"confusion", "curves", "samples"} <= set(body["plots"]) and "figures" not in body[
        "plots"
    ]
    assert body["has_report"] is True and body["model_files"] == ["best", "last"]
    assert body["test_count"] == 3 * N_TEST
    assert [row["class"] for row in body["per_class"]] == list(COLORS)
    assert set(body["per_class"][0]) == {"class", "precision", "recall", "f1", "support"}
    assert len(body["confusion"]) == 3 and sum(map(sum, body["confusion"])) == 3 * N_TEST
    mem = c.get(f"/api/runs/{MEM}").json()
    assert mem["plots"] == [] and mem["has_report"] is False and mem["test_count"] == 3 * 8


def test_plots_are_served_by_checked_name_only(c, served):
    r = c.get(f"/api/runs/{RUN}/plots/confusion.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (served[0] / RUN / "plots" / "confusion.png").read_bytes()
    assert_error(c.get(f"/api/runs/{RUN}/plots/nope.png"), 404, "has no plot 'nope'; its plots: ")
    assert_error(c.get(f"/api/runs/{RUN}/plots/..config.png"), 400, "invalid plot name")
    assert_error(c.get(f"/api/runs/{RUN}/plots/figures.json.png"), 400, "invalid plot name")
    for attack in ("..%2F..%2Fconfig", "..%2Fstatus", "%2E%2E%2Fconfig", "..%5Cconfig"):
        r = c.get(f"/api/runs/{RUN}/plots/{attack}.png")
        assert r.status_code in (400, 404) and "error" in r.json(), (attack, r.status_code)
    assert_error(c.get("/api/runs/..%2Fruns/plots/confusion.png"), 404)
    assert_error(c.get("/api/runs/nope/plots/confusion.png"), 404, "no run named 'nope'")


def test_a_plot_that_links_outside_is_refused(runs, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret")
    (runs / RUN / "plots" / "leak.png").symlink_to(secret)
    c = client(runs)
    assert "leak" not in c.get(f"/api/runs/{RUN}").json()["plots"]
    assert_error(c.get(f"/api/runs/{RUN}/plots/leak.png"), 404, "no plot 'leak'")


def test_report_is_served_with_a_strict_policy(c):
    r = c.get(f"/api/runs/{RUN}/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert (
        r.headers["content-security-policy"]
        == "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
    )
    assert "<html" in r.text.lower()
    assert_error(c.get(f"/api/runs/{MEM}/report"), 404, f"sightline report {MEM}")


def test_model_files_download_as_attachments(runs):
    c = client(runs)
    for which in ("best", "last"):
        r = c.get(f"/api/runs/{RUN}/model", params={"which": which})
        assert (
            r.status_code == 200 and r.content == (runs / RUN / f"{which}.safetensors").read_bytes()
        )
        assert f'filename="{RUN}-{which}.safetensors"' in r.headers["content-disposition"]
        assert r.headers["content-disposition"].startswith("attachment")
    assert_error(c.get(f"/api/runs/{RUN}/model", params={"which": "worst"}), 422, "which")
    (runs / RUN / "last.safetensors").unlink()
    assert_error(
        c.get(f"/api/runs/{RUN}/model", params={"which": "last"}),
        404,
        "no last model file; it has: best",
    )
    assert c.get(f"/api/runs/{RUN}").json()["model_files"] == ["best"]


def test_the_onnx_export_downloads_once_written(runs):
    pytest.importorskip("onnxruntime")
    import sightline

    c = client(runs)
    assert c.get(f"/api/runs/{RUN}").json()["onnx_files"] == []
    assert_error(c.get(f"/api/runs/{RUN}/onnx"), 404, f"sightline export {RUN}")
    sightline.export_onnx(runs / RUN)
    assert c.get(f"/api/runs/{RUN}").json()["onnx_files"] == ["best"]
    r = c.get(f"/api/runs/{RUN}/onnx")
    assert r.status_code == 200 and r.content == (runs / RUN / "export" / "best.onnx").read_bytes()
    assert f'filename="{RUN}-best.onnx"' in r.headers["content-disposition"]
    assert_error(
        c.get(f"/api/runs/{RUN}/onnx", params={"which": "last"}),
        404,
        "no ONNX export of its last model",
    )


def test_summary(c):
    body = c.get(f"/api/runs/{RUN}/summary").json()
    assert body["name"] == "fastcnn" and body["input_shape"] == [3, 16, 16] and body["total"] > 0
    assert body["layers"][-1]["name"] == "classifier" and body["layers"][-1]["output_shape"] == [
        None,
        3,
    ]
    assert "Total params" in body["text"]
    assert_error(c.get("/api/runs/nope/summary"), 404, "no run named")


# ---------------------------------------------------------------------------- test images
def test_test_images_of_a_confusion_cell(c):
    confusion = c.get(f"/api/runs/{RUN}").json()["confusion"]
    body = c.get(f"/api/runs/{RUN}/test-images").json()
    assert body["count"] == 3 * N_TEST == len(body["items"])
    conf = [row["confidence"] for row in body["items"]]
    assert conf == sorted(conf, reverse=True)
    row = body["items"][0]
    assert set(row) == {"index", "true", "true_label", "pred", "pred_label", "confidence", "loss"}
    assert (
        row["true_label"] == list(COLORS)[row["true"]]
        and row["pred_label"] == list(COLORS)[row["pred"]]
    )
    for t in range(3):
        for p in range(3):
            cell = c.get(f"/api/runs/{RUN}/test-images", params={"true": t, "pred": p}).json()
            assert cell["count"] == confusion[t][p]
            assert all(r["true"] == t and r["pred"] == p for r in cell["items"])
    losses = [
        r["loss"]
        for r in c.get(f"/api/runs/{RUN}/test-images", params={"order": "loss"}).json()["items"]
    ]
    assert losses == sorted(losses, reverse=True)
    r1 = c.get(
        f"/api/runs/{RUN}/test-images", params={"order": "random", "seed": 3, "limit": 5}
    ).json()
    r2 = c.get(
        f"/api/runs/{RUN}/test-images", params={"order": "random", "seed": 3, "limit": 5}
    ).json()
    assert r1 == r2 and r1["count"] == 3 * N_TEST and len(r1["items"]) == 5
    row_0 = c.get(f"/api/runs/{RUN}/test-images", params={"true": 0}).json()
    assert row_0["count"] == N_TEST and {r["index"] for r in row_0["items"]} == set(range(N_TEST))


def test_test_images_refusals(c, runs):
    assert_error(
        c.get(f"/api/runs/{RUN}/test-images", params={"true": 3}),
        400,
        "true=3 is not a class index",
    )
    assert_error(c.get(f"/api/runs/{RUN}/test-images", params={"limit": 501}), 422, "limit")
    assert_error(c.get(f"/api/runs/{RUN}/test-images", params={"order": "best"}), 422, "order")
    assert_error(c.get("/api/runs/nope/test-images"), 404, "no run named")
    shutil.rmtree(runs / RUN / "evaluations")
    assert_error(client(runs).get(f"/api/runs/{RUN}/test-images"), 404, f"sightline evaluate {RUN}")


def test_an_in_memory_run_lists_its_results_but_cannot_show_its_images(c):
    body = c.get(f"/api/runs/{MEM}/test-images", params={"limit": 2}).json()
    assert body["count"] == 24 and len(body["items"]) == 2
    assert_error(c.get(f"/api/runs/{MEM}/test-images/0.png"), 409, "in memory")


def test_test_image_png_is_the_stored_image_enlarged(c, served):
    from sightline import load_run

    stored = load_run(RUN, served[0]).load_data(progress=False).test.images[4]
    assert fetch_test_image(c, 4).size == (112, 112)  # 16 px, enlarged to at least 112
    small = fetch_test_image(c, 4, scale=1)
    assert small.size == (16, 16) and np.array_equal(
        np.asarray(small), stored.permute(1, 2, 0).numpy()
    )
    big = np.asarray(fetch_test_image(c, 4, scale=2))
    assert np.array_equal(big[::2, ::2], np.asarray(small))
    assert_error(
        c.get(f"/api/runs/{RUN}/test-images/{3 * N_TEST}.png"), 404, "has 18 images (0..17)"
    )
    assert_error(c.get(f"/api/runs/{RUN}/test-images/0.png", params={"scale": 9}), 422, "scale")
    assert_error(c.get(f"/api/runs/{RUN}/test-images/x.png"), 422, "index")


def test_the_test_split_is_cached_per_run_with_a_bound(c):
    settings = c.app.state.sightline
    fetch_test_image(c, 0)
    fetch_test_image(c, 1)
    assert settings.test_splits.keys() == [RUN] and settings.test_splits.size == 2


def test_test_images_that_cannot_be_loaded_again(runs, monkeypatch, tmp_path):
    config = runs / RUN / "config.json"
    original = json.loads(config.read_text())
    # the evaluation's labels no longer match the images: their indices would point elsewhere
    import torch

    store.save_evaluation(
        runs / RUN,
        store.TEST_KEY,
        store.read_evaluation(runs / RUN, "test"),
        "",
        torch.zeros(5, 3),
        torch.zeros(5, dtype=torch.long),
    )
    assert_error(
        client(runs).get(f"/api/runs/{RUN}/test-images/0.png"),
        409,
        "changed since it was evaluated",
    )
    # the folder is gone
    config.write_text(
        json.dumps(
            {**original, "data": {**original["data"], "name_or_path": str(tmp_path / "gone")}}
        )
    )
    assert_error(client(runs).get(f"/api/runs/{RUN}/test-images/0.png"), 409, "cannot be loaded")
    # a built-in dataset that is not downloaded: never downloaded by a request
    monkeypatch.setenv("SIGHTLINE_CACHE_DIR", str(_mkdir(tmp_path / "cache")))
    monkeypatch.setenv("SIGHTLINE_DATA_MIRROR", str(_mkdir(tmp_path / "mirror")))
    config.write_text(
        json.dumps({**original, "data": {**original["data"], "name_or_path": "mnist"}})
    )
    assert_error(
        client(runs).get(f"/api/runs/{RUN}/test-images/0.png"),
        409,
        "sightline datasets --download mnist",
    )
    assert not any((tmp_path / "cache").iterdir())


# ---------------------------------------------------------------------------- inspect
def inspect(c, headers=CSRF, file: bytes | None = None, name: str = "red.png", **form):
    files = {"file": (name, file)} if file is not None else None
    return c.post(
        "/api/inspect", files=files, data={k: str(v) for k, v in form.items()}, headers=headers
    )


def test_inspect_an_upload(c):
    r = inspect(c, file=png(square(COLORS["red"], seed=7)), run=RUN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["run"] == RUN
        and body["file"] == "red.png"
        and body["true_label"] is None
        and body["note"] is None
    )
    assert body["label"] in COLORS and body["index"] == list(COLORS).index(body["label"])
    assert [t["label"] for t in body["top_k"]][0] == body["label"] and len(
        body["top_k"]
    ) == 3  # k=5, 3 classes
    assert body["confidence"] == body["top_k"][0]["probability"]
    assert decode(body["original"]).size == (16, 16)
    assert decode(body["seen"]).size == (224, 224) and decode(body["saliency"]).size == (224, 224)
    assert body["saliency_method"] == "gradcam"
    layers = body["activations"]
    assert 1 <= len(layers) <= 12 and layers[-1]["name"] == "classifier"
    assert {"name", "shape", "mean", "std", "min", "max", "zeros", "image"} <= set(layers[0])
    convs = [row for row in layers if len(row["shape"]) == 3]
    assert convs and decode(convs[0]["image"]).width > convs[0]["shape"][2]
    decode(layers[-1]["image"])  # the logits as a bar strip


def test_inspect_a_test_image_agrees_with_the_saved_evaluation(c):
    saved = {row["index"]: row for row in c.get(f"/api/runs/{RUN}/test-images").json()["items"]}
    body = inspect(c, test_index=N_TEST + 1, run=RUN, k=2).json()
    row = saved[N_TEST + 1]
    assert (
        body["file"] == f"test image #{N_TEST + 1}"
        and body["true_label"] == row["true_label"] == "green"
    )
    assert body["label"] == row["pred_label"] and body["confidence"] == pytest.approx(
        row["confidence"], abs=1e-4
    )
    assert len(body["top_k"]) == 2 and decode(body["original"]).size == (16, 16)


def test_inspect_refusals(c):
    assert_error(inspect(c, file=b"hello, I am text", name="notes.txt", run=RUN), 415, "notes.txt")
    assert_error(
        inspect(c, file=png(square(COLORS["red"])), test_index=0, run=RUN), 400, "exactly one"
    )
    assert_error(inspect(c, run=RUN), 400, "exactly one")
    assert_error(inspect(c, test_index=99, run=RUN), 404, "no image 99")
    assert_error(inspect(c, test_index=0, run=MEM), 409, "in memory")
    assert_error(inspect(c, test_index=0, run="nope"), 404, "no run named")
    assert_error(inspect(c, test_index=0, run="../x"), 400, "invalid run id")
    cross = {"Origin": "http://evil.example"}
    assert_error(inspect(c, headers=cross, test_index=0, run=RUN), 403, "cross-site")


def test_inspect_an_mlp_falls_back_to_gradients_and_shows_vectors(c):
    img = Image.fromarray(np.full((12, 12), 40, dtype=np.uint8))
    body = inspect(c, file=png(img), run=MEM).json()
    assert body["saliency_method"] == "gradient"
    assert all(len(row["shape"]) == 1 for row in body["activations"])
    assert decode(body["activations"][0]["image"]).height == 48


# ---------------------------------------------------------------------------- predict: zips, thumbnails
def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, body in members.items():
            if name.endswith("/"):
                z.writestr(zipfile.ZipInfo(name), b"")
            else:
                z.writestr(name, body)
    return buf.getvalue()


def predict(c, files, headers=CSRF, **form):
    return c.post(
        "/api/predict",
        files=[("files", f) for f in files],
        data={k: str(v) for k, v in form.items()},
        headers=headers,
    )


def test_predict_expands_zip_archives_in_place(c):
    archive = zip_bytes(
        {
            "sub/": b"",
            "sub/nested/blue.png": png(square(COLORS["blue"], 3)),
            "green.png": png(square(COLORS["green"], 4)),
            "notes.txt": b"just text",
            "__MACOSX/sub/._blue.png": b"junk",
            ".DS_Store": b"junk",
            "sub/.hidden.png": b"junk",
        }
    )
    r = predict(
        c,
        [
            ("first.png", png(square(COLORS["red"], 5))),
            ("batch.zip", archive),
            ("last.png", png(square(COLORS["red"], 6))),
        ],
        run=RUN,
    )
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    assert [row["file"] for row in rows] == [
        "first.png",
        "batch.zip/sub/nested/blue.png",
        "batch.zip/green.png",
        "batch.zip/notes.txt",
        "last.png",
    ]
    assert "not a recognised image" in rows[3]["error"]
    assert all("label" in row and "thumbnail" not in row for i, row in enumerate(rows) if i != 3)


def test_predict_thumbnails_show_what_the_model_saw(c):
    r = predict(
        c,
        [("a.png", png(square(COLORS["red"], 8))), ("b.txt", b"text")],
        run=RUN,
        thumbnails="true",
    )
    rows = r.json()["results"]
    assert decode(rows[0]["thumbnail"]).size == (64, 64) and "thumbnail" not in rows[1]


def test_zip_bombs_and_bad_archives(served, c):
    small = client(served[0], max_upload_bytes=200_000)
    bomb = zip_bytes({"zeros.png": b"\0" * 2_000_000})  # 2 MB declared, ~2 KB sent: over 8 x 200 KB
    assert len(bomb) < 10_000
    assert_error(predict(small, [("bomb.zip", bomb)], run=RUN), 413, "unpacks to 2 MB")
    many = zip_bytes({f"{i}.png": b"" for i in range(5001)}, zipfile.ZIP_STORED)
    assert_error(predict(c, [("many.zip", many)], run=RUN), 413, "5,001 entries")
    big = zip_bytes({"big.png": b"\0" * 300_000, "ok.png": png(square(COLORS["red"]))})
    rows = predict(small, [("big.zip", big)], run=RUN).json()["results"]
    assert "file too large" in rows[0]["error"] and "label" in rows[1]
    body = assert_error(predict(c, [("empty.zip", zip_bytes({}))], run=RUN), 415, "holds no files")
    assert body["results"] == [{"file": "empty.zip", "error": body["results"][0]["error"]}]
    broken = zip_bytes({"a.png": png(square(COLORS["red"]))})[:-30]  # no central directory
    assert_error(predict(c, [("broken.zip", broken)], run=RUN), 415, "not a readable zip")
