"""/api/runs/{id}/exports: export a run from the web (each format checked beside PyTorch, in a
thread of the server), follow it, and download its files by checked names only."""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from test_serve_ui_api import CSRF, RUN, assert_error, client, served  # noqa: E402,F401


def _wait(c, run: str, timeout: float = 240.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = c.get(f"/api/runs/{run}/exports").json()
        if body["task"] and body["task"]["state"] != "running":
            return body
        time.sleep(0.3)
    raise AssertionError("the export did not end")


@pytest.fixture
def runs(served, tmp_path):  # noqa: F811 - the module fixture, imported
    import shutil

    shutil.copytree(served[0], tmp_path / "runs")
    return tmp_path / "runs"


def test_export_from_the_web_and_download_its_files(runs):
    c = client(runs)
    body = c.get(f"/api/runs/{RUN}/exports").json()
    assert body["task"] is None and body["files"] == [] and "onnx-int8" in body["formats"]
    r = c.post(f"/api/runs/{RUN}/exports", json={"formats": ["onnx-int8", "package"]}, headers=CSRF)
    assert r.status_code == 202, r.text
    assert r.json()["task"]["state"] == "running"
    done = _wait(c, RUN)
    assert done["task"]["state"] == "done", done["task"]
    names = {f["name"] for f in done["files"]}
    assert {
        "best.onnx",
        "best.int8.onnx",
        "best.package.zip",
        "MODEL_CARD.md",
        "report.json",
    } <= names
    formats = [e["format"] for e in done["report"]["exports"]]
    assert formats == ["onnx", "onnx-int8"] and done["report"]["package"] == "best.package.zip"
    got = c.get(f"/api/runs/{RUN}/exports/best.package.zip")
    assert (
        got.status_code == 200
        and f'filename="{RUN}-best.package.zip"' in got.headers["content-disposition"]
    )
    assert f"{RUN}/predict.py" in zipfile.ZipFile(io.BytesIO(got.content)).namelist()
    card = c.get(f"/api/runs/{RUN}/exports/MODEL_CARD.md")
    assert card.status_code == 200 and card.text.startswith(f"# Model card: {RUN}")


def test_export_requests_and_file_names_are_checked(runs, tmp_path):
    c = client(runs)
    assert_error(
        c.post(f"/api/runs/{RUN}/exports", json={"formats": ["tflite"]}, headers=CSRF), 422
    )
    assert_error(c.post(f"/api/runs/{RUN}/exports", json={"formats": []}, headers=CSRF), 422)
    bad_drop = {"formats": ["onnx-int8"], "accept_drop": 101}
    assert_error(c.post(f"/api/runs/{RUN}/exports", json=bad_drop, headers=CSRF), 422)
    assert_error(c.post("/api/runs/nope/exports", json={}, headers=CSRF), 404)
    assert_error(c.get(f"/api/runs/{RUN}/exports/best.onnx"), 404, "export it first")
    assert c.get(f"/api/runs/{RUN}/exports/..%2Fconfig.json").status_code in (400, 404)
    assert_error(c.get(f"/api/runs/{RUN}/exports/config.json"), 422)
    # A link in export/ to a file outside the runs folder is neither listed nor served.
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"secret")
    (runs / RUN / "export").mkdir(exist_ok=True)
    os.symlink(secret, runs / RUN / "export" / "best.onnx")
    assert c.get(f"/api/runs/{RUN}/exports").json()["files"] == []
    assert_error(c.get(f"/api/runs/{RUN}/exports/best.onnx"), 404)


def test_the_request_names_every_export_format_there_is():
    from typing import get_args

    from sightline.run import EXPORT_FORMATS
    from sightline.serve.api.exports import FormatName

    assert set(get_args(FormatName)) == set(EXPORT_FORMATS)  # one list, two spellings: kept equal
