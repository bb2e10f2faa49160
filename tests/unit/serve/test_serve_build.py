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
    assert r.status_code == 201 and r.json() == {
        "name": "shapes",
        "classes": {},
        "waiting": 0,
        "undo": None,
    }
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


# ------------------------------------------------------------ thumbnails, removal, undo
def made(c: TestClient, mine, files: dict[str, bytes]) -> object:
    """Dataset ``d`` with class ``c`` holding ``files``, oldest first (their times set apart)."""
    import os

    c.post("/api/datasets/folder", json={"name": "d"})
    c.post("/api/datasets/folder/d/classes", json={"name": "c"})
    folder = mine / "d" / "c"
    for i, (name, data) in enumerate(files.items()):
        (folder / name).write_bytes(data)
        os.utime(folder / name, ns=(1_000_000_000 * (i + 1),) * 2)
    return folder


def test_a_class_lists_its_images_newest_first_as_small_pictures(api):
    c, mine = api
    folder = made(c, mine, {"old.png": png(10), "mid.png": png(20), "big.png": png(30, (600, 400))})
    (folder / ".hidden.png").write_bytes(png(1))
    (folder / "notes.txt").write_text("no image")
    (folder / "sub").mkdir()
    r = c.get("/api/datasets/folder/d/classes/c/images", params={"limit": 2})
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["total"] == 3 and [i["file"] for i in listed["images"]] == ["big.png", "mid.png"]
    rest = c.get("/api/datasets/folder/d/classes/c/images", params={"offset": 2}).json()
    assert [i["file"] for i in rest["images"]] == ["old.png"]
    assert c.get("/api/datasets/folder/d/classes/c/images", params={"limit": 1000}).status_code in (
        400,
        422,
    )
    big = listed["images"][0]
    r = c.get("/api/datasets/folder/d/classes/c/images/big.png", params={"v": big["v"]})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "max-age" in r.headers["cache-control"]
    with Image.open(io.BytesIO(r.content)) as img:
        assert max(img.size) <= 128 and img.size[0] > img.size[1]
    with Image.open(
        io.BytesIO(c.get("/api/datasets/folder/d/classes/c/images/old.png").content)
    ) as img:
        assert img.size[0] == img.size[1] and 64 <= img.size[0] <= 128  # a 24 px one enlarged
    assert c.get("/api/datasets/folder/d/classes/nope/images").status_code == 404


def test_pictures_refuse_names_out_of_the_class_folder_and_links(api, tmp_path):
    import os

    c, mine = api
    folder = made(c, mine, {"a.png": png(10)})
    (tmp_path / "secret.png").write_bytes(png(99))
    c.post("/api/datasets/folder/d/classes", json={"name": "other"})
    (mine / "d" / "other" / "o.png").write_bytes(png(98))  # in the dataset, another class
    os.symlink(tmp_path / "secret.png", folder / "evil.png")
    assert [
        i["file"] for i in c.get("/api/datasets/folder/d/classes/c/images").json()["images"]
    ] == ["a.png"]
    r = c.get("/api/datasets/folder/d/classes/c/images/evil.png")
    assert r.status_code == 403 and "symbolic link" in r.json()["error"]
    for bad in ("..%2F..%2F..%2Fsecret.png", "..%2Fother%2Fo.png", "%2E%2E", ".hidden.png", "notes.txt",
                "a.png%00.png", "sub%5Ca.png", "missing.png"):  # fmt: skip
        r = c.get(f"/api/datasets/folder/d/classes/c/images/{bad}")
        assert r.status_code in (400, 403, 404, 422), (bad, r.status_code)
        assert not r.headers["content-type"].startswith("image/"), bad
    from sightline.data.builder import class_image
    from sightline.errors import DataError

    for bad in ("../other/o.png", "other/o.png", "..", "/etc/passwd.png"):  # the route lets none
        with pytest.raises(DataError):  # through, and the builder refuses them itself
            class_image(mine / "d", "c", bad)
    os.symlink(folder, mine / "d" / "linked")
    assert c.get("/api/datasets/folder/d/classes/linked/images").status_code == 403
    assert c.get("/api/datasets/folder/d/classes/linked/images/a.png").status_code == 403


def test_removing_an_image_sets_it_aside_and_undo_puts_it_back_unchanged(api, tmp_path):
    import os

    c, mine = api
    folder = made(c, mine, {"a.png": png(10), "b.png": png(20)})
    before = (folder / "a.png").read_bytes()
    r = c.post("/api/datasets/folder/d/classes/c/images/a.png/remove")
    assert r.status_code == 200, r.text
    gone = r.json()
    assert gone["classes"] == {"c": 1} and gone["removed"] == ["c/a.png"]
    assert gone["undo"]["what"] == "put back c/a.png"
    assert not (folder / "a.png").exists()
    assert (mine / "d" / ".sightline-quarantine" / "c" / "a.png").read_bytes() == before
    listed = c.get("/api/datasets/folder/d/classes/c/images").json()
    assert [i["file"] for i in listed["images"]] == ["b.png"]
    assert c.get("/api/datasets/folder/d/classes").json()["undo"] == gone["undo"]
    # a removal of what is not there, or is a link, is refused and moves nothing
    assert c.post("/api/datasets/folder/d/classes/c/images/a.png/remove").status_code == 404
    os.symlink(tmp_path, folder / "x.png")
    r = c.post("/api/datasets/folder/d/classes/c/images/x.png/remove")
    assert r.status_code == 403 and (folder / "x.png").is_symlink()
    os.unlink(folder / "x.png")
    r = c.post("/api/datasets/folder/d/put-back", json={"fix": gone["undo"]["fix"] + 1})
    assert r.status_code == 409 and "reload" in r.json()["error"]
    r = c.post("/api/datasets/folder/d/put-back", json={"fix": gone["undo"]["fix"]})
    assert r.status_code == 200, r.text
    assert r.json()["classes"] == {"c": 2} and r.json()["restored"] == ["c/a.png"]
    assert (folder / "a.png").read_bytes() == before and r.json()["undo"] is None
    assert not (mine / "d" / ".sightline-quarantine" / "c" / "a.png").exists()
    assert c.post("/api/datasets/folder/d/put-back", json={}).status_code == 409  # nothing left


def test_removing_a_class_sets_every_split_aside_and_undo_puts_it_back(api):
    c, mine = api
    root = mine / "s"
    for split, cls, n in (("train", "a", 3), ("train", "b", 2), ("test", "a", 1), ("test", "b", 1)):
        (root / split / cls).mkdir(parents=True)
        for i in range(n):
            (root / split / cls / f"{i}.png").write_bytes(png(10 * i + n))
    r = c.post("/api/datasets/folder/s/classes/a/remove")
    assert r.status_code == 200, r.text
    assert r.json()["classes"] == {"b": 2} and sorted(r.json()["removed"]) == ["test/a", "train/a"]
    assert r.json()["undo"]["what"] == "put back class a"
    aside = root / ".sightline-quarantine"
    assert (
        len(list((aside / "train" / "a").iterdir())) == 3
        and (aside / "test" / "a" / "0.png").is_file()
    )
    assert c.post("/api/datasets/folder/s/classes/a/remove").status_code == 404
    assert c.post("/api/datasets/folder/s/classes/..%2Fb/remove").status_code in (400, 404)
    # a class made again under the name: Undo says so and moves nothing
    c.post("/api/datasets/folder/s/classes", json={"name": "a"})
    r = c.post("/api/datasets/folder/s/put-back", json={})
    assert r.status_code == 409 and "train/a" in r.json()["error"]
    assert (aside / "train" / "a" / "0.png").is_file()
    c.post("/api/datasets/folder/s/classes/a/rename", json={"name": "a2"})
    r = c.post("/api/datasets/folder/s/put-back", json={})
    assert r.status_code == 200, r.text
    assert r.json()["classes"] == {"a": 3, "a2": 0, "b": 2}
    assert (root / "test" / "a" / "0.png").is_file() and not (aside / "train" / "a").exists()


def test_a_linked_class_cannot_be_removed(api, tmp_path):
    import os

    c, mine = api
    made(c, mine, {"a.png": png(10)})
    (tmp_path / "other").mkdir()
    os.symlink(tmp_path / "other", mine / "d" / "elsewhere")
    r = c.post("/api/datasets/folder/d/classes/elsewhere/remove")
    assert r.status_code == 403 and "symbolic link" in r.json()["error"]
    assert (mine / "d" / "elsewhere").is_symlink() and not (
        mine / "d" / ".sightline-quarantine"
    ).exists()
