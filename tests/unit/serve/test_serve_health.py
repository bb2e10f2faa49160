"""The Health API (/api/datasets/folder/{name}/check, health, review, undo, image): a
--data-dir folder with planted mistakes is checked, reviewed file by file and undone, through
the same journal as `sightline check --fix`; paths a client makes up are refused."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402
from planted_folder import blobs, plant  # noqa: E402

from sightline.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("health") / "digits"
    images, labels = blobs(300, seed=7)
    truth = plant(
        root, images, labels, list("abcde"), test=60, copies=4, conflicts=2, near=4, leaks=3
    )
    return root, truth


@pytest.fixture
def api(planted, tmp_path):
    root, truth = planted
    folder = tmp_path / "digits"
    shutil.copytree(root, folder)
    app = create_app(runs_dir=tmp_path / "runs", data_dirs=[folder], start_workers=False)
    return TestClient(app, base_url="http://127.0.0.1"), folder, truth


def test_a_folder_is_checked_and_its_report_kept(api):
    c, folder, truth = api
    assert c.get("/api/datasets/folder/digits/health").json() == {
        "folder": "digits", "checked": False, "checking": False}  # fmt: skip
    assert c.post("/api/datasets/folder/digits/undo").status_code == 409  # nothing checked
    r = c.post("/api/datasets/folder/digits/check", json={"labels": False})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["summary"]["corrupt"] == len(truth.corrupt) and report["summary"]["leak"] == 3
    assert report["source"] == "digits" and str(folder) not in r.text  # no server path shown
    assert c.get("/api/datasets/folder/digits/health").json()["problems"] == report["problems"]
    r = c.post("/api/datasets/folder/nothere/check", json={})
    assert r.status_code == 404
    assert c.post("/api/datasets/folder/digits/check", json={"labels": 2}).status_code == 422


def test_review_moves_one_file_at_a_time_and_undo_puts_it_back(api):
    c, folder, truth = api
    report = c.post("/api/datasets/folder/digits/check", json={"labels": True}).json()
    suspect = next(p for p in report["problems"] if p["kind"] == "label")
    assert set(suspect["neighbours"]) == set(report["classes"])  # one picture per class
    r = c.post("/api/datasets/folder/digits/review",
               json={"path": suspect["path"], "action": "move", "to": suspect["suggested"]})  # fmt: skip
    assert r.status_code == 200, r.text
    moved = r.json()["moved"]
    assert not (folder / suspect["path"]).exists() and (folder / moved["to"]).exists()
    assert suspect["path"] not in {p.get("path") for p in r.json()["problems"]}
    assert r.json()["can_undo"] == 1
    leak = next(p for p in report["problems"] if p["kind"] == "leak")
    r = c.post(
        "/api/datasets/folder/digits/review",
        json={"path": leak["paths"][0], "action": "quarantine"},
    )
    assert (folder / ".sightline-quarantine" / leak["paths"][0]).exists()
    assert r.json()["summary"]["leak"] == report["summary"]["leak"] - 1
    r = c.post("/api/datasets/folder/digits/undo")
    assert r.status_code == 200 and r.json()["restored"] == [leak["paths"][0]]
    assert (folder / leak["paths"][0]).exists()
    assert r.json()["summary"]["leak"] == report["summary"]["leak"]  # the finding is back
    c.post("/api/datasets/folder/digits/undo")
    assert (folder / suspect["path"]).exists()
    assert c.post("/api/datasets/folder/digits/undo").status_code == 409  # nothing left


def test_keep_remembers_and_bad_requests_are_refused(api):
    c, folder, truth = api
    report = c.post("/api/datasets/folder/digits/check", json={"labels": False}).json()
    near = next(p for p in report["problems"] if p["kind"] == "near-duplicate")
    r = c.post(
        "/api/datasets/folder/digits/review", json={"path": near["paths"][1], "action": "keep"}
    )
    assert r.status_code == 200 and (folder / ".sightline-decisions.json").exists()
    again = c.post("/api/datasets/folder/digits/check", json={"labels": False}).json()
    assert near["paths"] not in [p.get("paths") for p in again["problems"]]
    for path in ("../../etc/passwd", "/etc/passwd", "train/a/not-reported.png"):
        r = c.post(
            "/api/datasets/folder/digits/review", json={"path": path, "action": "quarantine"}
        )
        assert r.status_code == 404 and "not a file the check reported" in r.json()["error"]
        assert c.get("/api/datasets/folder/digits/image", params={"path": path}).status_code == 404
    corrupt = next(p for p in again["problems"] if p["kind"] == "corrupt")["path"]
    r = c.post(
        "/api/datasets/folder/digits/review", json={"path": corrupt, "action": "move", "to": "zzz"}
    )
    assert r.status_code == 400 and "no class 'zzz'" in r.json()["error"]
    r = c.post("/api/datasets/folder/digits/review", json={"path": corrupt, "action": "move"})
    assert r.status_code == 400
    assert c.get("/api/datasets/folder/digits/image", params={"path": corrupt}).status_code == 415
    leak = next(p for p in again["problems"] if p["kind"] == "leak")["paths"][0]
    r = c.get("/api/datasets/folder/digits/image", params={"path": leak, "large": True})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


def test_keeping_is_undoable_listed_and_revocable(api):
    """Issue 51: "Keep as it is" could not be undone (Undo answered 409) and hid the finding
    from every later check with no way back."""
    c, folder, truth = api
    report = c.post("/api/datasets/folder/digits/check", json={"labels": False}).json()
    corrupt = next(p for p in report["problems"] if p["kind"] == "corrupt")
    assert corrupt["recommended"] == {"action": "quarantine", "path": corrupt["path"], "to": None}
    r = c.post(
        "/api/datasets/folder/digits/review", json={"path": corrupt["path"], "action": "keep"}
    )
    assert r.status_code == 200 and r.json()["keeping"] == corrupt["path"]
    assert corrupt["path"] in [p["path"] for p in r.json()["kept"]]  # listed apart
    assert corrupt["path"] not in [p.get("path") for p in r.json()["problems"]]
    r = c.post("/api/datasets/folder/digits/undo")  # the keep, taken back
    assert r.status_code == 200 and r.json()["restored"] == [] and len(r.json()["unkept"]) == 1
    assert corrupt["path"] in [p.get("path") for p in r.json()["problems"]]
    assert r.json()["kept"] == []
    # kept again, then revoked: reported again, also by a later check
    c.post("/api/datasets/folder/digits/review", json={"path": corrupt["path"], "action": "keep"})
    again = c.post("/api/datasets/folder/digits/check", json={"labels": False}).json()
    assert [p["path"] for p in again["kept"]] == [corrupt["path"]]
    r = c.post("/api/datasets/folder/digits/revoke", json={"path": corrupt["path"]})
    assert r.status_code == 200 and r.json()["kept"] == []
    later = c.post("/api/datasets/folder/digits/check", json={"labels": False}).json()
    assert corrupt["path"] in [p.get("path") for p in later["problems"]]
    r = c.post("/api/datasets/folder/digits/revoke", json={"path": corrupt["path"]})
    assert r.status_code == 404


def test_apply_makes_every_recommended_fix_in_one_undoable_fix(api):
    """The CLI's --fix from the page: one journal entry, one Undo for the whole batch, the
    report checked again at once."""
    from sightline.cli import main

    c, folder, truth = api
    before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    report = c.post("/api/datasets/folder/digits/check", json={"labels": True}).json()
    advised = [p for p in report["problems"] if p["recommended"]]
    assert report["recommended"] == len(advised) > 0
    assert all(p["recommended"] is None for p in report["problems"] if p["kind"] == "label"
               and not p["fixable"])  # fmt: skip
    r = c.post("/api/datasets/folder/digits/apply")
    assert r.status_code == 200, r.text
    applied = r.json()["applied"]
    assert applied["quarantined"] >= len(truth.corrupt) + len(truth.leaks)
    after = r.json()
    assert not {"corrupt", "leak", "duplicate"} & set(after["summary"])  # checked again at once
    assert after["recommended"] == 0
    assert c.post("/api/datasets/folder/digits/apply").status_code == 409  # nothing left to do
    r = c.post("/api/datasets/folder/digits/undo")
    assert r.status_code == 200 and r.json()["undone"] == applied["fix"]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                   and not p.relative_to(folder).as_posix().startswith(".sightline"))  # fmt: skip
    assert files == [f for f in before if not f.startswith(".sightline")]
    assert r.json()["summary"]["corrupt"] == len(truth.corrupt)
    assert main(["check", str(folder), "--undo"]) == 0  # nothing more: the CLI agrees


def test_a_fix_that_makes_a_new_copy_shows_it_at_once(api):
    """Issue 51: after a fix the report went stale: a copy moved into its original's class
    became a same-class duplicate that no one saw until the next Check."""
    c, folder, truth = api
    c.post("/api/datasets/folder/digits/check", json={"labels": False})
    original, copy = truth.conflicts[0]  # the same image under another class
    r = c.post("/api/datasets/folder/digits/review",
               json={"path": copy, "action": "move", "to": original.split("/")[1]})  # fmt: skip
    assert r.status_code == 200, r.text
    moved = r.json()["moved"]["to"]
    same = [set(p["paths"]) for p in r.json()["problems"] if p["kind"] == "duplicate"]
    assert {original, moved} in same  # now one class, one image twice: shown without a Check
    assert not any(p.get("conflict") and copy in p["paths"] for p in r.json()["problems"])


def test_calls_during_a_first_check_wait_for_it(api, monkeypatch):
    """Until a folder's first check ends there is no report: its other calls are a 409, not a
    server error (schemathesis found review and apply answering 500 meanwhile)."""
    import threading

    import sightline.health

    c, folder, truth = api
    started, release = threading.Event(), threading.Event()
    check = sightline.health.check

    def slow_check(*args, **kwargs):
        started.set()
        release.wait(60)
        return check(*args, **kwargs)

    monkeypatch.setattr(sightline.health, "check", slow_check)
    checking = threading.Thread(
        target=c.post,
        args=("/api/datasets/folder/digits/check",),
        kwargs={"json": {"labels": False}},
    )
    checking.start()
    base = "/api/datasets/folder/digits"
    calls = [  # apply and undo last: before the fix they waited for the running check's lock
        lambda: c.get(f"{base}/image", params={"path": "a/1.png"}),
        lambda: c.post(f"{base}/review", json={"path": "a/1.png", "action": "keep"}),
        lambda: c.post(f"{base}/revoke", json={"path": "a/1.png"}),
        lambda: c.post(f"{base}/apply"),
        lambda: c.post(f"{base}/undo"),
    ]
    try:
        assert started.wait(60)
        assert c.get(f"{base}/health").json()["checking"] is True
        for call in calls:
            r = call()
            assert r.status_code == 409 and "being checked" in r.json()["error"], r.text
    finally:
        release.set()
        checking.join(120)
    assert c.get(f"{base}/health").json()["checked"] is True
