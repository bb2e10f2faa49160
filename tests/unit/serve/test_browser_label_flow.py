"""From a pile of photos to a trained, checked run in the browser alone (issue 56), headless
Chromium with a fake camera: a new dataset on the Build page, photos and camera frames added to
label later, labelled on the Label page, trained from the Train page, checked on the Health page.
Its own module: the camera's browser cannot start while another test module's is open."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

from test_browser import serve_process  # noqa: E402
from test_browser_build import camera_page  # noqa: E402, F401

sys.path.insert(0, str(Path(__file__).parents[1] / "labelling"))
from test_labelling import COLOURS, write_pool  # noqa: E402


@pytest.fixture(scope="module")
def collection_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-label-e2e")
    with serve_process(
        ["--runs-dir", str(tmp / "runs"), "--data-dir", str(tmp / "mine")], tmp
    ) as url:
        yield url, tmp


def test_from_unlabelled_photos_to_a_trained_checked_run_in_the_browser(
    collection_server,
    camera_page,  # noqa: F811 (the fixture imported above)
    tmp_path,
):
    """Issue 56's user, in the browser alone: a new dataset, photos and camera frames added to
    label later, labelled on the Label page (the frames: not any class), trained, checked."""
    url, tmp = collection_server
    page = camera_page
    photos = write_pool(tmp_path, per_class=8)
    truth = {Path(p).stem: c for p, c in json.loads((tmp_path / "truth.json").read_text()).items()}
    page.goto(url + "/datasets/build")
    page.fill("#new-dataset-name", "colours")
    page.click("#new-dataset-submit")
    page.locator("#build-pool").wait_for(timeout=20_000)
    files = sorted(str(p) for p in (photos / "unlabelled").rglob("*.*"))
    page.set_input_files("#build-pool input[type=file]", files)
    page.locator("#build-status", has_text="24 images added to the images to label later").wait_for(
        timeout=60_000
    )
    page.click("#camera-start")
    page.wait_for_function("() => document.getElementById('camera').videoWidth > 0", timeout=20_000)
    page.locator("#build-pool button.capture").hover()
    page.mouse.down()
    page.wait_for_timeout(800)  # a frame every 250 ms
    page.mouse.up()
    page.locator("#build-status", has_text="added to the images to label later").wait_for(
        timeout=60_000
    )
    pool = tmp / "mine" / "colours" / "unlabelled"
    frames = [p.name for p in pool.iterdir() if p.name.startswith("camera-")]
    assert frames and len(list(pool.iterdir())) == 24 + len(frames)

    page.click("#build-label")
    page.wait_for_url("**/datasets/label?folder=colours")
    page.locator("#label-caption").wait_for(timeout=120_000)
    made: list[str] = []
    for _ in range(24 + len(frames)):
        page.wait_for_function(  # an image to label, or nothing left (not "asking the model")
            "() => !document.getElementById('label-one').hidden || "
            "document.getElementById('label-empty').textContent.startsWith('Nothing')",
            timeout=60_000,
        )
        if page.locator("#label-one").is_hidden():
            break
        path = page.locator("#label-caption").inner_text()
        colour = truth.get(Path(path).stem)
        if colour is None:
            page.keyboard.press("x")  # a camera frame: not any class
        elif colour in made:
            page.keyboard.press(str(sorted(made).index(colour) + 1))
        else:
            page.keyboard.press("n")
            page.keyboard.type(colour)
            page.keyboard.press("Enter")
            made.append(colour)
        page.locator("#label-status", has_text="Moved " + path).wait_for(timeout=60_000)
    page.locator("#label-empty", has_text="Nothing waits").wait_for(timeout=60_000)
    assert not list(pool.rglob("*.*"))
    for colour in COLOURS:
        assert len(list((tmp / "mine" / "colours" / colour).iterdir())) == 8

    page.click("#label-train")
    page.wait_for_url("**/train?folder=colours")
    page.locator("#source-folder:checked").wait_for(timeout=20_000)
    playwright_api.expect(page.locator("#train-epochs")).not_to_have_value("", timeout=20_000)
    page.fill("#train-epochs", "10")  # for the test's time: the recipe would train longer
    page.click("#train-advanced summary")
    page.fill("#train-name", "labelled-here")
    page.click("#submit-train")
    page.locator("#job-result").wait_for(state="visible", timeout=180_000)
    assert "finished" in page.locator("#job-state").inner_text().lower()
    assert (tmp / "runs" / "labelled-here" / "best.safetensors").is_file()

    page.goto(url + "/datasets/health?folder=colours")
    page.locator("#health-status", has_text="Not checked yet").wait_for(timeout=20_000)
    page.click("#health-check")
    page.locator("#health-summary *").first.wait_for(timeout=120_000)
    assert not page.locator("section[data-kind='label']").count()  # nothing filed wrongly
