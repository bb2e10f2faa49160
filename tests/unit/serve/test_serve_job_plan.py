"""POST /api/jobs/plan: what a job would train with, from the plan code a queued job runs.

The folder is 3 classes x 20 gray PNGs of 12x12 px: 54 training images after the default
validation split, so the folder recipe's batch of 32 makes 2 steps an epoch and its epochs are
100 (the cap: 300 steps would need 150). Nothing is queued and no image is decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from optional_libraries import require  # noqa: E402
from PIL import Image  # noqa: E402

from sightline.data.download import CACHE_ENV  # noqa: E402
from sightline.plan.folder_recipe import MAX_EPOCHS, MIN_STEPS  # noqa: E402
from sightline.serve import create_app  # noqa: E402
from sightline.serve.jobs.request import JobRequest, train_request  # noqa: E402

CSRF = {"X-Sightline-Request": "1"}
FOLDER = "blocks"


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / FOLDER
    rng = np.random.default_rng(0)
    for c, name in enumerate(("left", "middle", "right")):
        (root / name).mkdir(parents=True)
        for i in range(20):
            a = rng.integers(0, 60, (12, 12), dtype=np.uint8)
            a[:, c * 4 : c * 4 + 4] += 180
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def client(folder, tmp_path) -> TestClient:
    app = create_app(runs_dir=tmp_path / "runs", data_dirs=[folder], device="cpu")
    return TestClient(app, base_url="http://127.0.0.1")


def plan(c: TestClient, body: dict, status: int = 200) -> dict:
    r = c.post("/api/jobs/plan", json=body, headers=CSRF)
    assert r.status_code == status, r.text
    return r.json()


def test_a_folder_plan_shows_the_folder_recipe_and_queues_nothing(client):
    p = plan(client, {"folder": FOLDER, "model": "fastcnn"})
    assert p["model"] == "fastcnn" and p["data"]["name"] == FOLDER
    assert (
        p["data"]["train"] == 54
        and p["data"]["val"] == 6
        and p["data"]["input_shape"] == [1, 12, 12]
    )
    o = p["options"]
    assert o["epochs"] == MAX_EPOCHS and o["batch_size"] == 32 and o["optimizer"] == "adamw"
    assert {"epochs", "batch_size", "optimizer", "lr"} <= set(p["folder_recipe"])
    assert p["steps"] == {"per_epoch": 2, "total": 2 * MAX_EPOCHS, "stop": 2 * MAX_EPOCHS}
    assert p["short_of_recipe"] is None and p["given"] == []
    texts = [n["text"] for n in p["notes"]]
    assert any(
        t.startswith(f"epochs {MAX_EPOCHS}: 54 training images make 2 steps of 32") for t in texts
    )
    assert "images per class: left: 20, middle: 20, right: 20" in texts  # the data's notes too
    assert all("command line" not in t for t in texts)  # the notes speak to every face
    assert client.get("/api/jobs").json()["jobs"] == []


def test_given_epochs_are_kept_and_the_missing_steps_are_counted(client):
    p = plan(client, {"folder": FOLDER, "model": "fastcnn", "epochs": 5, "batch_size": 16})
    assert p["options"]["epochs"] == 5 and p["options"]["batch_size"] == 16
    assert set(p["given"]) == {"epochs", "batch_size"} and "epochs" not in p["folder_recipe"]
    assert p["steps"]["per_epoch"] == 4 and p["steps"]["total"] == 20  # 54 images in 16s: 4 steps
    recipe = min(MAX_EPOCHS, -(-MIN_STEPS // 4))
    assert p["short_of_recipe"] == {
        "epochs": 5,
        "steps_per_epoch": 4,
        "steps": 20,
        "recipe_epochs": recipe,
        "recipe_steps": recipe * 4,
    }
    warning = next(n["text"] for n in p["notes"] if n["text"].startswith("warning: 5 epochs"))
    assert warning.startswith(
        f"warning: 5 epochs × 4 steps = 20 steps; the recipe would train {recipe * 4:,}"
    )
    # Enough epochs for the recipe's steps: no warning.
    enough = {"folder": FOLDER, "model": "fastcnn", "epochs": recipe, "batch_size": 16}
    assert plan(client, enough)["short_of_recipe"] is None


def test_the_plan_is_the_one_a_job_trains_with(client, folder):
    """The preview's config is ``prepare``'s (the data loaded, the model built), field for field."""
    from sightline.train.api import prepare

    body = {"folder": FOLDER, "model": "mlp", "epochs": 3, "val_split": 0, "calibration_split": 0.2}
    p = plan(client, body)
    trained = prepare(train_request(JobRequest(**body), [folder]), progress="quiet")[0].config
    assert p["options"] == {k: v for k, v in trained.to_dict().items() if k != "extra"}
    assert p["data"]["val"] == 0 and p["data"]["calibration"] == 12 and p["data"]["train"] == 48


def test_plan_errors_are_the_jobs_errors(client):
    for body in (
        {"folder": "nope"},
        {"folder": FOLDER, "epochs": 0},
        {"folder": FOLDER, "classes": ["left", "up"]},
        {"folder": FOLDER, "model": "mlp", "pretrained": True},
    ):
        job = client.post("/api/jobs", json=body, headers=CSRF)
        p = client.post("/api/jobs/plan", json=body, headers=CSRF)
        assert p.status_code == job.status_code == 400, (body, p.text, job.text)
        assert p.json()["error"] == job.json()["error"]
    assert plan(client, {"epochs": True}, status=422)  # the body's shape, as POST /api/jobs
    assert (
        str(Path.home())
        not in client.post("/api/jobs/plan", json={"folder": "nope"}, headers=CSRF).text
    )


def test_a_built_in_dataset_not_loaded_here_has_no_steps_yet(client, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "empty-cache"))
    p = plan(client, {"dataset": "mnist", "model": "mlp"})
    assert p["data"] is None and p["steps"] is None and p["options"]["epochs"] == 5  # the mlp's own
    assert any("not loaded on this machine yet" in n["text"] for n in p["notes"])
    assert not (tmp_path / "empty-cache").exists() or not any(
        (tmp_path / "empty-cache").rglob("*.gz")
    )


def test_the_smallest_size_plans_and_never_answers_500(client):
    """A 1-pixel input (the loaders' lower bound) planned with the pretrained backbone made a
    Preprocess refuse even shift 0 ("from 0 to -1 pixels"): a 500 found by schemathesis."""
    for body in ({"folder": FOLDER, "size": 1}, {"folder": FOLDER, "size": 1, "pretrained": True}):
        r = client.post("/api/jobs/plan", json=body, headers=CSRF)
        assert r.status_code in (200, 400), (body, r.status_code, r.text)


def test_a_folders_labels_file_is_listed_planned_and_never_a_path(folder, tmp_path):
    """A labels file in a server folder is offered by GET /api/datasets and trained on by name
    (``labels``); a path, a file elsewhere or a link to one is refused."""
    import shutil

    root = tmp_path / "server" / "photos"
    shutil.copytree(folder, root / "images")
    rows = [f"images/{c}/{i}.png,{'wide' if c == 'middle' else 'narrow'}"
            for c in ("left", "middle", "right") for i in range(20)]  # fmt: skip
    (root / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    (root / "bad.csv").write_text("path,colour\n")
    (tmp_path / "elsewhere.csv").write_text("path,label\n")
    (root / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    app = create_app(runs_dir=tmp_path / "runs", data_dirs=[root], device="cpu")
    c = TestClient(app, base_url="http://127.0.0.1")
    (listed,) = c.get("/api/datasets").json()["folders"]
    files = {f["name"]: f for f in listed["labels_files"]}
    assert sorted(files) == ["bad.csv", "labels.csv"]  # the link is not offered
    assert [k["name"] for k in files["labels.csv"]["classes"]] == ["narrow", "wide"]
    assert (
        files["labels.csv"]["images"] == 60 and "must name the columns" in files["bad.csv"]["error"]
    )
    p = plan(c, {"folder": "photos", "labels": "labels.csv", "model": "fastcnn"})
    assert p["data"]["name"] == "labels" and p["data"]["train"] + p["data"]["val"] == 60
    for labels, status, says in (
        ("link.csv", 400, "unknown labels file"),
        ("nope.csv", 400, "unknown labels file"),
        ("../elsewhere.csv", 422, "pattern"),
        ("images/x.csv", 422, "pattern"),
    ):
        r = c.post("/api/jobs/plan", json={"folder": "photos", "labels": labels}, headers=CSRF)
        assert r.status_code == status and says in r.text, (labels, r.text)
    r = c.post("/api/jobs/plan", json={"labels": "labels.csv"}, headers=CSRF)
    assert r.status_code == 400 and "give the folder too" in r.text


def test_a_timm_backbone_plans_at_its_weights_input_and_a_weights_path_is_refused(client):
    require("timm", "timm")
    p = plan(client, {"folder": FOLDER, "model": "timm:resnet10t", "pretrained": True})
    assert p["model"] == "timm:resnet10t" and p["data"]["input_shape"] == [3, 176, 176]
    assert p["options"]["freeze"] is True  # a head on frozen features, as for EfficientNet-Lite
    # A file path is the training machine's: no field of the request takes one.
    body = {"folder": FOLDER, "model": "timm:resnet10t", "weights": "/etc/passwd"}
    assert client.post("/api/jobs/plan", json=body, headers=CSRF).status_code == 422
    r = client.post("/api/jobs/plan", json={"folder": FOLDER, "model": "timm:nope"}, headers=CSRF)
    assert r.status_code in (400, 422) and "timm has no model" in r.text
