"""The Label page in a real browser (headless Chromium, as tests/unit/serve/test_browser.py): a
--data-dir folder whose unlabelled/ holds photos of three colours is labelled with the keyboard
(new classes, the suggestion, not any class, undo) and a grid, at 1280 and 390 px, on the
server's real pretrained features; every move is checked on disk."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("playwright.sync_api")

import test_browser  # noqa: E402
from test_browser import browser, check_layout, serve_process  # noqa: E402, F401

sys.path.insert(0, str(Path(__file__).parents[1] / "labelling"))
from test_labelling import files_under, write_pool  # noqa: E402


@pytest.fixture(scope="module")
def label_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-label")
    folder = write_pool(tmp, per_class=8, odd=1)
    truth = json.loads((tmp / "truth.json").read_text())
    with serve_process(["--runs-dir", str(tmp / "runs"), "--data-dir", str(folder)], tmp) as url:
        yield url, folder, truth


@pytest.fixture
def pg(browser):  # noqa: F811 (the fixture imported above)
    yield from test_browser.page.__wrapped__(browser)


def shown(page) -> str:
    return page.locator("#label-caption").inner_text()


def test_label_a_folder_in_the_browser(label_server, pg):
    url, folder, truth = label_server
    page = pg
    page.goto(url + "/datasets")
    page.get_by_role("link", name="Label its 25 waiting images").click()
    page.wait_for_url("**/datasets/label?folder=photos")
    page.locator("#label-suggestion", has_text="no model yet").wait_for(timeout=120_000)
    check_layout(page, "label-first")

    made: list[str] = []

    def label_by_hand() -> None:  # the true colour; one not made yet: a new class
        path = shown(page)
        colour = truth[path] or "odd"
        if colour in made:
            page.keyboard.press(str(sorted(made).index(colour) + 1))
        else:
            page.keyboard.press("n")
            page.keyboard.type(colour)
            page.keyboard.press("Enter")
            made.append(colour)
        page.locator("#label-status", has_text="Moved " + path).wait_for(timeout=60_000)
        assert not (folder / path).exists()
        assert (folder / colour / Path(path).relative_to("unlabelled")).is_file()

    for _ in range(8):  # what the first batch shows
        label_by_hand()
    assert {"red", "green", "blue"} <= set(made)  # the first batch covered the folder
    for _ in range(8):  # until the model's suggestions reach the image on screen
        if "Suggested" in page.locator("#label-suggestion").inner_text():
            break
        label_by_hand()
    page.locator("#label-suggestion", has_text="Suggested").wait_for(timeout=60_000)
    page.locator("#label-accuracy", has_text="%").wait_for()
    path = shown(page)
    suggested = page.locator("#label-suggestion").inner_text().split(":")[1].split("(")[0].strip()
    assert suggested == (truth[path] or "odd")
    page.keyboard.press("a")  # the suggestion
    page.locator("#label-status", has_text="Moved " + path).wait_for(timeout=60_000)
    assert (folder / suggested / Path(path).relative_to("unlabelled")).is_file()

    path = shown(page)
    page.keyboard.press("x")  # not any class: kept apart
    page.locator("#label-status", has_text="Moved " + path).wait_for(timeout=60_000)
    kept = folder / ".sightline-quarantine" / "other" / Path(path).relative_to("unlabelled")
    assert kept.is_file()
    page.keyboard.press("z")
    page.locator("#label-status", has_text="Undid change").wait_for(timeout=60_000)
    assert (folder / path).is_file() and not kept.exists()

    before = files_under(folder)
    page.keyboard.press("g")
    page.locator("#label-grid figure").first.wait_for()
    chosen = page.eval_on_selector_all(
        "#label-grid figure",
        "figs => figs.filter(f => f.querySelector('input').checked)"
        ".map(f => [f.dataset.path, f.querySelector('select').value])",
    )
    assert chosen  # the surest suggestions come ticked
    check_layout(page, "label-grid")
    page.click("#label-grid-accept")
    page.locator("#label-status", has_text="in one change").wait_for(timeout=60_000)
    assert len(set(before) - set(files_under(folder))) == len(chosen)
    for src, cls in chosen:  # each where its page said
        assert (folder / cls / Path(src).relative_to("unlabelled")).is_file()
    page.keyboard.press("z")
    page.locator("#label-status", has_text="Undid change").wait_for(timeout=60_000)
    assert files_under(folder) == before

    page.locator("#label-progress").wait_for()
    assert page.locator("#label-curve svg").count() == 1
    page.click("#label-train")
    page.wait_for_url("**/train?folder=photos")
