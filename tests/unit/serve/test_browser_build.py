"""Building a dataset in a real browser (headless Chromium, as tests/unit/serve/test_browser.py),
its webcam faked by Chromium's own capture device: a new dataset in a --data-dir folder that
did not exist, two classes, images chosen as files and as a zip, frames captured by holding
the button, a class renamed; the folder on disk is what the page says."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api")

from test_browser import _chromium, check_layout, serve_process, watch_errors  # noqa: E402


@pytest.fixture(scope="module")
def build_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser-build")
    with serve_process(
        ["--runs-dir", str(tmp / "runs"), "--data-dir", str(tmp / "mine")], tmp
    ) as url:
        yield url, tmp


@pytest.fixture
def camera_page():
    """A page whose browser has a fake camera, its permission granted."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=[
            "--no-sandbox", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream"])  # fmt: skip
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, permissions=["camera"]
        )
        page = context.new_page()
        errors = watch_errors(page)
        yield page
        browser.close()
        assert not errors, f"the page logged errors: {errors}"


def png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (value, 90, 200 - value)).save(buf, "PNG")
    return buf.getvalue()


def count(page, cls: str) -> int:
    return int(
        page.locator(f"section.class-card[data-cls='{cls}'] .badge").get_attribute("data-count")
    )


def test_build_a_dataset_from_files_a_zip_and_the_camera(build_server, camera_page, tmp_path):
    url, tmp = build_server
    page = camera_page
    assert (tmp / "mine").is_dir()  # made at start
    page.goto(url + "/datasets")
    page.get_by_role("link", name="Build a new dataset").click()
    page.fill("#new-dataset-name", "pets")
    page.click("#new-dataset-submit")
    page.wait_for_url("**/datasets/build?folder=pets")
    for cls in ("cat", "dog"):
        page.fill("#new-class-name", cls)
        page.keyboard.press("Enter")
        page.locator(f"section.class-card[data-cls='{cls}']").wait_for()
    files = []
    for i in range(3):
        (tmp_path / f"cat{i}.png").write_bytes(png(10 * i))
        files.append(str(tmp_path / f"cat{i}.png"))
    (tmp_path / "notes.txt").write_text("not an image")
    page.locator("section.class-card[data-cls='cat'] input[type=file]").set_input_files(
        [*files, str(tmp_path / "notes.txt")]
    )
    page.locator("#build-status", has_text="3 images added to cat").wait_for()
    assert "notes.txt" in page.locator("#build-status").inner_text()
    with zipfile.ZipFile(tmp_path / "dogs.zip", "w") as z:
        for i in range(2):
            z.writestr(f"dogs/{i}.png", png(100 + i))
    page.locator("section.class-card[data-cls='dog'] input[type=file]").set_input_files(
        str(tmp_path / "dogs.zip")
    )
    page.locator("#build-status", has_text="2 images added to dog").wait_for()

    page.click("#camera-start")
    page.wait_for_function("() => document.getElementById('camera').videoWidth > 0", timeout=20_000)
    button = page.locator("section.class-card[data-cls='cat'] button.capture")
    button.hover()
    page.mouse.down()
    page.wait_for_timeout(1200)  # a frame every 250 ms
    page.mouse.up()
    page.locator("#build-status", has_text="added to cat").wait_for()
    captured = count(page, "cat") - 3
    assert captured >= 3
    on_disk = sorted(p.name for p in (tmp / "mine" / "pets" / "cat").iterdir())
    assert (
        len(on_disk) == 3 + captured and sum(n.startswith("camera-") for n in on_disk) == captured
    )
    with Image.open(
        tmp / "mine" / "pets" / "cat" / next(n for n in on_disk if n.startswith("camera-"))
    ) as img:
        assert img.format == "JPEG" and img.width > 0  # a real frame of the fake camera

    page.once("dialog", lambda d: d.accept("puppy"))
    page.locator("section.class-card[data-cls='dog'] button", has_text="Rename").click()
    page.locator("section.class-card[data-cls='puppy']").wait_for()
    assert (tmp / "mine" / "pets" / "puppy").is_dir() and count(page, "puppy") == 2
    check_layout(page, "build")
    page.click("#build-train")
    page.wait_for_url("**/train?folder=pets")
