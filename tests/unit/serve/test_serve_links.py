"""Symbolic links inside the runs folder and the data folders are never followed by the server:
a linked metrics.csv, plots/ folder, plot, report or model file is neither read, listed as a
file nor served (the run's answer names it among ``refused_links``); an upload into a linked
class folder is refused (403) and nothing is written outside; a linked image is never shown.

The run folders here are written by hand (no training): what the server reads of them is files.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from sightline.serve import create_app  # noqa: E402
from sightline.serve.services.uploads import expand_uploads  # noqa: E402

RUN = "linked"
SECRET = "top-secret-7f3a"
CONFIG = {
    "model": {"name": "mlp"},
    "data": {"name_or_path": "toy", "classes": ["a", "b"]},
    "train": {"epochs": 1},
}
CSRF = {"X-Sightline-Request": "1"}


def png(color=(200, 30, 30), size: int = 24) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def runs(tmp_path) -> Path:
    """A runs folder with one finished run: metrics, a plot, a report, a model file."""
    run = tmp_path / "runs" / RUN
    (run / "plots").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(CONFIG))
    (run / "status.json").write_text(json.dumps({"status": "finished", "epochs_done": 1}))
    (run / "metrics.csv").write_text("epoch,loss,accuracy\n1,0.5,0.75\n")
    (run / "plots" / "curves.png").write_bytes(png())
    (run / "report.html").write_text("<html><body>the report</body></html>")
    (run / "best.safetensors").write_bytes(b"model bytes")
    return tmp_path / "runs"


@pytest.fixture
def outside(tmp_path) -> Path:
    """Files outside every folder the server was given, holding SECRET."""
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.csv").write_text(f"epoch,loss,accuracy\n1,{SECRET},0.1\n")
    (out / "secret.html").write_text(f"<html>{SECRET}</html>")
    (out / "secret.png").write_bytes(png((1, 2, 3)) + SECRET.encode())
    (out / "curves.png").write_bytes(png((1, 2, 3)) + SECRET.encode())
    (out / "secret.safetensors").write_bytes(SECRET.encode())
    return out


def client(runs_dir: Path, data_dirs=()) -> TestClient:
    app = create_app(runs_dir=runs_dir, data_dirs=list(data_dirs), start_workers=False)
    return TestClient(app, base_url="http://127.0.0.1")


def replace_with_link(path: Path, target: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for p in path.iterdir():
            p.unlink()
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target, target_is_directory=target.is_dir())


# ---------------------------------------------------------------------------- run folders
def test_the_plain_run_is_served_whole(runs):
    """The baseline the refusals below differ from."""
    c = client(runs)
    body = c.get(f"/api/runs/{RUN}").json()
    assert body["history"] == [{"epoch": 1, "loss": 0.5, "accuracy": 0.75}]
    assert body["plots"] == ["curves"] and body["has_report"] is True
    assert body["model_files"] == ["best"] and body["refused_links"] == []
    assert c.get(f"/api/runs/{RUN}/plots/curves.png").status_code == 200
    assert c.get(f"/api/runs/{RUN}/report").text.startswith("<html>")
    r = c.get(f"/api/runs/{RUN}/model")
    assert r.status_code == 200 and r.content == b"model bytes"
    assert r.headers["content-disposition"] == f'attachment; filename="{RUN}-best.safetensors"'


def test_a_linked_metrics_file_is_refused_in_the_api_and_on_the_page(runs, outside):
    replace_with_link(runs / RUN / "metrics.csv", outside / "secret.csv")
    c = client(runs)
    r = c.get(f"/api/runs/{RUN}")
    assert r.status_code == 200 and SECRET not in r.text and "outside" not in r.text
    body = r.json()
    assert body["history"] == []
    assert "metrics.csv is a symbolic link" in body["history_error"]
    assert "refused" in body["history_error"]
    assert body["refused_links"] == ["metrics.csv"]
    page = c.get(f"/runs/{RUN}")
    assert page.status_code == 200 and SECRET not in page.text
    assert SECRET not in c.get("/api/runs").text


def test_a_linked_plots_folder_is_neither_listed_nor_served(runs, outside):
    replace_with_link(runs / RUN / "plots", outside)
    c = client(runs)
    body = c.get(f"/api/runs/{RUN}").json()
    assert body["plots"] == [] and body["refused_links"] == ["plots"]
    for name in ("curves", "secret"):
        r = c.get(f"/api/runs/{RUN}/plots/{name}.png")
        assert r.status_code == 404 and SECRET.encode() not in r.content


def test_a_linked_plot_is_neither_listed_nor_served(runs, outside):
    replace_with_link(runs / RUN / "plots" / "curves.png", outside / "curves.png")
    c = client(runs)
    body = c.get(f"/api/runs/{RUN}").json()
    assert body["plots"] == [] and body["refused_links"] == ["plots/curves.png"]
    r = c.get(f"/api/runs/{RUN}/plots/curves.png")
    assert r.status_code == 404 and SECRET.encode() not in r.content


def test_a_linked_report_is_not_served_and_the_page_offers_no_button(runs, outside):
    replace_with_link(runs / RUN / "report.html", outside / "secret.html")
    c = client(runs)
    body = c.get(f"/api/runs/{RUN}").json()
    assert body["has_report"] is False  # run.js shows the report button only when it is true
    assert body["refused_links"] == ["report.html"]
    r = c.get(f"/api/runs/{RUN}/report")
    assert r.status_code == 404 and SECRET not in r.text
    assert SECRET not in c.get(f"/runs/{RUN}").text


def test_a_linked_model_file_is_neither_offered_nor_served(runs, outside):
    replace_with_link(runs / RUN / "best.safetensors", outside / "secret.safetensors")
    c = client(runs)
    body = c.get(f"/api/runs/{RUN}").json()
    assert body["model_files"] == [] and body["refused_links"] == ["best.safetensors"]
    r = c.get(f"/api/runs/{RUN}/model")
    assert r.status_code == 404 and SECRET not in r.text


# ---------------------------------------------------------------------------- data folders
@pytest.fixture
def collection(tmp_path) -> Path:
    """A --data-dir folder of datasets (the server makes datasets in it)."""
    return tmp_path / "mine"


def test_an_upload_into_a_linked_class_folder_is_refused(tmp_path, collection, outside):
    c = client(tmp_path / "runs", [collection])
    assert c.post("/api/datasets/folder", json={"name": "d"}).status_code == 201
    assert c.post("/api/datasets/folder/d/classes", json={"name": "real"}).status_code == 201
    target = outside / "target"
    target.mkdir()
    (collection / "d" / "cats").symlink_to(target, target_is_directory=True)
    files = [("files", ("a.png", png(), "image/png"))]
    r = c.post("/api/datasets/folder/d/classes/cats/images", files=files, headers=CSRF)
    assert r.status_code == 403, r.text
    assert "cats is a symbolic link" in r.json()["error"] and "refused" in r.json()["error"]
    assert list(target.iterdir()) == []  # nothing written outside
    r = c.post("/api/datasets/folder/d/classes", json={"name": "cats"}, headers=CSRF)
    assert r.status_code == 403 and list(target.iterdir()) == []
    r = c.post("/api/datasets/folder/d/classes/real/images", files=files, headers=CSRF)
    assert r.status_code == 200 and r.json()["saved"] == ["a.png"]  # a real class still takes it


def test_a_dataset_that_is_a_link_in_the_collection_is_refused(tmp_path, collection, outside):
    c = client(tmp_path / "runs", [collection])
    assert c.post("/api/datasets/folder", json={"name": "d"}).status_code == 201
    (outside / "set" / "cls").mkdir(parents=True)
    (outside / "set" / "cls" / "x.png").write_bytes(png())
    (collection / "evil").symlink_to(outside / "set", target_is_directory=True)
    r = c.get("/api/datasets/folder/evil/classes")
    assert r.status_code == 403 and "evil is a symbolic link" in r.json()["error"]
    files = [("files", ("a.png", png(), "image/png"))]
    r = c.post("/api/datasets/folder/evil/classes/cls/images", files=files, headers=CSRF)
    assert r.status_code == 403 and [p.name for p in (outside / "set" / "cls").iterdir()] == [
        "x.png"
    ]
    listed = {f["name"]: f for f in c.get("/api/datasets").json()["folders"]}
    assert "symbolic link" in listed["evil"]["error"] and "classes" not in listed["evil"]


@pytest.fixture
def dataset(tmp_path, outside) -> Path:
    """A --data-dir dataset: class a-real (real images), class b-linked -> a folder outside."""
    root = tmp_path / "shapes"
    (root / "a-real").mkdir(parents=True)
    for i in range(2):
        (root / "a-real" / f"{i}.png").write_bytes(png((200, 30, 30)))
    away = outside / "photos"
    away.mkdir()
    for i in range(2):
        (away / f"{i}.png").write_bytes(png((10, 10, 10)))
    (root / "b-linked").symlink_to(away, target_is_directory=True)
    (root / "a-real" / "z-link.png").symlink_to(away / "0.png")
    return root


def test_sample_rows_never_show_a_linked_image(tmp_path, dataset):
    c = client(tmp_path / "runs", [dataset])
    real = Image.open(io.BytesIO(c.get("/api/datasets/folder/shapes/samples/0.png").content))
    linked = Image.open(io.BytesIO(c.get("/api/datasets/folder/shapes/samples/1.png").content))
    assert real.width == 2 * real.height + 2  # two real tiles: the linked file in it skipped
    assert linked.convert("RGB").getextrema() == ((255, 255), (255, 255), (255, 255))  # empty


def test_the_health_image_of_a_linked_file_is_refused(tmp_path, dataset):
    from sightline.serve.api.health import _Checked

    class Report:  # what the check reported, as the route reads it: these files among its findings
        problems: list = []
        named = {"b-linked/0.png", "a-real/z-link.png", "a-real/0.png"}

        def __getattr__(self, name: str):  # flagged_paths(), kept_paths(): the files it names
            if name.endswith("_paths"):
                return lambda *args, **kwargs: set(self.named)
            raise AttributeError(name)

    c = client(tmp_path / "runs", [dataset])
    c.app.state.health_reports = {"shapes": _Checked(report=Report())}
    url = "/api/datasets/folder/shapes/image"
    assert c.get(url, params={"path": "a-real/0.png"}).status_code == 200
    for path in ("b-linked/0.png", "a-real/z-link.png"):
        r = c.get(url, params={"path": path})
        assert r.status_code == 403 and "symbolic link" in r.json()["error"], (path, r.text)


def test_a_zip_member_stored_as_a_link_is_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.png", png())
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (0o120777 << 16) | 0  # a symbolic link, as zip -y stores one
        z.writestr(info, "/etc/passwd")
    items = {i.name: i for i in expand_uploads([("a.zip", buf.getvalue())], 1 << 20)}
    assert items["a.zip/ok.png"].data is not None
    assert items["a.zip/link.png"].data is None and "symbolic link" in items["a.zip/link.png"].error
