"""Decoding user image files: every bad file is a clear ImageError naming it; every mode converts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sightline.data import images as im
from sightline.data.images import normalize_mode, open_image, resize_image
from sightline.errors import ImageError


def test_bad_files_name_the_file(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(good)
    jpg = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        jpg
    )
    cases = {
        "empty.png": (b"", "empty file"),
        "truncated.png": (good.read_bytes()[:60], None),
        "truncated.jpg": (jpg.read_bytes()[: len(jpg.read_bytes()) // 2], None),
        "text.png": (b"hello, I am not an image", "not a recognised image"),
    }
    for name, (data, reason) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ImageError) as e:
            open_image(p)
        assert name in str(e.value)
        if reason:
            assert reason in str(e.value)
    with pytest.raises(ImageError, match="file not found"):
        open_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a folder"):
        open_image(tmp_path)


def test_huge_image_refused(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("L", (200, 200)).save(p)
    monkeypatch.setattr(im, "MAX_PIXELS", 10_000)
    with pytest.raises(ImageError, match="too large"):
        open_image(p)


def test_rgba_is_composited_over_white():
    a = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    out = normalize_mode(Image.fromarray(a, "RGBA"), 3)
    assert out.mode == "RGB" and np.asarray(out).min() == 255
    la = Image.fromarray(np.zeros((4, 4, 2), np.uint8), "LA")
    assert np.asarray(normalize_mode(la, 1)).min() == 255


def test_palette_with_and_without_transparency():
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    assert np.asarray(normalize_mode(p, 3))[0, 0].tolist() == [255, 0, 0]
    p.info["transparency"] = 1
    assert np.asarray(normalize_mode(p, 3))[0, 0].tolist() == [255, 255, 255]


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    a = np.arange(64, dtype=np.uint16).reshape(8, 8) * 64  # 0..4032
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    out = np.asarray(normalize_mode(open_image(path), 1))
    assert (
        out.min() == 0 and 240 < out.max() < 255 and len(np.unique(out)) > 30
    )  # 12-bit scale, not clipped


def test_float_and_int32_modes():
    f = Image.fromarray(np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4))
    out = np.asarray(normalize_mode(f, 1))
    assert out.min() == 0 and out.max() == 255
    i = Image.fromarray(np.arange(16, dtype=np.int32).reshape(4, 4) * 1000)
    assert np.asarray(normalize_mode(i, 1)).max() == round(15000 / 65535 * 255)  # 16-bit full scale


def test_cmyk_and_one_bit(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    p = tmp_path / "cmyk.jpg"
    cmyk.save(p)
    rgb = np.asarray(normalize_mode(open_image(p), 3))
    assert rgb[4, 4, 0] > 200 and rgb[4, 4, 1] < 60
    one = Image.new("1", (4, 4), 1)
    assert np.asarray(normalize_mode(one, 1)).min() == 255


def test_exif_rotation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    p = tmp_path / "phone.jpg"
    img.save(p, exif=exif)
    assert open_image(p).size == (20, 40)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("L", (8, 8), v) for v in (30, 220)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    assert np.asarray(normalize_mode(open_image(p), 1)).mean() == pytest.approx(30, abs=2)


@pytest.mark.parametrize("mode", ["squash", "crop", "pad"])
def test_resize_modes_hit_target_size(mode):
    img = Image.fromarray(np.full((30, 60), 200, np.uint8))
    out = resize_image(img, (28, 28), mode, fill=0)
    assert out.size == (28, 28)
    a = np.asarray(out)
    if mode == "pad":  # 2:1 image: top and bottom rows are padding
        assert a[0].max() == 0 and a[14].min() > 150
    else:
        assert a.min() > 150


# ---------------------------------------------------------------------------- decoded as used
def gradient(w: int, h: int) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    a = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(a)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_large_photo_is_decoded_only_as_large_as_asked(tmp_path, fmt):
    p = tmp_path / f"big.{fmt.lower()}"
    gradient(4000, 3000).save(p, format=fmt)
    whole = open_image(p)
    small = open_image(p, max_side=512)
    assert whole.size == (4000, 3000)
    assert 512 <= max(small.size) < 1024 and small.size[0] * 3 == small.size[1] * 4
    # The same picture, only smaller: its mean colour barely moves.
    shrunk = np.asarray(whole.resize(small.size, Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(small, dtype=np.float32) - shrunk).mean() < 3
    assert open_image(p, max_side=5000).size == (4000, 3000)  # never enlarged


def test_a_reduced_phone_photo_is_still_upright(tmp_path):
    img = gradient(2400, 1200)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    p = tmp_path / "phone.jpg"
    img.save(p, exif=exif)
    w, h = open_image(p, max_side=512).size
    assert h > w and h >= 512


def test_the_header_alone_says_an_image_is_too_large(tmp_path):
    data = tmp_path / "big.png"
    Image.new("L", (6000, 5000)).save(data)  # 30 MP, 30 KB on disk
    raw = data.read_bytes()
    assert im.image_size(raw, "big.png") == (6000, 5000)
    with pytest.raises(ImageError, match=r"big\.png.*30 MP; limit 24 MP"):
        im.image_size(raw, "big.png", max_pixels=24_000_000)
    with pytest.raises(ImageError, match="limit 24 MP"):
        open_image(raw, "big.png", max_pixels=24_000_000)
    with pytest.raises(ImageError, match="not a recognised image"):
        im.image_size(b"not an image at all", "notes.txt")


def test_large_decodes_wait_for_each_other(tmp_path, monkeypatch):
    """At most LARGE_DECODES large images decode at once in a process."""
    import threading
    import time

    monkeypatch.setattr(im, "LARGE_PIXELS", 10_000)
    monkeypatch.setattr(im, "_large_decodes", threading.BoundedSemaphore(1))
    inside, most = [0], [0]
    real = im._load

    def slow_load(img, max_side):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        inside[0] -= 1
        return real(img, max_side)

    monkeypatch.setattr(im, "_load", slow_load)
    p = tmp_path / "large.png"
    gradient(200, 200).save(p)
    threads = [threading.Thread(target=open_image, args=(p,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
