"""/api/studies and the Sweeps pages: a sweep's study beside the server's runs, its trials
linked to their runs by name (never a path), its figures by checked names only; a trial's run
page names its study; the page in Chromium lists the trials."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("optuna")

from conftest import write_squares  # noqa: E402
from test_browser import browser, check_layout, page, serve_process  # noqa: E402,F401
from test_serve_ui_api import client  # noqa: E402

import sightline  # noqa: E402

STUDY = "sweep1"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(runs folder, TuneResult): a two-trial sweep of the squares folder."""
    root = tmp_path_factory.mktemp("studies")
    folder = write_squares(root)
    result = sightline.tune(str(folder), "fastcnn", trials=2, epochs=1, study=STUDY, seed=0,
                            model_options={"width": 8}, runs_dir=root / "runs")  # fmt: skip
    return root / "runs", result


def test_the_api_lists_a_study_and_its_trials_with_their_runs(swept):
    runs, result = swept
    c = client(runs)
    listed = c.get("/api/studies").json()["studies"]
    assert [s["name"] for s in listed] == [STUDY] and listed[0]["trials"] == 2
    assert listed[0]["best_value"] == pytest.approx(result.best["value"])
    body = c.get(f"/api/studies/{STUDY}").json()
    assert [t["run"] for t in body["trials"]] == [f"{STUDY}-t000", f"{STUDY}-t001"]
    assert "/" not in str([t["run"] for t in body["trials"]])  # names, never paths
    assert body["best"]["params"] == result.best["params"] and body["model"] == "fastcnn"
    assert "history.png" in body["figures"] and "lr" in body["space"]
    figure = c.get(f"/api/studies/{STUDY}/figures/history.png")
    assert figure.status_code == 200 and figure.content[:4] == b"\x89PNG"
    run = c.get(f"/api/runs/{STUDY}-t001").json()
    assert run["study"] == {"name": STUDY, "trial": 1, "pruned_after_epoch": None}
    assert c.get("/api/runs/" + body["best"]["run"]).json()["study"]["name"] == STUDY


def test_unknown_studies_names_and_figures_are_refused(swept, tmp_path):
    runs, _ = swept
    c = client(runs)
    assert c.get("/api/studies/nope").status_code == 404
    for bad in ("..%2Fx", "a%20b", ".hidden"):
        assert c.get(f"/api/studies/{bad}").status_code in (404, 422), bad
    assert c.get(f"/api/studies/{STUDY}/figures/study.json").status_code == 422
    assert c.get(f"/api/studies/{STUDY}/figures/..%2F..%2Fstudies.db").status_code in (404, 422)
    empty = client(tmp_path / "no-runs")
    assert empty.get("/api/studies").json() == {"studies": []}
    assert empty.get(f"/api/studies/{STUDY}").status_code == 404
    assert c.get("/studies/a%20b").status_code == 404  # the page: the friendly 404
    shown = c.get(f"/studies/{STUDY}")
    assert shown.status_code == 200 and 'data-study="sweep1"' in shown.text
    assert 'href="/studies"' in c.get("/studies").text  # in the navigation


def test_the_study_page_shows_its_trials_and_links_their_runs(swept, page):  # noqa: F811
    runs, result = swept
    with serve_process(["--runs-dir", str(runs)], runs.parent) as url:
        page.goto(f"{url}/studies")
        page.locator(f"#studies-table a[href='/studies/{STUDY}']").wait_for(timeout=20_000)
        page.goto(f"{url}/studies/{STUDY}")
        rows = page.locator("#study-table tbody tr")
        rows.first.wait_for(timeout=20_000)
        assert rows.count() == 2
        link = page.locator(f"#study-table a[href='/runs/{STUDY}-t001']")
        assert link.count() == 1
        assert page.locator("#study-best-trial").inner_text() == str(result.best["number"])
        assert page.locator("#study-figure-list img").count() >= 1
        check_layout(page, "study")  # 1280 and 390 px: nothing wider than the screen
        link.click()
        page.locator("#run-study").wait_for(state="visible", timeout=20_000)
        assert page.locator("#run-study").inner_text() == f"trial 1 of sweep {STUDY}"
