"""What a security review of ``sightline serve`` asked for (issue 36): no page can be framed by
another site, a token is strong, a client never sees the server's paths or processes, and run
files honour the umask. (Upload bounds, SSE ids and job options are tested beside their
routes.)"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from test_train import fit_toy, make_dataset  # noqa: E402

from sightline.errors import ConfigError  # noqa: E402
from sightline.serve import create_app  # noqa: E402
from sightline.serve.core.guards import check_token  # noqa: E402
from sightline.serve.core.paths import PublicPaths  # noqa: E402

RUN = "toy"
TOKEN = "a-long-enough-token-1234"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hardening") / "runs"
    fit_toy(make_dataset(), root, name=RUN, epochs=1)
    return root


def client(runs: Path, **options) -> TestClient:
    app = create_app(runs_dir=runs, start_workers=False, **options)
    return TestClient(app, base_url="http://127.0.0.1")


# ---------------------------------------------------------------------------- clickjacking
def test_no_answer_can_be_framed_by_another_site(runs):
    c = client(runs)
    answers = {
        "page": c.get("/"),
        "run page": c.get(f"/runs/{RUN}"),
        "docs": c.get("/docs"),
        "api": c.get("/api/runs"),
        "api error": c.get("/api/runs/nope"),
        "unknown url": c.get("/nowhere"),
        "refused host": TestClient(c.app, base_url="http://evil.example").get("/"),
    }
    for what, r in answers.items():
        assert r.headers["x-frame-options"] == "DENY", what
        policies = r.headers.get_list("content-security-policy")
        assert len(policies) == 1 and "frame-ancestors 'none'" in policies[0], (what, policies)


# ---------------------------------------------------------------------------- tokens
def test_a_weak_token_is_refused_and_a_strong_one_can_be_generated(runs):
    for weak in ("a", "short-token", " padded-token-with-spaces ", "x" * 15):
        with pytest.raises(ConfigError, match="at least 16 characters"):
            create_app(runs_dir=runs, token=weak, start_workers=False)
    made = {check_token("generate") for _ in range(3)}
    assert len(made) == 3 and all(len(t) >= 32 for t in made)
    assert check_token(None) is None and check_token(TOKEN) == TOKEN


def test_serve_prints_the_token_it_generates(runs, monkeypatch, capsys):
    import uvicorn

    from sightline.cli import main

    started: list = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self))
    monkeypatch.delenv("SIGHTLINE_TOKEN", raising=False)
    argv = ["serve", "--host", "0.0.0.0", "--port", "0", "--runs-dir", str(runs)]
    assert main([*argv, "--token", "generate"]) == 0
    out = capsys.readouterr().out
    token = out.split("?token=", 1)[1].split()[0]
    assert len(token) >= 32
    app = started[0].config.app
    r = TestClient(app).get("/api/runs", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert main([*argv, "--token", "a"]) != 0
    assert "at least 16 characters" in capsys.readouterr().err


# ---------------------------------------------------------------------------- paths
def test_clients_see_paths_relative_to_the_runs_folder(runs, tmp_path):
    c = client(runs, token=TOKEN)
    health = c.get("/api/health")  # open without the token: a probe
    assert health.status_code == 200 and set(health.json()) == {"status", "version", "limits"}
    assert health.json()["limits"]["max_pixels"] == 24_000_000
    auth = {"Authorization": f"Bearer {TOKEN}"}
    absolute = [str(runs.resolve()), str(Path.home())]
    answers = [
        c.get("/api/runs", headers=auth),
        c.get(f"/api/runs/{RUN}", headers=auth),
        c.get("/api/runs/nope", headers=auth),
        c.get("/api/runs/..%2Fetc", headers=auth),
    ]
    pages = [c.get("/runs/nope", headers=auth), c.get("/runs/..%2Fetc", headers=auth)]
    assert all(r.status_code == 404 and "text/html" in r.headers["content-type"] for r in pages)
    assert "the runs folder" in pages[0].text  # the HTML 404 names it as the JSON API does
    for r in answers + pages:
        for path in absolute:
            assert path not in r.text, (r.request.url, r.text[:300])
    listed = {run["name"]: run for run in answers[0].json()["runs"]}
    assert listed[RUN]["path"] == RUN
    assert "the runs folder" in answers[2].json()["error"]
    assert "process" not in answers[1].json()["status_detail"]


def test_public_paths_keep_names_and_hide_folders(tmp_path):
    runs, photos = tmp_path / "srv" / "runs", tmp_path / "data" / "photos"
    p = PublicPaths(runs, [photos])
    assert p.text(f"no run named 'x' in {runs}") == "no run named 'x' in the runs folder"
    assert p.text(f"{runs}/mnist copy (2)/report.html") == "mnist copy (2)/report.html"
    assert p.text(f"{photos}/cats/1.jpg is broken") == "photos/cats/1.jpg is broken"
    assert p.text(f"{runs}2/x and {runs}.bak") == f"{runs}2/x and {runs}.bak"  # other folders
    assert p.value({"a": [f"{runs}/r", 1.5, None]}) == {"a": ["r", 1.5, None]}
    assert p.text(f"{Path.home()}/.cache/sightline/x") == "~/.cache/sightline/x"


# ---------------------------------------------------------------------------- file modes
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_run_files_honour_the_umask(tmp_path, umask, expected, monkeypatch):
    from sightline import fileio

    monkeypatch.setattr(fileio, "_UMASK", None)  # read again under this umask
    old = os.umask(umask)
    try:
        run = fit_toy(make_dataset(), tmp_path, name="shared", epochs=1)
    finally:
        os.umask(old)
        fileio._UMASK = None
    files = [p for p in run.path.rglob("*") if p.is_file()]
    assert len(files) >= 5
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {expected}, modes


# ---------------------------------------------------------------------------- memory
def test_images_over_the_servers_pixel_limit_are_refused_before_decoding(runs, tmp_path):
    import io

    from PIL import Image

    def png(w: int, h: int) -> bytes:
        buf = io.BytesIO()
        Image.new("L", (w, h), 200).save(buf, format="PNG")  # tiny on disk, huge decoded
        return buf.getvalue()

    csrf = {"X-Sightline-Request": "1"}
    big, ok = png(6000, 5000), png(64, 64)  # 30 MP (~30 KB), and a small one
    c = client(runs)
    r = c.post(
        "/api/predict", files=[("files", ("big.png", big)), ("files", ("ok.png", ok))], headers=csrf
    )
    assert r.status_code == 200
    rows = {row["file"]: row for row in r.json()["results"]}
    assert "30 MP; limit 24 MP" in rows["big.png"]["error"] and "label" in rows["ok.png"]
    r = c.post("/api/inspect", files={"file": ("big.png", big)}, headers=csrf)
    assert r.status_code == 415 and "limit 24 MP" in r.json()["error"]
    roomy = client(runs, max_pixels=32_000_000)  # serve --max-megapixels 32
    r = roomy.post("/api/predict", files=[("files", ("big.png", big))], headers=csrf)
    assert r.status_code == 200 and "label" in r.json()["results"][0]
    with pytest.raises(
        ConfigError, match=r"max_pixels \(--max-megapixels\) must be from 1 to 64,000,000"
    ):
        create_app(runs_dir=runs, max_pixels=10**9, start_workers=False)


# ---------------------------------------------------------------------------- REST for scripts
def small_png(seed: int = 0) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_a_query_parameter_a_route_does_not_take_is_refused_not_ignored(runs):
    c = client(runs)
    r = c.post("/api/predict?k=5", files=[("files", ("a.png", small_png()))])
    assert r.status_code == 400 and "unknown query parameter 'k'" in r.json()["error"]
    assert "form fields: file, files, k, run, thumbnails" in r.json()["error"]
    r = c.get("/api/runs?sort=name")
    assert r.status_code == 400 and "takes no query parameters" in r.json()["error"]
    assert c.get("/api/jobs?state=queued&limit=5").status_code == 200  # its own are fine


def test_file_and_files_both_work_for_predict_and_inspect(runs):
    c = client(runs)  # no CSRF header: a script
    for name in ("files", "file"):
        r = c.post("/api/predict", files=[(name, ("a.png", small_png()))])
        assert r.status_code == 200 and "label" in r.json()["results"][0], (name, r.text)
        r = c.post("/api/inspect", files=[(name, ("a.png", small_png()))], data={"run": RUN})
        assert r.status_code == 200 and r.json()["file"] == "a.png", (name, r.text)
    two = [("file", ("a.png", small_png())), ("files", ("b.png", small_png(1)))]
    r = c.post("/api/inspect", files=two, data={"run": RUN})
    assert r.status_code == 400 and "one image, not 2" in r.json()["error"]


def test_zip_members_whose_names_leave_the_archive_are_listed_with_the_reason(runs):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.png", small_png())
        z.writestr("../evil.png", small_png(1))
        z.writestr("/abs.png", small_png(2))
        z.writestr(".DS_Store", b"junk")  # macOS' own: skipped without a word
    r = client(runs).post("/api/predict", files=[("files", ("photos.zip", buf.getvalue()))])
    rows = {row["file"]: row for row in r.json()["results"]}
    assert set(rows) == {"photos.zip/ok.png", "photos.zip/../evil.png", "photos.zip//abs.png"}
    assert "label" in rows["photos.zip/ok.png"]
    for bad in ("photos.zip/../evil.png", "photos.zip//abs.png"):
        assert "leaves the archive" in rows[bad]["error"]


def test_an_unknown_address_is_a_page_for_a_browser_and_json_for_a_script(runs):
    c = client(runs)
    page = c.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and "There is no page at this address" in page.text
    assert 'id="nav"' in page.text and 'href="/classify"' in page.text  # the site's navigation
    api = c.get("/api/no-such-endpoint", headers={"Accept": "text/html"})
    assert api.status_code == 404 and "no such endpoint" in api.json()["error"]
    assert c.get("/no-such-page").json()["error"]  # a script's default Accept: JSON


def test_the_access_log_never_holds_the_token(tmp_path):
    """Issue 51: the first visit's `GET /?token=... 303` put the token into the access log.
    A real server process: its log shows the visit with the token redacted."""
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    token = "access-log-secret-0123456789"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sightline", "serve", "--port", "0", "--runs-dir",
         str(tmp_path / "runs"), "--token", token],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines = []
    try:
        while not any(" at http://" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        url = re.search(r"at (http://[\d.:]+)/", "".join(lines)).group(1)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(f"{url}/?token={token}&next=%2F", timeout=10)
        assert answer.value.code == 303
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = "".join(lines) + proc.stdout.read()  # read(): readline's buffer too
    visits = [line for line in log.splitlines() if "GET /?token=" in line]
    assert visits and all("token=[redacted]" in line for line in visits), log
    shown = [line for line in log.splitlines() if token in line]
    assert len(shown) == 1 and shown[0].startswith("Open http://"), shown  # the owner's console


def test_a_run_says_whether_it_is_calibrated_and_validated(runs):
    """What the Classify and Runs pages say (issue 51): calibrated probabilities, a run's
    validation split."""
    from sightline import load_run

    c = client(runs)
    detail = c.get(f"/api/runs/{RUN}").json()
    assert detail["calibrated"] is (not load_run(runs / RUN).calibrator().identity)
    listed = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
    assert listed[RUN]["has_validation"] is True  # the toy run validates on a split of its own
