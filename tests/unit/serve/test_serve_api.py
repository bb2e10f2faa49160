"""The REST API (sightline.serve): every endpoint and every refusal, on a tiny run trained once.

One toy MLP run (12x12 gray squares, ~1 s of training) is made per module; a test that changes
runs works on its own copy of the runs folder. Requests go through FastAPI's TestClient, to
http://127.0.0.1 (the host check refuses other names when no token is set).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from test_train import fit_toy, make_dataset  # noqa: E402

import sightline  # noqa: E402
from sightline.cli import main  # noqa: E402
from sightline.errors import ConfigError  # noqa: E402
from sightline.run import checkpoint  # noqa: E402
from sightline.serve import create_app  # noqa: E402
from sightline.serve.core.guards import BodyLimit  # noqa: E402

CSRF = {"X-Sightline-Request": "1"}
RUN = "toy"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(runs folder, toy data): one finished run named "toy"."""
    root = tmp_path_factory.mktemp("served") / "runs"
    data = make_dataset()
    fit_toy(data, root, name=RUN, epochs=2)
    return root, data


@pytest.fixture
def runs(trained, tmp_path) -> Path:
    """A private copy of the runs folder: tests may delete, break and replace runs in it."""
    root = tmp_path / "runs"
    shutil.copytree(trained[0], root)
    return root


def client(
    runs_dir,
    raise_server_exceptions: bool = True,
    base_url: str = "http://127.0.0.1",
    follow_redirects: bool = True,
    **options,
) -> TestClient:
    return TestClient(
        create_app(runs_dir=runs_dir, **options),
        base_url=base_url,
        raise_server_exceptions=raise_server_exceptions,
        follow_redirects=follow_redirects,
    )


def png(data, i: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(data.test.images[i, 0].numpy()).save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A 100-byte PNG that declares 2.5 gigapixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def upload(c: TestClient, files: list[tuple[str, bytes]], headers=CSRF, **form):
    return c.post(
        "/api/predict",
        files=[("files", (name, body)) for name, body in files],
        data={k: str(v) for k, v in form.items()},
        headers=headers,
    )


def assert_error(r, status: int, match: str = "") -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    assert isinstance(body.get("error"), str) and match.lower() in body["error"].lower(), body
    return body


# ---------------------------------------------------------------------------- health, runs
def test_health_and_docs(trained):
    c = client(trained[0])
    r = c.get("/api/health")
    assert r.status_code == 200
    limits = {"max_upload_bytes": 20 * 2**20, "max_pixels": 24_000_000, "max_files": 1000}
    assert r.json() == {"status": "ok", "version": sightline.__version__, "limits": limits}
    paths = c.get("/openapi.json").json()["paths"]
    assert {
        "/api/health",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/predict",
        "/api/datasets",
    } <= set(paths)


def test_the_api_docs_work_offline(trained):
    """/docs is Swagger UI from the package's own files: no CDN, so it works without internet."""
    c = client(trained[0])
    page = c.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", page.text), (
        "an asset from another site"
    )
    for url in re.findall(r"""(?:src|href)=["']?(/docs-assets/[^"' >]+)""", page.text):
        r = c.get(url)
        assert r.status_code == 200 and len(r.content) > 500, url
    assert (
        c.get("/docs-assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    for bad in ("/docs-assets/index.html", "/docs-assets/..%2F__init__.py", "/docs-assets/%2e%2e"):
        assert c.get(bad).status_code == 404, bad


def test_runs_are_listed_and_a_broken_one_never_hides_the_others(runs):
    (runs / "bad").mkdir()
    (runs / "bad" / "config.json").write_text("{ not json")
    (runs / "not-a-run").mkdir()  # no config, no status: not listed
    (runs / ".deleted-old-1234").mkdir()  # a delete's hidden trash: not listed
    (runs / ".deleted-old-1234" / "config.json").write_text("{}")
    r = client(runs).get("/api/runs")
    assert r.status_code == 200
    rows = {row["name"]: row for row in r.json()["runs"]}
    assert set(rows) == {RUN, "bad"}
    assert (
        rows[RUN]["status"] == "finished"
        and rows[RUN]["model"] == "mlp"
        and rows[RUN]["epochs_done"] == 2
    )
    assert rows["bad"]["status"] == "broken" and "config.json" in rows["bad"]["error"]


def test_run_detail(trained):
    r = client(trained[0]).get(f"/api/runs/{RUN}")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == RUN and body["status"] == "finished"
    assert [row["epoch"] for row in body["history"]] == [1, 2] and "val_accuracy" in body[
        "history"
    ][0]
    assert body["classes"] == ["class0", "class1", "class2"]
    assert body["config"]["model"]["name"] == "mlp" and "evaluation" in body


def test_non_finite_metrics_are_sent_as_null(runs):
    csv_path = runs / RUN / "metrics.csv"
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("loss")] = "nan"
    csv_path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    r = client(runs).get(f"/api/runs/{RUN}")
    assert r.status_code == 200 and "NaN" not in r.text
    assert r.json()["history"][0]["loss"] is None


def test_unknown_run_endpoint_and_method(trained):
    c = client(trained[0])
    assert_error(c.get("/api/runs/nope"), 404, "no run named 'nope'")
    assert_error(c.delete("/api/runs/nope", headers=CSRF), 404, "no run named")
    assert_error(c.get("/api/nothing-here"), 404, "no such endpoint")
    assert_error(c.put("/api/runs", headers=CSRF), 405, "not allowed")


def test_run_ids_never_leave_the_runs_folder(runs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps({"model": {}, "data": {}, "train": {}}))
    (runs / "link").symlink_to(outside, target_is_directory=True)  # a run name that is a link out
    (runs / "inner-link").symlink_to(runs / RUN, target_is_directory=True)  # a link to another run
    c = client(runs)
    bad_ids = [
        "..",
        "%2e%2e",
        "%2E%2E%2Foutside",
        "..%2F..%2Foutside",
        "%2Fetc",
        str(outside).replace("/", "%2F"),
        ".hidden",
        "a%5Cb",
        "%00",
        "link",
        "inner-link",
        "x" * 300,
    ]
    for run_id in bad_ids:
        for r in (c.get(f"/api/runs/{run_id}"), c.delete(f"/api/runs/{run_id}", headers=CSRF)):
            assert 400 <= r.status_code <= 404 and "error" in r.json(), (
                run_id,
                r.status_code,
                r.text,
            )
    for ref in ("../outside", str(outside), "link", "toy/../../outside"):
        assert 400 <= upload(c, [("a.png", b"x")], run=ref).status_code <= 404, ref
    assert (outside / "config.json").is_file() and (runs / RUN / "config.json").is_file()
    assert (runs / "link").is_symlink() and (runs / "inner-link").is_symlink()
    assert [row["name"] for row in c.get("/api/runs").json()["runs"]] == [
        RUN
    ]  # links: not listed either


# ---------------------------------------------------------------------------- delete
def test_delete_refuses_another_sites_page_then_removes_the_run(runs):
    c = client(runs)
    cross = {"Sec-Fetch-Site": "cross-site"}  # what a browser says of a page elsewhere
    assert_error(c.delete(f"/api/runs/{RUN}", headers=cross), 403, "cross-site request refused")
    assert (runs / RUN).is_dir()
    r = c.delete(f"/api/runs/{RUN}", headers=CSRF)
    assert r.status_code == 200 and r.json() == {"deleted": RUN}
    assert not (runs / RUN).exists() and list(runs.iterdir()) == []  # no trash left behind
    assert_error(c.get(f"/api/runs/{RUN}"), 404)
    assert c.get("/api/runs").json()["runs"] == []


def test_a_running_run_is_not_deleted(runs):
    (runs / RUN / "status.json").write_text(json.dumps({"status": "running"}))
    assert_error(client(runs).delete(f"/api/runs/{RUN}", headers=CSRF), 409, "training")
    assert (runs / RUN / "best.safetensors").is_file()


def test_delete_evicts_the_cached_model(runs):
    c = client(runs)
    app_models = c.app.state.sightline.models
    assert upload(c, [("a.png", b"not an image")], run=RUN).status_code == 415  # loads the model
    assert app_models.names() == [RUN]
    assert c.delete(f"/api/runs/{RUN}", headers=CSRF).status_code == 200
    assert app_models.names() == []


# ---------------------------------------------------------------------------- predict
def test_predict_one_image_matches_the_python_api(trained):
    root, data = trained
    r = upload(client(root), [("boot.png", png(data, 0))])  # no run: the newest
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run"] == RUN
    (row,) = body["results"]
    expected = sightline.load_run(RUN, root).predict(png(data, 0))[0]
    assert row["file"] == "boot.png" and row["index"] == int(expected.argmax())
    assert row["closest"] == f"class{row['index']}" == row["top_k"][0]["label"]
    # the toy's test images, drawn as PNGs, are framed unlike its training tensors: its
    # "none of these" score may say unknown, the closest class still given
    assert row["label"] in (row["closest"], "unknown")
    probs = [t["probability"] for t in row["top_k"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert probs[0] == pytest.approx(float(expected.max()), abs=1e-5)


def test_predict_several_with_bad_files_reported_in_order(trained):
    root, data = trained
    files = [
        ("a.png", png(data, 0)),
        ("notes.txt", b"hello"),
        ("empty.png", b""),
        ("bomb.png", bomb_png()),
        ("c.png", png(data, 20)),
    ]
    r = upload(client(root), files, run=RUN, k=2)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["file"] for x in results] == [name for name, _ in files]
    assert "label" in results[0] and "label" in results[4] and len(results[0]["top_k"]) == 2
    assert "not a recognised image" in results[1]["error"]
    assert "empty" in results[2]["error"]
    assert "too large" in results[3]["error"]  # the bomb is refused, not decoded
    assert results[4]["index"] == int(
        sightline.load_run(RUN, root).predict(png(data, 20))[0].argmax()
    )


def test_only_bad_files_is_415(trained):
    body = assert_error(
        upload(client(trained[0]), [("a.txt", b"plain text"), ("b.gif", b"GIF89a")]),
        415,
        "no image could be classified",
    )
    assert [x["file"] for x in body["results"]] == ["a.txt", "b.gif"] and all(
        "error" in x for x in body["results"]
    )
    assert_error(upload(client(trained[0]), [("bomb.png", bomb_png())]), 415, "too large")


def test_top_k_is_validated_and_clipped(trained):
    root, data = trained
    c = client(root)
    assert len(upload(c, [("a.png", png(data))], k=1).json()["results"][0]["top_k"]) == 1
    assert (
        len(upload(c, [("a.png", png(data))], k=50).json()["results"][0]["top_k"]) == 3
    )  # 3 classes
    assert_error(upload(c, [("a.png", png(data))], k=0), 422, "k:")
    assert_error(upload(c, [("a.png", png(data))], k="three"), 422, "k:")
    assert_error(c.post("/api/predict", data={"k": "1"}, headers=CSRF), 422, "files")
    # A script needs no extra header (curl -F files=@x.jpg); another site's page is refused.
    assert upload(c, [("a.png", png(data))], headers={}).status_code == 200
    for browser in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": "http://evil.example"}, {"Origin": "null"}):  # fmt: skip
        assert_error(upload(c, [("a.png", png(data))], headers=browser), 403, "cross-site")
    for own in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": "http://127.0.0.1"}):
        assert upload(c, [("a.png", png(data))], headers=own).status_code == 200, own


def test_predict_without_runs_or_checkpoint(tmp_path, trained):
    assert_error(upload(client(tmp_path / "empty"), [("a.png", png(trained[1]))]), 404, "no runs")
    runs = tmp_path / "runs"
    shutil.copytree(
        trained[0] / RUN, runs / "fresh", ignore=shutil.ignore_patterns("*.safetensors")
    )
    assert_error(
        upload(client(runs), [("a.png", png(trained[1]))], run="fresh"), 400, "no saved model"
    )


def test_upload_size_is_limited_with_and_without_content_length(trained):
    root, data = trained
    c = client(root, max_upload_bytes=10_000)
    big = [("big.png", b"\x89PNG" + os.urandom(20_000))]
    assert_error(upload(c, big), 413, "too large")
    body = (
        b'--b\r\nContent-Disposition: form-data; name="files"; filename="x.png"\r\n\r\n'
        + b"0" * 50_000
    )

    def chunks():  # a generator body: sent chunked, with no Content-Length
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = c.post(
        "/api/predict",
        content=chunks(),
        headers={**CSRF, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "too large")
    assert upload(c, [("a.png", png(data))]).status_code == 200  # under the limit: fine


def test_body_limit_stops_reading_a_stream_at_the_limit():
    reads = 0

    async def app(scope, receive, send):  # reads the whole body, as a form parser does
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read it all"})

    async def receive():
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}  # an endless upload

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/predict", "headers": []}
    asyncio.run(BodyLimit(app, max_bytes=1_000)(scope, receive, send))
    assert reads == 11 and sent[0]["status"] == 413 and b"too large" in sent[1]["body"]


# ---------------------------------------------------------------------------- model cache
def test_the_model_is_loaded_once_and_again_when_the_checkpoint_changes(runs, trained, monkeypatch):
    calls: list[str] = []
    real = checkpoint.load_model

    def counting(path, device="cpu"):
        calls.append(Path(path).name)
        return real(path, device)

    monkeypatch.setattr(checkpoint, "load_model", counting)
    reads: list[str] = []
    real_read = checkpoint.read_model_file
    monkeypatch.setattr(
        checkpoint, "read_model_file", lambda p: reads.append(str(p)) or real_read(p)
    )
    c = client(runs)
    image = [("a.png", png(trained[1]))]
    first = upload(c, image, run=RUN).json()
    assert calls == ["best.safetensors"] and len(reads) == 1  # the metadata came with the load
    assert upload(c, image, run=RUN).json() == first and upload(c, image).json() == first
    assert calls == ["best.safetensors"] and len(reads) == 1  # not read again
    best = runs / RUN / "best.safetensors"
    replacement = best.with_suffix(".new")
    shutil.copyfile(runs / RUN / "last.safetensors", replacement)
    os.replace(replacement, best)  # as training saves it: atomically, a new file
    assert upload(c, image, run=RUN).status_code == 200
    assert calls == ["best.safetensors"] * 2


def test_the_cache_is_bounded_and_safe_under_concurrent_requests(runs, trained, monkeypatch):
    shutil.copytree(runs / RUN, runs / "other")
    calls: list[str] = []
    real = checkpoint.load_model
    monkeypatch.setattr(
        checkpoint, "load_model", lambda p, d="cpu": calls.append(Path(p).parent.name) or real(p, d)
    )
    c = client(runs, model_cache_size=1)
    image = [("a.png", png(trained[1]))]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: upload(c, image, run=RUN).status_code, range(16)))
    assert codes == [200] * 16 and calls == [RUN]  # loaded once, however many asked at once
    upload(c, image, run="other")
    upload(c, image, run=RUN)
    assert calls == [RUN, "other", RUN] and c.app.state.sightline.models.names() == [RUN]


# ---------------------------------------------------------------------------- access
def test_a_token_is_required_when_set(trained):
    c = client(
        trained[0], token="s3cret-0123456789abcdef", base_url="http://example.org"
    )  # any host name, with a token
    r = c.get("/api/runs")
    assert_error(r, 401, "token")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(c.get("/api/runs", headers={"Authorization": "Bearer wrong"}), 403, "wrong token")
    assert_error(c.get("/api/runs", headers={"X-Sightline-Token": "s3cre"}), 403, "wrong token")
    assert (
        c.get("/api/runs", headers={"Authorization": "Bearer s3cret-0123456789abcdef"}).status_code
        == 200
    )
    assert (
        c.get("/api/datasets", headers={"X-Sightline-Token": "s3cret-0123456789abcdef"}).status_code
        == 200
    )
    assert c.get("/api/health").status_code == 200  # open: a liveness probe
    assert_error(upload(c, [("a.png", png(trained[1]))]), 401)
    ok = upload(
        c,
        [("a.png", png(trained[1]))],
        headers={**CSRF, "Authorization": "Bearer s3cret-0123456789abcdef"},
    )
    assert ok.status_code == 200


def test_a_browser_gets_the_token_once_and_keeps_it_as_a_cookie(trained):
    c = client(
        trained[0],
        token="s3 cret-0123456789abcdef",
        base_url="http://example.org",
        follow_redirects=False,
    )
    refused = c.get("/docs")
    assert (
        refused.status_code == 401 and "?token=" in refused.text
    )  # a page: a page that says what to do
    assert c.get("/docs?token=nope").status_code == 403
    r = c.get("/docs?x=1&token=s3+cret-0123456789abcdef")
    assert (
        r.status_code == 303 and r.headers["location"] == "/docs?x=1"
    )  # the token leaves the address bar
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert c.get("/docs").status_code == 200  # the client keeps the cookie, as a browser does
    assert c.get("/api/runs").status_code == 200
    assert_error(
        c.post("/api/jobs", json={}, headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross-site"
    )  # a cookie sent by another site's page never changes anything
    c.cookies.clear()
    c.cookies.set("sightline_token", "wrong")
    assert_error(c.get("/api/runs"), 403, "wrong token")


def test_other_host_names_are_refused_without_a_token(trained):
    assert_error(
        client(trained[0], base_url="http://evil.example").get("/api/health"),
        403,
        "host 'evil.example'",
    )
    for base in ("http://localhost:8000", "http://[::1]:8000", "http://127.0.0.1:9"):
        assert client(trained[0], base_url=base).get("/api/health").status_code == 200, base
    assert (
        client(trained[0], base_url="http://box.lan", allowed_hosts=["box.lan"])
        .get("/api/runs")
        .status_code
        == 200
    )


def test_serve_refuses_a_public_address_without_a_token(monkeypatch, tmp_path, capsys):
    import uvicorn

    from sightline.serve import serve
    from sightline.serve.core.guards import is_loopback

    monkeypatch.delenv("SIGHTLINE_TOKEN", raising=False)
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        with pytest.raises(ConfigError, match="refusing to serve"):
            serve(host, 0, runs_dir=tmp_path)
    assert (
        is_loopback("127.0.0.1")
        and is_loopback("localhost")
        and is_loopback("::1")
        and not is_loopback("0.0.0.0")
    )
    started: list = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: started.append((self.config.app, sockets))
    )
    monkeypatch.setenv("SIGHTLINE_TOKEN", "from-the-environment")
    main(
        ["serve", "--host", "0.0.0.0", "--port", "0", "--runs-dir", str(tmp_path), "--workers", "3"]
    )
    (app, (sock,)) = started[0]
    out = capsys.readouterr().out
    assert re.search(r"at http://0\.0\.0\.0:[1-9][0-9]*/ ", out)  # the port it got
    assert re.search(
        r"Open http://0\.0\.0\.0:[0-9]+/\?token=from-the-environment ", out
    )  # a browser's way in
    assert app.state.jobs.max_workers == 3
    r = TestClient(app).get("/api/runs", headers={"Authorization": "Bearer from-the-environment"})
    assert r.status_code == 200


def test_unexpected_errors_are_json_without_a_traceback(trained, monkeypatch):
    import sightline.run

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sightline.run, "list_runs", boom)
    r = client(trained[0], raise_server_exceptions=False).get("/api/runs")
    body = assert_error(r, 500, "internal server error (RuntimeError)")
    assert "secret internals" not in r.text and "Traceback" not in r.text and set(body) == {"error"}


# ---------------------------------------------------------------------------- datasets
def test_datasets_lists_built_in_ones_and_data_dirs(trained, tmp_path):
    photos = tmp_path / "photos"
    for cls, n in (("cat", 3), ("dog", 2)):
        (photos / cls).mkdir(parents=True)
        for i in range(n):
            (photos / cls / f"{i}.png").write_bytes(b"not decoded, only counted")
    (photos / "cat" / "notes.txt").write_text("not an image file")
    (photos / "dog" / ".hidden.png").write_bytes(b"")
    c = client(trained[0], data_dirs=[photos, tmp_path / "gone"])
    assert (tmp_path / "gone").is_dir()  # a missing --data-dir is made: datasets can be built in it
    assert c.get("/api/datasets").json()["collections"] == ["gone"]
    (tmp_path / "gone").rmdir()  # and then it goes away
    r = c.get("/api/datasets")
    assert r.status_code == 200
    builtin = {d["name"]: d for d in r.json()["builtin"]}
    assert {"fashion-mnist", "mnist", "cifar10"} <= set(builtin)
    assert len(builtin["fashion-mnist"]["classes"]) == 10 and builtin["mnist"]["shape"] == [
        1,
        28,
        28,
    ]
    assert builtin["cifar10"]["train"] == 50_000
    folder, gone = r.json()["folders"]
    assert folder["name"] == "photos" and folder["images"] == 5
    assert folder["classes"] == [{"name": "cat", "images": 3}, {"name": "dog", "images": 2}]
    assert gone["name"] == "gone" and "does not exist" in gone["error"]


# ---------------------------------------------------------------------------- CLI, layering
def test_cli_serve_names_the_install_command_when_packages_are_missing(monkeypatch, capsys):
    import sightline.serve

    monkeypatch.setattr(sightline.serve, "_missing_packages", lambda: ["fastapi", "uvicorn"])
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "sightline[serve]"' in err and "fastapi, uvicorn" in err
    with pytest.raises(SystemExit):
        main(["serve", "--port", "70000"])
    assert "0..65535" in capsys.readouterr().err


def test_nothing_below_the_server_imports_it():
    pkg = Path(sightline.__file__).parent
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg).as_posix()
        if rel.startswith("serve/"):
            continue
        text = path.read_text()
        for banned in ("fastapi", "uvicorn", "starlette", "multipart"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, (rel, banned)
        if rel != "cli/serve_cmd.py":
            assert "sightline.serve" not in text, rel
    code = (
        "import sys, sightline.cli, sightline.run, sightline.infer.predict\n"
        "sightline.cli.build_parser()\n"
        "assert not {'fastapi', 'uvicorn', 'starlette'} & set(sys.modules), 'a server package was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_serve_stops_at_start_on_a_bad_cpu_malloc_setting(monkeypatch, tmp_path, capsys):
    # Predictions and jobs would each fail with it; the server says so once, before it listens.
    import uvicorn

    started: list = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self))
    monkeypatch.setenv("SIGHTLINE_CPU_MALLOC", "jemalloc")
    code = main(["serve", "--port", "0", "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and not started
    assert "SIGHTLINE_CPU_MALLOC='jemalloc'" in err and "'default'" in err
    monkeypatch.setenv("SIGHTLINE_CPU_MALLOC", "off")
    assert main(["serve", "--port", "0", "--runs-dir", str(tmp_path)]) == 0 and len(started) == 1


def test_predict_and_inspect_say_none_of_these(trained):
    """The run's "none of these" answer reaches the REST API: per image its ood_score, whether
    it is unknown and the closest class, switched by ``unknown``; the same for /api/inspect."""
    root, data = trained
    threshold = sightline.load_run(root / RUN).metadata()["ood"]["threshold"]
    buf = io.BytesIO()
    Image.fromarray(np.full((12, 12), 250, np.uint8)).save(buf, format="PNG")
    odd = buf.getvalue()
    with client(root) as c:
        files = [("files", ("a.png", png(data, 0))), ("files", ("odd.png", odd))]
        r = c.post("/api/predict", files=files, data={"run": RUN}, headers=CSRF)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["unknown_threshold"] == pytest.approx(threshold)
        rows = {row["file"]: row for row in body["results"]}
        assert rows["odd.png"]["unknown"] is True and rows["odd.png"]["label"] == "unknown"
        assert rows["odd.png"]["closest"] in data.classes
        assert rows["odd.png"]["ood_score"] > threshold
        assert "ood_score" in rows["a.png"] and "closest" in rows["a.png"]
        off = c.post("/api/predict", files=files, data={"run": RUN, "unknown": "off"}, headers=CSRF)
        assert off.json()["unknown_threshold"] is None
        assert not any(row["unknown"] for row in off.json()["results"])
        bad = c.post(
            "/api/predict", files=files, data={"run": RUN, "unknown": "maybe"}, headers=CSRF
        )
        assert bad.status_code == 400 and "unknown" in bad.json()["error"]
        seen = c.post("/api/inspect", files={"file": ("odd.png", odd)}, data={"run": RUN},
                      headers=CSRF)  # fmt: skip
        assert seen.status_code == 200, seen.text
        inspected = seen.json()
        assert inspected["unknown"] is True and inspected["label"] == "unknown"
        assert inspected["closest"] in data.classes
        assert inspected["ood_score"] == pytest.approx(rows["odd.png"]["ood_score"], abs=1e-2)
