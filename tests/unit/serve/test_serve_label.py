"""The labelling API (/api/datasets/folder/{name}/label...): a --data-dir folder whose
``unlabelled/`` waits, labelled through the API on the real pretrained features, one change
undone; names a client makes up are refused."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from sightline.serve import create_app  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "labelling"))
from test_labelling import files_under, write_pool  # noqa: E402

URL = "/api/datasets/folder/photos/label"


@pytest.fixture
def api(tmp_path):
    folder = write_pool(tmp_path, per_class=4)
    app = create_app(runs_dir=tmp_path / "runs", data_dirs=[folder], start_workers=False)
    return TestClient(app, base_url="http://127.0.0.1"), folder


def test_label_a_folder_through_the_api(api):
    c, folder = api
    before = files_under(folder)
    listed = c.get("/api/datasets").json()
    assert "photos" in str(listed) and "unlabelled" not in str(listed)  # a dataset, not a class
    status = c.get(URL).json()
    assert status["folder"] == "photos" and status["waiting"] == 12 and status["classes"] == {}
    assert str(folder) not in str(status)  # no server path
    batch = c.get(URL + "/next", params={"n": 4}).json()["next"]
    assert len(batch) == 4 and all(b["suggestion"] is None for b in batch)
    picture = c.get(URL + "/image", params={"path": batch[0]["path"], "large": True})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"

    r = c.post(URL, json={"labels": {batch[0]["path"]: "red", batch[1]["path"]: "green",
                                     batch[2]["path"]: None}})  # fmt: skip
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["classes"] == {"green": 1, "red": 1} and answer["waiting"] == 9
    assert {m["from"] for m in answer["moved"]} == {b["path"] for b in batch[:3]}
    assert c.get(URL + "/image", params={"path": batch[0]["path"]}).status_code == 404  # moved

    r = c.post(URL + "/accept", json={"above": 0.98})
    assert r.status_code == 409 and "no model yet" in r.json()["error"]
    r = c.post(URL, json={"labels": {batch[0]["path"]: "blue"}})  # labelled meanwhile (a tab)
    assert r.status_code == 409 and "labelled already" in r.json()["error"]
    r = c.post(URL + "/undo")
    assert r.status_code == 200 and len(r.json()["restored"]) == 3
    assert files_under(folder) == before
    assert c.post(URL + "/undo").status_code == 409


def test_names_a_client_makes_up_are_refused(api, tmp_path):
    c, folder = api
    outside = tmp_path / "secret.png"
    outside.write_bytes((folder / "unlabelled" / "img0000.jpg").read_bytes())
    os.symlink(outside, folder / "unlabelled" / "link.jpg")
    for path in ("../secret.png", "/etc/passwd", "unlabelled/link.jpg", "red/x.jpg"):
        assert c.get(URL + "/image", params={"path": path}).status_code in (403, 404), path
        r = c.post(URL, json={"labels": {path: "red"}})
        assert r.status_code in (403, 404), (path, r.text)
    r = c.post(URL, json={"labels": {"unlabelled/img0000.jpg": "../../etc"}})
    assert r.status_code == 400 and "not allowed" in r.json()["error"]
    assert c.post(URL, json={"labels": {}}).status_code == 422
    assert c.post(URL, json={"labels": {"unlabelled/img0000.jpg": 3}}).status_code == 422
    assert c.post(URL + "/accept", json={"above": 0.2}).status_code == 422
    assert c.get(URL + "/next", params={"n": 0}).status_code == 422
    assert c.get("/api/datasets/folder/nothere/label").status_code == 404
    assert outside.is_file() and (folder / "unlabelled" / "link.jpg").is_symlink()
