"""Building a dataset through the REST API (/api/datasets/folder...): new dataset, classes,
images (files, a zip), then trained on like any folder; hostile names and files refused."""

from __future__ import annotations

import io
import zipfile

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from sightline.serve import create_app  # noqa: E402


def png(value: int, size=(24, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def api(tmp_path):
    app = create_app(runs_dir=tmp_path / "runs", data_dirs=[tmp_path / "mine"], start_workers=False)
    return TestClient(app, base_url="http://127.0.0.1"), tmp_path / "mine"


def test_a_dataset_is_made_class_by_class_and_listed(api):
    c, mine = api
    assert mine.is_dir()  # created at start
    r = c.post("/api/datasets/folder", json={"name": "shapes"})
    assert r.status_code == 201 and r.json() == {"name": "shapes", "classes": {}}
    assert c.post("/api/datasets/folder", json={"name": "shapes"}).status_code == 400
    for name in ("dark", "light"):
        assert c.post("/api/datasets/folder/shapes/classes", json={"name": name}).status_code == 201
    files = [("files", (f"d{i}.png", png(i), "image/png")) for i in range(3)]
    files.append(("files", ("notes.txt", b"not an image", "text/plain")))
    r = c.post("/api/datasets/folder/shapes/classes/dark/images", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["saved"] == ["d0.png", "d1.png", "d2.png"]
    assert r.json()["skipped"][0]["file"] == "notes.txt" and r.json()["classes"]["dark"] == 3
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(4):
            z.writestr(f"light/{i}.png", png(200 + i))
        z.writestr("../escape.png", png(1))
    r = c.post("/api/datasets/folder/shapes/classes/light/images",
               files=[("files", ("light.zip", archive.getvalue(), "application/zip"))])  # fmt: skip
    assert r.json()["classes"] == {"dark": 3, "light": 4}
    assert any("escape" in s["file"] for s in r.json()["skipped"])
    assert not (mine / "escape.png").exists() and not (mine / "shapes" / "escape.png").exists()
    listed = c.get("/api/datasets").json()
    shapes = next(f for f in listed["folders"] if f["name"] == "shapes")
    assert shapes["buildable"] and listed["collections"] == ["mine"]
    r = c.post("/api/datasets/folder/shapes/classes/light/rename", json={"name": "bright"})
    assert r.json()["classes"] == {"bright": 4, "dark": 3}
    r = c.post("/api/jobs", json={"folder": "shapes", "model": "mlp", "epochs": 1})
    assert r.status_code == 201, r.text  # a job can train on it by name


def test_hostile_names_and_targets_are_refused(api):
    c, mine = api
    c.post("/api/datasets/folder", json={"name": "d"})
    for bad in ("../x", ".hidden", "a/b", ""):
        r = c.post("/api/datasets/folder", json={"name": bad})
        assert r.status_code in (400, 422) and not (mine.parent / "x").exists()
        r = c.post("/api/datasets/folder/d/classes", json={"name": bad})
        assert r.status_code in (400, 422)
    assert c.post("/api/datasets/folder/nope/classes", json={"name": "a"}).status_code == 404
    r = c.post(
        "/api/datasets/folder/d/classes/nope/images",
        files=[("files", ("a.png", png(1), "image/png"))],
    )
    assert r.status_code == 404
    r = c.post("/api/datasets/folder/d/classes/..%2F..%2Fx/images",
               files=[("files", ("a.png", png(1), "image/png"))])  # fmt: skip
    assert r.status_code in (400, 404)
    assert sorted(p.name for p in mine.rglob("*")) == ["d"]  # nothing else was written
