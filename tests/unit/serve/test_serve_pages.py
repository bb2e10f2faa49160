"""The web UI's pages and static files (sightline.serve.web.pages): every page answers HTML with
the navigation and the Content-Security-Policy, on an empty runs folder and on one with a toy
run; static files come only from the whitelist, with their content types; bad run and job ids
get a friendly 404 page; nothing server-rendered is unescaped; the scripts never use
innerHTML and no file names an external URL. (What the scripts do in a browser is tested with
Playwright elsewhere.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from test_train import fit_toy, make_dataset  # noqa: E402

from sightline.serve import create_app  # noqa: E402
from sightline.serve.web import bodies as page_bodies  # noqa: E402
from sightline.serve.web import pages  # noqa: E402

RUN = "toy"
PAGES = [
    "/",
    "/classify",
    "/classify-many",
    "/datasets",
    "/datasets/health",
    "/datasets/build",
    "/datasets/label",
    "/train",
    "/jobs",
    "/studies",
    "/studies/a-sweep",  # its script asks the API whether it exists
]
STATIC = pages.STATIC_DIR
NAV_LINKS = [
    'href="/"',
    'href="/classify"',
    'href="/classify-many"',
    'href="/datasets"',
    'href="/train"',
    'href="/jobs"',
    'href="/studies"',
    'href="/docs"',
]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A runs folder with one finished run named "toy"."""
    root = tmp_path_factory.mktemp("pages") / "runs"
    fit_toy(make_dataset(), root, name=RUN, epochs=2)
    return root


@pytest.fixture
def empty(tmp_path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    return root


def make_app(runs_dir: Path, **options):
    app = create_app(runs_dir=runs_dir, start_workers=False, **options)
    # Until app.py includes the pages itself (the lead wires it), add them here.
    if not any(getattr(r, "path", None) == "/static/{name}" for r in app.routes):
        app.include_router(pages.router)
    return app


def client(runs_dir: Path, base_url: str = "http://127.0.0.1", **options) -> TestClient:
    return TestClient(make_app(runs_dir, **options), base_url=base_url)


def assert_page(r, status: int = 200) -> str:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert r.headers["content-security-policy"] == pages.CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    body = r.text
    assert body.startswith("<!doctype html>")
    for link in NAV_LINKS:
        assert link in body, link
    assert '<script src="/static/common.js" defer></script>' in body
    return body


def static_refs(body: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="(/static/[^"]+)"', body))


# ---------------------------------------------------------------------------- pages
@pytest.mark.parametrize("folder", ["empty", "trained"])
def test_every_page_is_html_with_the_nav_and_the_csp(folder, request):
    runs_dir = request.getfixturevalue(folder)
    c = client(runs_dir)
    for url in PAGES + ([f"/runs/{RUN}"] if folder == "trained" else []):
        body = assert_page(c.get(url))
        assert 'aria-current="page"' in body, url


def test_pages_hold_the_elements_their_scripts_and_tests_target(trained):
    c = client(trained)
    wanted = {
        "/": ["runs-table", "runs-filter", "compare-runs", "runs-empty", "compare-panel"],
        "/classify": [
            "run-select",
            "drop-zone",
            "file-input",
            "random-test",
            "result-label",
            "seen-image",
            "original-image",
            "saliency-image",
            "top-k",
            "activations",
            "classify-error",
        ],
        "/classify-many": [
            "files-input",
            "folder-input",
            "many-table",
            "bad-table",
            "download-csv",
            "many-summary",
        ],
        "/datasets": ["builtin-datasets", "folder-datasets"],
        "/train": [
            "train-form",
            "submit-train",
            "train-model",
            "train-recipe",
            "recipe-description",
            "train-epochs",
            "train-advanced",
            "train-error",
        ],
        "/jobs": ["jobs-table", "jobs-empty"],
        f"/runs/{RUN}": [
            "run-metrics",
            "chart-loss",
            "chart-accuracy",
            "confusion",
            "per-class",
            "run-plots",
            "model-summary",
            "run-config",
            "top-losses",
        ],
    }
    for url, ids in wanted.items():
        body = c.get(url).text
        for element_id in ids:
            assert f'id="{element_id}"' in body, (url, element_id)
    assert 'data-run="toy"' in c.get(f"/runs/{RUN}").text
    assert "webkitdirectory" in c.get("/classify-many").text
    assert re.search(
        r'<details id="train-advanced">', c.get("/train").text
    )  # folded by default: no "open"


def test_pages_hold_no_inline_script_style_or_handler(trained):
    c = client(trained)
    for url in PAGES + [f"/runs/{RUN}", "/runs/nope"]:
        body = c.get(url).text
        for tag in re.findall(r"<script[^>]*>", body):
            assert re.fullmatch(r'<script src="/static/[a-z_]+\.js" defer>', tag), (url, tag)
        assert "</script>" in body and not re.search(r"<script[^>]*>[^<]", body), (
            url
        )  # no inline code
        assert not re.search(r"<style|\sstyle=", body, re.I), url
        assert not re.search(r"\son[a-z]+\s*=", body, re.I), url
        assert "http://" not in body and "https://" not in body, url


def queue_job(c: TestClient) -> str:
    """A queued job (no worker runs: the apps here start none)."""
    r = c.post(
        "/api/jobs",
        json={"dataset": "mnist", "model": "mlp", "epochs": 1},
        headers={"X-Sightline-Request": "1"},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_job_page_and_its_404s(empty):
    c = client(empty)
    job_id = queue_job(c)
    body = assert_page(c.get(f"/jobs/{job_id}"))
    assert f'data-job="{job_id}"' in body
    for element_id in (
        "job-state",
        "job-epoch",
        "job-step",
        "job-progress",
        "job-stop",
        "job-resume",
        "job-run-link",
        "job-log",
    ):
        assert f'id="{element_id}"' in body, element_id
    for bad in ("A" * 16, "short", "..%2F..%2Fetc%2Fpasswd", "%3Cscript%3E"):
        body = assert_page(c.get(f"/jobs/{bad}"), status=404)
        assert 'id="not-found"' in body and "<script>" not in body


@pytest.mark.parametrize(
    "bad",
    ["nope", ".hidden", "..%2Fetc", "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "a%00b", "x" * 300],
)
def test_a_bad_or_unknown_run_gets_a_404_page(trained, bad):
    body = assert_page(client(trained).get(f"/runs/{bad}"), status=404)
    assert 'id="not-found"' in body
    assert "<script>" not in body and "</script>alert" not in body
    if bad == "nope":
        assert "no run named &#x27;nope&#x27;" in body


def test_a_deleted_run_page_is_a_404(trained, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained, runs)
    c = client(runs)
    assert_page(c.get(f"/runs/{RUN}"))
    assert c.delete(f"/api/runs/{RUN}", headers={"X-Sightline-Request": "1"}).status_code == 200
    assert_page(c.get(f"/runs/{RUN}"), status=404)


def test_render_page_escapes_what_it_renders():
    evil = '<script>alert("x")</script>'
    out = pages.render_page(
        evil, "<p>body</p>", data={"run": '"><script>alert(1)</script>'}, heading=evil
    )
    assert "<script>alert" not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; · sightline</title>" in out
    assert 'data-run="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in out
    assert "&lt;script&gt;" in page_bodies.not_found(
        evil
    ) and "<script>" not in page_bodies.not_found(evil)


def test_runs_redirects_to_the_runs_page(empty):
    r = client(empty).get("/runs", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/"


def test_pages_follow_the_access_guard(empty):
    # No token: a page is no more reachable by another host name than the API (DNS rebinding).
    assert client(empty, base_url="http://evil.example").get("/").status_code == 403
    # With a token: ?token= once, then the cookie opens the pages (and their API calls).
    c = client(empty, token="s3cret-0123456789abcdef", base_url="http://example.org")
    assert c.get("/").status_code == 401
    assert c.get("/static/common.js").status_code == 401
    assert c.get("/?token=s3cret-0123456789abcdef", follow_redirects=False).status_code == 303
    assert_page(c.get("/train"))
    assert c.get("/static/common.js").status_code == 200
    assert c.get("/api/runs").status_code == 200
    # the redirect after the token stays on this server: "//host" would leave it
    for path in ("//evil.example/x", "/\\evil.example"):
        r = c.get(f"http://example.org{path}?token=s3cret-0123456789abcdef", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", r.headers["location"]


# ---------------------------------------------------------------------------- static files
CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def test_every_static_file_a_page_names_is_served_with_its_type(trained, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained, runs)
    c = client(runs)
    refs: set[str] = set()
    for url in PAGES + [f"/runs/{RUN}", f"/jobs/{queue_job(c)}", "/runs/nope"]:
        refs |= static_refs(c.get(url).text)
    assert {
        "/static/style.css",
        "/static/common.js",
        "/static/chart.js",
        "/static/runs.js",
        "/static/run.js",
        "/static/classify.js",
        "/static/train.js",
    } <= refs
    for ref in sorted(refs):
        r = c.get(ref)
        assert r.status_code == 200, ref
        assert r.headers["content-type"].startswith(CONTENT_TYPES[Path(ref).suffix]), (
            ref,
            r.headers["content-type"],
        )
        assert r.headers["cache-control"] == "no-cache"
        assert r.content == (STATIC / Path(ref).name).read_bytes()
    # the whitelist serves every file in static/, and every one of them is used by some page
    assert {f"/static/{name}" for name in pages.STATIC_FILES} == refs


def test_a_static_file_is_revalidated_by_etag(empty):
    c = client(empty)
    r = c.get("/static/style.css")
    again = c.get("/static/style.css", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/..%2Fapp.py",
        "/static/../app.py",
        "/static/%2e%2e%2fpages.py",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/.hidden.js",
        "/static/STYLE.CSS",
        "/static/style.css%00.js",
        "/static/",
        "/static/pages.py",
    ],
)
def test_unknown_static_files_and_traversal_are_404(empty, path):
    r = client(empty).get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "import" not in r.text  # no Python source came back


def test_static_files_hold_no_external_url_and_no_html_injection():
    files = sorted(STATIC.iterdir())
    assert files, "no static files"
    for p in files:
        text = p.read_bytes().decode("utf-8", errors="replace")
        assert "http://" not in text and "https://" not in text, p.name
        assert "//cdn" not in text.lower(), p.name
        if p.suffix == ".js":
            for risky in (
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute('on",
                'setAttribute("on',
                "setAttribute('style",
                "javascript:",
            ):
                assert risky not in text, (p.name, risky)
            assert text.startswith("/*") and "'use strict';" in text, p.name
            assert len(text.splitlines()) <= 400, p.name
        if p.suffix == ".css":
            assert "@import" not in text and "url(" not in text, p.name


def test_scripts_parse():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot check the scripts' syntax")
    for p in sorted(STATIC.glob("*.js")):
        done = subprocess.run([node, "--check", str(p)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, (p.name, done.stderr)
