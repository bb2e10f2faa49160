"""The web UI: HTML pages and their static files (CSS, JavaScript), no framework, no build step.

Every page is a small server-rendered shell (navigation, headings, empty containers with ids);
the page's own script in ``static/`` fetches the /api endpoints and fills it. So the pages are
exactly as capable as the API, and what the server renders holds no user data except escaped
bits (the title, a run or job id).

Security: every page carries a Content-Security-Policy that allows scripts, styles and
connections only from this server (no inline script, no style attribute, no CDN), so even a
string that slipped into the DOM as markup could not run. The scripts insert user strings
(run, class and file names, error messages) with ``textContent`` only. Static files are served
from a whitelist made when this module is imported: a request names a file, never a path.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from sightline._version import __version__
from sightline.errors import SightlineError
from sightline.serve.web import bodies as page_bodies
from sightline.serve.web import build_body, label_body, train_body

router = APIRouter(include_in_schema=False)  # pages are for people: not part of the API's schema

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "frame-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
STATIC_NAME = re.compile(
    r"[a-z0-9][a-z0-9_-]*\.[a-z]+"
)  # "run_eval.js": no dots, slashes or dot names


def _static_files() -> dict[str, Path]:
    """name → file for every servable file in static/, fixed at import: nothing a request
    says can reach another file (no path joins at request time, no symbolic links)."""
    if not STATIC_DIR.is_dir():
        return {}
    found = {}
    for p in sorted(STATIC_DIR.iterdir()):
        if (
            STATIC_NAME.fullmatch(p.name)
            and p.suffix in STATIC_TYPES
            and p.is_file()
            and not p.is_symlink()
        ):
            found[p.name] = p
    return found


STATIC_FILES = _static_files()

# (path, label) of the top navigation; the API docs are FastAPI's own page.
NAV: list[tuple[str, str]] = [
    ("/", "Runs"),
    ("/classify", "Classify"),
    ("/classify-many", "Classify many"),
    ("/datasets", "Datasets"),
    ("/train", "Train"),
    ("/jobs", "Jobs"),
    ("/studies", "Sweeps"),
    ("/docs", "API docs"),
]


def _nav(current: str) -> str:
    items = []
    for href, label in NAV:
        here = ' aria-current="page" class="active"' if href == current else ""
        items.append(f'<a href="{href}"{here}>{html.escape(label)}</a>')
    return "\n      ".join(items)


def render_page(
    title: str,
    body: str,
    scripts: Sequence[str] = (),
    nav: str = "",
    data: dict[str, str] | None = None,
    heading: str | None = None,
    head: str | None = None,
) -> str:
    """A whole page. ``title``, ``heading`` and the ``data`` values are escaped here (they may
    hold a run name); ``body`` is trusted markup from ``page_bodies`` and must hold no data.
    ``data`` becomes ``data-*`` attributes of <main>, where the page's script reads them.
    ``head``: trusted markup instead of the stylesheet, icon and scripts (the token page's)."""
    attrs = "".join(
        f' data-{html.escape(k)}="{html.escape(str(v), quote=True)}"'
        for k, v in (data or {}).items()
    )
    if head is None:
        tags = "\n  ".join(
            f'<script src="/static/{html.escape(s)}" defer></script>'
            for s in ("common.js", *scripts)
        )
        head = f"""<link rel="stylesheet" href="/static/style.css">
  <link rel="icon" href="/static/favicon.png" type="image/png">
  {tags}"""
    shown = html.escape(heading if heading is not None else title)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{html.escape(title)} · sightline</title>
  {head}
</head>
<body>
  <header class="topbar">
    <a class="brand" href="/">sightline</a>
    <nav class="nav" id="nav" aria-label="main">
      {_nav(nav)}
    </nav>
  </header>
  <main class="page" id="main"{attrs}>
    <h1 id="page-title">{shown}</h1>
{body}
  </main>
  <footer class="footer">sightline {html.escape(__version__)}</footer>
</body>
</html>
"""


def page_response(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=PAGE_HEADERS)


def not_found_page(message: str) -> HTMLResponse:
    """The friendly 404, its message with the server's folders named as a client sees them
    (issue 51: "/runs/nope" showed the absolute runs folder the JSON API hides)."""
    from sightline.serve.core.paths import public_text

    public = public_text()
    shown = message if public is None else public(message)
    return page_response(render_page("Not found", page_bodies.not_found(shown)), status=404)


def missing_page() -> HTMLResponse:
    """The 404 page of an address that is no page at all (a typo): the site's navigation, and
    where to go (``core/errors.py`` answers a browser's unknown address with it)."""
    return not_found_page("There is no page at this address.")


# The token page is answered before the token is checked, so it can load nothing from this
# server (every /static file needs the token too): the stylesheet goes inline, allowed by its
# hash, and nothing else runs or loads. Its form sends the token as ``?token=``, to the same
# check (``AccessGuard._cookie_redirect``) that the link ``sightline serve`` prints goes to.
_STYLE = (STATIC_DIR / "style.css").read_text(encoding="utf-8") if STATIC_DIR.is_dir() else ""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
TOKEN_PAGE_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[^\\]*")  # "/runs/x", never "//host/x"


def token_page(
    status: int, message_html: str, path: str = "/", query: Sequence[tuple[str, str]] = ()
) -> HTMLResponse:
    """The page a browser gets without the token (401) or with a wrong one (403): the site's
    navigation, ``message_html`` (ours, never a client's), and a field to paste the token in.
    The form asks for ``path`` again with the token and ``query``'s other fields, so the guard
    sets the cookie and sends the browser on to the page it asked for."""
    action = path if _SAME_SITE_PATH.fullmatch(path) else "/"
    heading = "Wrong token" if status == 403 else "Token needed"
    body = page_bodies.token_form(message_html, action, query)
    head = f'<style>{_STYLE}</style>\n  <link rel="icon" href="data:,">'
    content = render_page(heading, body, head=head)
    headers = {**PAGE_HEADERS, "Content-Security-Policy": TOKEN_PAGE_CSP}
    return HTMLResponse(content, status_code=status, headers=headers)


# ---------------------------------------------------------------------------- pages
@router.get("/", response_class=HTMLResponse)
def runs_page() -> HTMLResponse:
    return page_response(render_page("Runs", page_bodies.RUNS, ["chart.js", "runs.js"], nav="/"))


@router.get("/runs")
def runs_redirect() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@router.get(
    "/runs/{run_id:path}", response_class=HTMLResponse
)  # :path: "..%2Fx" gets the 404 page too
def run_page(run_id: str, request: Request) -> HTMLResponse:
    from sightline.run import run_id_path

    try:
        path = run_id_path(run_id, request.app.state.sightline.runs_dir)
    except SightlineError as e:  # an invalid id or no such run: the same friendly page
        return not_found_page(str(e))
    name = path.name  # the checked name: letters, digits, . _ - only
    return page_response(
        render_page(
            f"Run {name}",
            page_bodies.RUN,
            ["words.js", "chart.js", "run_eval.js", "run.js", "run_export.js"],
            nav="/",
            data={"run": name, **train_body.option_labels()},
            heading=name,
        )
    )


@router.get("/classify", response_class=HTMLResponse)
def classify_page() -> HTMLResponse:
    return page_response(
        render_page("Classify", page_bodies.CLASSIFY, ["classify.js"], nav="/classify")
    )


@router.get("/classify-many", response_class=HTMLResponse)
def classify_many_page() -> HTMLResponse:
    return page_response(
        render_page(
            "Classify many", page_bodies.CLASSIFY_MANY, ["classify_many.js"], nav="/classify-many"
        )
    )


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page() -> HTMLResponse:
    return page_response(
        render_page("Datasets", page_bodies.DATASETS, ["datasets.js"], nav="/datasets")
    )


@router.get("/datasets/build", response_class=HTMLResponse)
def build_page() -> HTMLResponse:
    return page_response(
        render_page("Build a dataset", build_body.BUILD, ["build.js"], nav="/datasets")
    )


@router.get("/datasets/label", response_class=HTMLResponse)
def label_page() -> HTMLResponse:
    return page_response(
        render_page("Label a folder", label_body.LABEL, ["chart.js", "label.js"], nav="/datasets")
    )


@router.get("/datasets/health", response_class=HTMLResponse)
def health_page() -> HTMLResponse:
    return page_response(
        render_page("Dataset health", page_bodies.HEALTH, ["health.js"], nav="/datasets")
    )


@router.get("/train", response_class=HTMLResponse)
def train_page() -> HTMLResponse:
    return page_response(
        render_page(
            "Train",
            train_body.TRAIN,
            ["words.js", "train.js"],
            nav="/train",
            data=train_body.option_labels(),
        )
    )


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page() -> HTMLResponse:
    return page_response(
        render_page(
            "Jobs",
            page_bodies.JOBS,
            ["words.js", "jobs.js"],
            nav="/jobs",
            data=train_body.option_labels(),
        )
    )


@router.get("/jobs/{job_id:path}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request) -> HTMLResponse:
    import sqlite3

    from sightline.serve.jobs.job import check_job_id

    try:
        check_job_id(job_id)
        request.app.state.jobs.store.get(job_id)
    except SightlineError as e:  # an invalid id (JobError) or no such job (JobNotFoundError)
        return not_found_page(str(e))
    except (
        sqlite3.Error,
        OSError,
    ):  # a job store that cannot be read: the page's script shows the API's error
        pass
    return page_response(
        render_page(
            f"Job {job_id}",
            page_bodies.JOB,
            ["words.js", "chart.js", "job.js"],
            nav="/jobs",
            data={"job": job_id, **train_body.option_labels()},
        )
    )


@router.get("/studies", response_class=HTMLResponse)
def studies_page() -> HTMLResponse:
    return page_response(render_page("Sweeps", page_bodies.STUDIES, ["studies.js"], nav="/studies"))


@router.get("/studies/{name:path}", response_class=HTMLResponse)
def study_page(name: str) -> HTMLResponse:
    from sightline.sweeps import check_name

    try:  # the API answers whether it exists; a name that could be none stops here
        check_name(name)
    except SightlineError as e:
        return not_found_page(str(e))
    return page_response(
        render_page(
            f"Sweep {name}",
            page_bodies.STUDY,
            ["studies.js"],
            nav="/studies",
            data={"study": name},
            heading=f"Sweep {name}",
        )  # fmt: skip
    )


# ---------------------------------------------------------------------------- static files
@router.get("/static/{name}")
def static_file(name: str, request: Request) -> Response:
    path = STATIC_FILES.get(name)
    if path is None:
        return Response(
            f"no static file {name[:80]!r}\n",
            status_code=404,
            media_type="text/plain; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    body = path.read_bytes()
    # no-cache: the browser revalidates every time (a new version is never stale), and the
    # ETag makes that revalidation a bodiless 304.
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=STATIC_TYPES[path.suffix], headers=headers)
