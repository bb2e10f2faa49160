"""Building a dataset in a real browser (headless Chromium, as tests/unit/serve/test_browser.py),
its webcam faked by Chromium's own capture device: a new dataset in a --data-dir folder that
did not exist, two classes, images chosen as files and as a zip, frames captured by holding
the button, a class renamed; each class shows its images as small pictures, a wrong image and
a whole class are removed and put back with Undo; the folder on disk is what the page says."""

from __future__ import annotations

import base64
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


def thumbs(page, cls: str):
    return page.locator(f"section.class-card[data-cls='{cls}'] figure.class-thumb")


def pictures_drawn(page, cls: str, n: int) -> None:
    """``n`` pictures in the class's card, each loaded (decoded by the browser, not broken)."""
    page.wait_for_function(
        """([cls, n]) => {
            const imgs = [...document.querySelectorAll(
                `section.class-card[data-cls="${cls}"] figure.class-thumb img`)];
            return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0);
        }""",
        arg=[cls, n],
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
    pictures_drawn(page, "cat", 3)
    cat = tmp / "mine" / "pets" / "cat"
    before = (cat / "cat1.png").read_bytes()
    thumbs(page, "cat").filter(has=page.locator("img[alt='cat1.png']")).get_by_role(
        "button", name="Remove cat1.png from cat"
    ).click()
    page.locator("#build-status", has_text="Removed cat/cat1.png").wait_for()
    pictures_drawn(page, "cat", 2)
    assert count(page, "cat") == 2 and not (cat / "cat1.png").exists()
    aside = tmp / "mine" / "pets" / ".sightline-quarantine"
    assert (aside / "cat" / "cat1.png").read_bytes() == before  # set aside, not deleted
    page.click("#build-undo")
    page.locator("#build-status", has_text="Put back cat/cat1.png").wait_for()
    pictures_drawn(page, "cat", 3)
    assert (cat / "cat1.png").read_bytes() == before and page.locator("#build-undo-row").is_hidden()
    with zipfile.ZipFile(tmp_path / "dogs.zip", "w") as z:
        for i in range(2):
            z.writestr(f"dogs/{i}.png", png(100 + i))
    page.locator("section.class-card[data-cls='dog'] input[type=file]").set_input_files(
        str(tmp_path / "dogs.zip")
    )
    page.locator("#build-status", has_text="2 images added to dog").wait_for()
    # dropped on the card (SL.dropZone, the one drop-zone helper of every page)
    page.evaluate(
        """(png) => {
        const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        document.querySelector("section.class-card[data-cls='dog'] .drop-zone").dispatchEvent(
          new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""",
        base64.b64encode(png(150)).decode("ascii"),
    )
    page.locator("#build-status", has_text="1 image added to dog").wait_for()
    assert (tmp / "mine" / "pets" / "dog" / "dropped.png").read_bytes() == png(150)
    pictures_drawn(page, "dog", 3)
    # a drop zone is the Classify page's look: no native file button shows
    assert page.locator("input[type=file]:not(.visually-hidden)").count() == 0

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
    assert (tmp / "mine" / "pets" / "puppy").is_dir() and count(page, "puppy") == 3
    pictures_drawn(page, "puppy", 3)
    page.once("dialog", lambda d: d.accept())  # "Remove class puppy and its 3 images?"
    page.locator("section.class-card[data-cls='puppy'] button", has_text="Remove class").click()
    page.locator("section.class-card[data-cls='puppy']").wait_for(state="detached")
    assert not (tmp / "mine" / "pets" / "puppy").exists()
    assert len(list((aside / "puppy").iterdir())) == 3
    assert "put back class puppy" in page.locator("#build-undo").inner_text()
    page.click("#build-undo")
    pictures_drawn(page, "puppy", 3)
    assert count(page, "puppy") == 3 and not (aside / "puppy").exists()
    check_layout(page, "build")
    page.click("#build-train")
    page.wait_for_url("**/train?folder=pets")
