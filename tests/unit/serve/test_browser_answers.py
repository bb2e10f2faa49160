"""Answers that read wrong (issue 51, item 4), in a real browser (headless Chromium, as
tests/unit/serve/test_browser.py): an unknown answer reads as one, the best epoch names its
metric (and a run without validation says so), tables keep their key cells on a 390 px
screen, the token and 404 pages have the site's navigation (the token page a field for the
token), and Classify many has one drop zone and keeps the reasons of refused files."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

# the fixtures served (a server with a trained run), browser and page
from test_browser import (  # noqa: E402, F401
    RUN,
    browser,
    check_layout,
    page,
    serve_process,
    served,
)

PHONE = {"width": 390, "height": 844}
TOKEN = "answers-token-0123456789"


def fulfill(body: dict):
    return lambda route: route.fulfill(status=200, body=json.dumps(body),
                                       content_type="application/json")  # fmt: skip


def png_bytes(colour: str = "white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


def in_view(locator, width: int = PHONE["width"]) -> None:
    """The element shows whole within the screen's width (no sideways scroll to reach it)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, box


def test_an_unknown_answer_reads_as_none_of_these(served, page, tmp_path):  # noqa: F811
    """'None of these' is the answer; its closest class is marked as closest in neutral grey
    (not the green of an answer), and the page says the probabilities are calibrated."""
    url, _ = served
    answer = {
        "run": RUN, "file": "cat.png", "true_label": None, "label": "unknown",
        "closest": "vertical", "unknown": True, "ood_score": 61.5, "unknown_threshold": 20.5,
        "index": 2, "confidence": 0.96, "calibrated": True, "note": None,
        "top_k": [{"label": "vertical", "probability": 0.96},
                  {"label": "horizontal", "probability": 0.03}],
        "original": None, "seen": None, "saliency": None, "saliency_method": None,
        "activations": [],
    }  # fmt: skip
    page.route("**/api/inspect", fulfill(answer))
    (tmp_path / "cat.png").write_bytes(png_bytes())
    page.goto(f"{url}/classify?run={RUN}")
    page.locator(f"#run-select option[value='{RUN}']").wait_for(state="attached")
    page.set_input_files("#file-input", str(tmp_path / "cat.png"))
    page.locator("#result-label").filter(has_text="None of these").wait_for(timeout=30_000)
    assert "closest class: vertical" in page.inner_text("#result-confidence")
    assert page.locator("#top-k .bar-row.top").count() == 0  # no bar is drawn as the answer
    closest = page.locator("#top-k .bar-row").first
    assert "closest" in closest.get_attribute("class") and "closest" in closest.inner_text()
    fill = closest.locator(".bar > span").evaluate("s => getComputedStyle(s).backgroundColor")
    assert fill == "rgb(152, 162, 179)", fill  # neutral grey, not the answer's green
    caption = page.inner_text("#top-k-caption")
    assert "not that the image is one of them" in caption and "are calibrated" in caption
    check_layout(page, "answers-classify-unknown")

    # Classify many says the same: the closest class's probability, in the same grey.
    row = {k: answer[k] for k in ("file", "label", "closest", "unknown", "ood_score", "confidence",
                                  "top_k")}  # fmt: skip
    page.route("**/api/predict", fulfill({"run": RUN, "results": [row], "unknown_threshold": 20.5}))
    page.goto(f"{url}/classify-many?run={RUN}")
    page.locator(f"#run-select option[value='{RUN}']").wait_for(state="attached")
    page.set_input_files("#files-input", str(tmp_path / "cat.png"))
    page.click("#classify-many-submit")
    cell = page.locator("#many-table .conf-cell.closest")
    cell.wait_for(timeout=30_000)
    assert cell.inner_text() == "closest 96.0%" and "vertical" in cell.get_attribute("title")
    fill = cell.locator(".bar > span").evaluate("s => getComputedStyle(s).backgroundColor")
    assert fill == "rgb(152, 162, 179)", fill
    assert "1 none of these" in page.inner_text("#many-summary")


def test_the_best_epoch_names_its_metric(served, page):  # noqa: F811
    """The Runs page names the metric each best value is ("val. accuracy 91.3%", "train loss
    0.2100": never a training number under a validation heading), and says "no validation
    split" where the run has none; so do the run page's best epoch and its chart legends."""
    url, _ = served
    base = {"status": "finished", "model": "mlp", "dataset": "stripes", "classes": None,
            "epochs_done": 8, "epochs": 8, "test_accuracy": 0.9, "created": None}  # fmt: skip
    runs = [
        {**base, "name": "with-val", "monitor": "val_accuracy", "best_value": 0.913, "best_epoch": 2},
        {**base, "name": "small-val", "monitor": "loss", "best_value": 0.21, "best_epoch": 8},
        # has_validation: the field /api/runs is to carry (the run page reads its history)
        {**base, "name": "no-val", "monitor": "accuracy", "best_value": 0.99, "best_epoch": 8,
         "has_validation": False},
    ]  # fmt: skip
    page.route("**/api/runs", fulfill({"runs": runs, "default_run": None}))
    page.goto(url + "/")
    cell = "#runs-table tbody tr[data-run='{}'] td[data-label='Best']".format
    page.locator(cell("with-val")).wait_for(timeout=20_000)
    assert page.inner_text(cell("with-val")) == "val. accuracy 91.3%"
    assert page.inner_text(cell("small-val")) == "train loss 0.2100"
    assert page.inner_text(cell("no-val")) == "train accuracy 99.0% (no validation split)"
    assert "Best val." not in page.inner_text("#runs-table thead")

    def without_validation(route):
        detail = route.fetch().json()
        detail.update(monitor="accuracy", best_value=0.99, best_epoch=8, has_validation=False)
        detail["history"] = [{k: v for k, v in row.items() if not k.startswith("val_")}
                             for row in detail["history"]]  # fmt: skip
        route.fulfill(status=200, body=json.dumps(detail), content_type="application/json")

    page.route(f"**/api/runs/{RUN}", without_validation)
    page.goto(f"{url}/runs/{RUN}")
    page.locator("#chart-loss .legend").wait_for(timeout=20_000)
    assert page.inner_text("#chart-loss .legend") == "train (no validation split)"
    assert page.inner_text("#chart-accuracy .legend") == "train (no validation split)"
    best = page.inner_text("#metric-best")
    assert "train accuracy 99.00%" in best and "no validation split" in best, best


def test_key_columns_show_on_a_phone(served, page):  # noqa: F811
    """At 390 px: the Runs table's test accuracy and status, Classify many's confidence and
    the run page's per-class support are on screen, not past a sideways scroll."""
    url, _ = served
    page.set_viewport_size(PHONE)
    page.goto(url + "/")
    row = page.locator(f"#runs-table tbody tr[data-run='{RUN}']")
    row.wait_for(timeout=20_000)
    for cell in row.locator("td.key").all():
        in_view(cell)
    assert row.locator("td.key").count() == 2
    label = row.locator("td.key").first.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Test acc."', label  # each value under its column's name
    check_layout(page, "answers-runs")  # back at 1280 px after
    page.set_viewport_size(PHONE)

    rows = [{"file": "a.png", "label": "horizontal", "confidence": 0.97, "unknown": False,
             "closest": "horizontal", "ood_score": 1.0,
             "top_k": [{"label": "horizontal", "probability": 0.97}]}]  # fmt: skip
    page.route("**/api/predict", fulfill({"run": RUN, "results": rows, "unknown_threshold": 20.5}))
    page.goto(f"{url}/classify-many?run={RUN}")
    page.locator(f"#run-select option[value='{RUN}']").wait_for(state="attached")
    page.set_input_files(
        "#files-input", files=[{"name": "a.png", "mimeType": "image/png", "buffer": png_bytes()}]
    )
    page.click("#classify-many-submit")
    confidence = page.locator("#many-table tbody td", has_text="97.0%")
    confidence.wait_for(timeout=30_000)
    in_view(confidence)
    check_layout(page, "answers-classify-many")
    page.set_viewport_size(PHONE)

    page.goto(f"{url}/runs/{RUN}")
    support = page.locator("#per-class-table tbody td.key")
    support.first.wait_for(timeout=20_000)
    for cell in support.all():
        in_view(cell)
    check_layout(page, "answers-run")


def test_the_token_and_404_pages_have_the_navigation(browser, tmp_path):  # noqa: F811
    """Without its token a page answers with the site's navigation and a field for the token;
    a wrong one is refused by the same check as ?token=, the right one opens the page asked
    for. An address that is no page answers a 404 with the navigation too."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()  # no console check: the refused pages are 401 and 403 documents
    try:
        with serve_process(
            ["--runs-dir", str(tmp_path / "runs"), "--token", TOKEN], tmp_path
        ) as url:
            answer = pg.goto(f"{url}/jobs?x=1")
            assert answer.status == 401
            assert pg.locator("nav a[href='/classify']").is_visible()
            assert pg.locator("#token-input").is_visible()
            check_layout(pg, "answers-token")
            pg.fill("#token-input", "not-the-token-at-all")
            pg.click("#token-submit")
            pg.locator("#page-title").filter(has_text="Wrong token").wait_for()
            assert pg.locator("nav a[href='/datasets']").is_visible()
            pg.fill("#token-input", TOKEN)
            pg.click("#token-submit")
            pg.wait_for_url("**/jobs?x=1")
            pg.locator("#jobs-empty, #jobs-card").first.wait_for(state="visible", timeout=20_000)
            assert TOKEN not in pg.url
            answer = pg.goto(url + "/no-such-page")
            assert answer.status == 404
            assert "no page at this address" in pg.inner_text("#main")
            assert pg.locator("nav a[href='/train']").is_visible()
            check_layout(pg, "answers-404")
    finally:
        context.close()


def test_classify_many_has_one_drop_zone_and_keeps_the_refused(served, page):  # noqa: F811
    """Files dropped on the drop zone are classified; a refused file stays listed with its
    reason through the next upload, until the list is cleared."""
    url, _ = served
    page.goto(f"{url}/classify-many?run={RUN}")
    page.locator(f"#run-select option[value='{RUN}']").wait_for(state="attached")
    assert page.locator("#many-drop").is_visible()
    assert page.locator("input[type=file]:not(.visually-hidden)").count() == 0
    page.evaluate(
        """(png) => {
        const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'good.png', {type: 'image/png'}));
        dt.items.add(new File(['not an image'], 'notes.txt', {type: 'text/plain'}));
        document.getElementById('many-drop').dispatchEvent(
          new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""",
        base64.b64encode(png_bytes()).decode("ascii"),
    )
    page.locator("#many-picked").filter(has_text="2 files chosen").wait_for()
    page.click("#classify-many-submit")
    page.locator("#many-summary").filter(has_text="1 classified, 1 bad").wait_for(timeout=30_000)
    assert "notes.txt" in page.inner_text("#bad-table")
    page.set_input_files(
        "#files-input",
        files=[{"name": "next.png", "mimeType": "image/png", "buffer": png_bytes("black")}],
    )
    page.click("#classify-many-submit")
    page.locator("#many-summary").filter(has_text="1 classified, 0 bad").wait_for(timeout=30_000)
    assert "notes.txt" in page.inner_text("#bad-table")  # still there, with its reason
    assert page.locator("#many-bad").is_visible()
    check_layout(page, "answers-classify-many-refused")
    page.click("#bad-clear")
    assert not page.locator("#many-bad").is_visible()
    assert "next.png" in page.inner_text("#many-table")
