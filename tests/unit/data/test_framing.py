"""Framing outside photos as the datasets framed their items (sightline.data.framing), on
generated items and photos: the object is found, never cropped, filled and centred as the
dataset did; no object → the whole photo, said so."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from photo_generator import make_photo, photos, random_style
from PIL import Image

from sightline.data import Preprocess
from sightline.data.finish import centre_of_mass_shifts, match_dark_backgrounds, shift_each
from sightline.data.framing import _percentile, find_object, find_objects, frame_image
from sightline.errors import DataError
from sightline.infer.predict import NO_OBJECT_NOTE, predict_files, save_seen


def _items(n: int, seed: int = 0) -> np.ndarray:
    """Fashion-like items: a bright textured blob filling 28 px on its longest edge, bright on black."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(n):
        a, b = (
            rng.uniform(8, 14),
            rng.uniform(4, 14),
        )  # half-axes: one of them near 14 fills the frame
        if rng.random() < 0.5:
            a, b = b, a
        a, b = (14, b) if a >= b else (a, 14)
        ellipse = ((yy - 13.5) / a) ** 2 + ((xx - 13.5) / b) ** 2 <= 1
        texture = rng.uniform(90, 255) + 40 * np.sin(xx / rng.uniform(1.5, 4)) * np.cos(yy / 3)
        out[i] = np.where(ellipse, np.clip(texture, 60, 255), 0).astype(np.uint8)
    return out


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.mark.parametrize("light", [True, False])
def test_found_box_never_crops_the_object(light):
    shots = photos(_items(40, seed=1), seed=3, light=light)
    for i, shot in enumerate(shots):
        found = find_object(_open(shot.data))
        assert found.found, (i, shot.style)
        (l0, t0, r0, b0), (l1, t1, r1, b1) = found.box, shot.box
        side = min(_open(shot.data).size)
        slack = max(2, round(0.02 * side))  # a rotated soft edge may fall just under the cut-off
        assert l0 <= l1 + slack and t0 <= t1 + slack and r0 >= r1 - slack and b0 >= b1 - slack, (
            i,
            found.box,
            shot.box,
        )
        # ... and is tight: no more than a little margin (or a shadow) beyond the object
        loose = max(4, round(0.12 * side))
        assert l0 >= l1 - loose and t0 >= t1 - loose and r0 <= r1 + loose and b0 <= b1 + loose, (
            i,
            found.box,
            shot.box,
        )


def test_no_object_gives_the_whole_photo():
    rng = np.random.default_rng(0)
    ramp = np.linspace(210, 235, 300, dtype=np.float32)[None, :, None]
    plain = np.clip(
        np.broadcast_to(ramp, (200, 300, 3)) + rng.normal(0, 2, (200, 300, 3)), 0, 255
    ).astype(np.uint8)
    found = find_object(Image.fromarray(plain))
    assert not found.found and found.box == (0, 0, 300, 200)
    x, framing = Preprocess(
        1, (28, 28), "pad", dark_background=True, fit="object"
    ).prepare_with_framing(Image.fromarray(plain))
    assert framing is not None and not framing.found and x.shape == (1, 28, 28)


def test_thin_frame_line_is_not_the_object():
    photo = np.full((300, 400, 3), 235, np.uint8)
    photo[:3], photo[-3:], photo[:, :3], photo[:, -3:] = 80, 80, 80, 80  # a printed frame line
    photo[100:160, 150:190] = 40  # the object: 40 wide, 60 tall
    found = find_object(Image.fromarray(photo))
    assert found.found
    left, top, right, bottom = found.box
    # within the blur and one pixel of margin of the 256 px working copy (1.6 px each here)
    assert all(
        abs(a - b) <= 4
        for a, b in zip((left, top, right, bottom), (150, 100, 190, 160), strict=True)
    )


@pytest.mark.parametrize("side", [28, 40])
def test_small_photo_the_object_nearly_fills_is_found(side):
    # Paper a few pixels wide beside the object, then the object: not a frame line to strip
    # (stripping it put the background model on the object: 1 in 40 of such photos were
    # "no object" before).
    rng = np.random.default_rng(side)
    items = _items(30, seed=side)
    for i, item in enumerate(items):
        style = random_style(rng)
        style.side, style.fill, style.border = side, float(rng.uniform(0.75, 0.95)), 0
        style.aspect = float(rng.choice([1.0, 0.75, 2 / 3]))
        shot = make_photo(item, style, seed=i)
        found = find_object(_open(shot.data))
        assert found.found, (i, style)
        (l0, t0, r0, b0), (l1, t1, r1, b1) = found.box, shot.box
        assert l0 <= l1 + 2 and t0 <= t1 + 2 and r0 >= r1 - 2 and b0 >= b1 - 2, (
            i,
            found.box,
            shot.box,
        )


def test_object_is_found_in_colour_for_a_gray_model():
    # A green sole on pink paper: nearly the paper's brightness, plainly another colour. A
    # grayscale model sees it faintly, but its box must still hold it, as the dataset's did.
    paper, sole = (220, 190, 200), (170, 215, 170)
    assert abs(np.dot(paper, (0.299, 0.587, 0.114)) - np.dot(sole, (0.299, 0.587, 0.114))) < 5
    photo = np.empty((200, 300, 3), np.uint8)
    photo[:] = paper
    photo[60:110, 80:220] = (40, 30, 35)  # the shoe
    photo[110:130, 70:230] = sole  # its sole, 20 px below
    found = find_object(Image.fromarray(photo))
    left, top, right, bottom = found.box
    assert found.found and bottom >= 128 and left <= 72 and right >= 228, found.box
    pre = Preprocess(1, (28, 28), "pad", dark_background=True, fit="object")
    seen, framing = pre.prepare_with_framing(Image.fromarray(photo))
    assert framing is not None and framing.box == found.box
    # The canvas is the paper's gray, as PIL converts it: turned dark for a dark-background model.
    assert seen[0, 0, 0] == 0 and found.background_in("L") == Image.new(
        "RGB", (1, 1), paper
    ).convert("L").getpixel((0, 0))


def test_object_fit_fills_the_frame_and_centres_it():
    photo = np.full((120, 300, 3), 240, np.uint8)
    photo[10:30, 200:280] = 20  # 80 x 20, far off-centre
    canvas, found = frame_image(Image.fromarray(photo).convert("L"), (28, 28), "object")
    dark = np.asarray(canvas) < 128
    rows, cols = np.flatnonzero(dark.any(1)), np.flatnonzero(dark.all(0) | dark.any(0))
    assert (
        len(cols) >= 26 and abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1
    )  # fills the frame (less a pixel of margin)
    assert (
        6 <= len(rows) <= 8 and abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1
    )  # 80:20 → 28:7, centred


def test_digit_fit_boxes_in_20_and_centres_by_mass():
    photo = np.full((400, 300, 3), 225, np.uint8)
    photo[40:140, 30:60] = 10  # a "1" with a heavy foot, off-centre
    photo[120:140, 20:90] = 10
    pre = Preprocess(1, (28, 28), "pad", dark_background=True, fit="digit")
    x = pre.prepare_image(Image.fromarray(photo))[0].float()
    ys, xs = torch.nonzero(x > 64, as_tuple=True)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (19, 20, 21)
    cy = float((x.sum(1) * torch.arange(28)).sum() / x.sum())
    cx = float((x.sum(0) * torch.arange(28)).sum() / x.sum())
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75
    assert x.max() == 255 and x[0, 0] == 0  # ink stretched to full, paper black


def test_centre_of_mass_shift_never_pushes_ink_out():
    ink = np.zeros((3, 28, 28), dtype=np.float32)
    ink[0, 0:5, 0:27] = 1  # a bar along the top: its mass wants to move down only
    ink[1, 20:28, 22:28] = 1  # a blob in the corner: up and left, to the centre
    dy, dx = centre_of_mass_shifts(ink)  # the third has no ink: it stays
    assert dy[0] > 0 and dx[0] in (0, 1)
    assert (dy[1], dx[1]) == (-10, -10) and (dy[2], dx[2]) == (0, 0)  # -9.5, -10.5: to even


def test_a_batch_is_finished_as_each_image_alone():
    """finish.py works on a batch: each image comes out as it would alone (inverted or not,
    stretched or not, shifted by its own pixels with its own fill)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 1, 12, 12), dtype=torch.uint8, generator=g)
    x[0] = 0  # clean: left alone
    x[1, :, :, :] = 240  # light paper, a dark stroke: inverted, stretched
    x[1, :, 4:8, 5:7] = 20
    levels = np.array([0.0, 240.0, 100.0, 30.0, 200.0, 127.0])
    for stretch in (True, False):
        batch = match_dark_backgrounds(x, levels, stretch)
        for i in range(len(x)):
            alone = match_dark_backgrounds(x[i : i + 1], levels[i : i + 1], stretch)
            assert torch.equal(batch[i : i + 1], alone), (stretch, i)
    assert torch.equal(match_dark_backgrounds(x[:1], levels[:1]), x[:1])
    inverted = match_dark_backgrounds(x[1:2], levels[1:2])
    assert inverted[0, 0, 0, 0] == 0 and inverted[0, 0, 5, 5] == 255  # ink bright on black
    dy, dx, fill = np.array([0, 2, -3, 0, 1, -1]), np.array([0, -1, 0, 4, 1, -1]), np.arange(6)
    moved = shift_each(x, dy, dx, fill)
    for i in range(len(x)):
        want = torch.full_like(x[i], int(fill[i]))
        ys = slice(max(0, dy[i]), 12 + min(0, dy[i]))
        xs = slice(max(0, dx[i]), 12 + min(0, dx[i]))
        src_y = slice(max(0, -dy[i]), 12 - max(0, dy[i]))
        src_x = slice(max(0, -dx[i]), 12 - max(0, dx[i]))
        want[:, ys, xs] = x[i][:, src_y, src_x]
        assert torch.equal(moved[i], want), i


@pytest.mark.parametrize("side", [28, 40, 4000])
def test_any_photo_size(side):
    style = random_style(np.random.default_rng(5))
    style.side, style.aspect, style.border = side, 1.0, 0
    shot = make_photo(_items(1, seed=2)[0], style)
    pre = Preprocess(1, (28, 28), "pad", dark_background=True, fit="object")
    x, framing = pre.prepare_with_framing(shot.data)
    assert x.shape == (1, 28, 28) and framing is not None and framing.found


def test_framed_photos_look_like_the_items():
    items = _items(30, seed=4)
    pre = Preprocess(1, (28, 28), "pad", dark_background=True, fit="object")
    sims = []
    for item, shot in zip(items, photos(items, seed=9), strict=True):
        seen = pre.prepare_image(shot.data)[0].float()
        a, b = seen - seen.mean(), torch.from_numpy(item).float() - float(item.mean())
        sims.append(float((a * b).sum() / (a.norm() * b.norm() + 1e-6)))
    assert np.median(sims) > 0.8, sims
    # Scaling the whole photo (the old way) shows a small object in a corner: far less alike.
    whole = Preprocess(1, (28, 28), "pad", dark_background=True)
    old = [
        float(np.corrcoef(whole.prepare_image(s.data)[0].numpy().ravel(), i.ravel())[0, 1])
        for i, s in zip(items[:10], photos(items[:10], seed=9), strict=True)
    ]
    assert np.median(old) < np.median(sims) - 0.2


def test_fit_is_saved_and_checked():
    pre = Preprocess(1, (28, 28), "pad", dark_background=True, fit="digit")
    assert Preprocess.from_dict(pre.to_dict()) == pre
    assert (
        Preprocess.from_dict({k: v for k, v in pre.to_dict().items() if k != "fit"}).fit == "frame"
    )  # old runs
    with pytest.raises(ValueError, match="fit"):
        Preprocess(1, (28, 28), "pad", fit="crop")
    from sightline.data import load_dataset

    with pytest.raises(DataError, match="unknown fit 'objects'"):
        load_dataset("fashion-mnist", fit="objects")


def test_builtin_datasets_frame_as_they_were_made():
    from sightline.data.registry import get_dataset_spec

    assert get_dataset_spec("fashion-mnist").fit == "object"
    assert get_dataset_spec("mnist").fit == "digit"
    assert get_dataset_spec("cifar10").fit == "frame"


class _Mean(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        m = x.mean((1, 2, 3)) * self.scale
        return torch.stack([m, -m], 1)


def test_predict_keeps_what_the_model_saw(tmp_path):
    item = _items(1, seed=6)[0]
    style = random_style(np.random.default_rng(1))
    (tmp_path / "boot.jpg").write_bytes(make_photo(item, style).data)
    Image.new("RGB", (64, 48), (230, 230, 228)).save(tmp_path / "empty.png")
    pre = Preprocess(1, (28, 28), "pad", dark_background=True, fit="object")
    report = predict_files(_Mean(), pre, ["a", "b"], [tmp_path], keep_seen=True)
    by_name = {p.path.split("/")[-1]: p for p in report.predictions}
    assert torch.equal(by_name["boot.jpg"].seen, pre.prepare_image(tmp_path / "boot.jpg"))
    assert by_name["boot.jpg"].note is None and by_name["empty.png"].note == NO_OBJECT_NOTE
    assert NO_OBJECT_NOTE in report.to_table() and NO_OBJECT_NOTE in report.to_json()
    written = save_seen(report, tmp_path / "seen")
    assert [p.name for p in written] == ["0001-boot.png", "0002-empty.png"]
    assert Image.open(written[0]).size == (224, 224)
    plain = predict_files(_Mean(), pre, ["a", "b"], [tmp_path])
    assert all(p.seen is None for p in plain.predictions)
    with pytest.raises(ValueError, match="keep_seen"):
        save_seen(plain, tmp_path / "x")


def test_percentile_is_numpys_to_the_bit():
    """find_object's threshold comes from it: a value a rounding away would move a box edge."""
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(1, 3000))
        a = (rng.random(n) * rng.choice([1.0, 255.0, 1e5])).astype(
            rng.choice([np.float32, np.float64])
        )
        if rng.random() < 0.3:
            a = np.round(a)  # ties
        q = float(rng.choice([0.0, 1.0, 50.0, 99.5, 100.0, rng.uniform(0, 100)]))
        want, got = np.percentile(a, q), _percentile(a.reshape(-1, 1) if n % 2 else a, q)
        assert got == want and np.asarray(got).dtype == np.asarray(want).dtype, (n, q)


def _mixed_images(seed: int = 0) -> list[Image.Image]:
    """Small items (light and dark, gray and colour, some with a frame line), photos, and odd
    sizes: several same-sized groups whose members differ in frame lines and contents."""
    rng = np.random.default_rng(seed)
    out: list[Image.Image] = []
    for i, x in enumerate(_items(24, seed)):
        img = Image.fromarray(255 - x if i % 2 else x)
        if i % 5 == 0:  # a 1 px frame line around some of them
            a = np.array(img)
            a[0, :], a[-1, :], a[:, 0], a[:, -1] = 120, 120, 120, 120
            img = Image.fromarray(a)
        out.append(img.convert("RGB") if i % 3 == 0 else img)
    out += [_open(p.data) for p in photos(_items(4, seed + 1), seed=seed)]
    for _ in range(6):
        w, h = int(rng.integers(3, 90)), int(rng.integers(3, 90))
        out.append(Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)))
    return out


def test_batched_objects_equal_one_at_a_time():
    imgs = _mixed_images()
    one_by_one = [find_object(img) for img in imgs]
    assert find_objects(imgs) == one_by_one
    assert sum(b.found for b in one_by_one) > len(imgs) // 2  # mostly objects: a real check
    assert find_objects(imgs[::-1]) == one_by_one[::-1]  # no order dependence within a group


@pytest.mark.parametrize("fit", ["object", "digit", "frame"])
def test_prepare_many_equals_prepare_with_framing_and_keeps_errors_in_place(fit):
    pre = Preprocess(1, (28, 28), "pad", mean=(0.3,), std=(0.35,), dark_background=True, fit=fit)
    imgs: list = _mixed_images(1)
    big = Image.fromarray((np.random.default_rng(2).random((300, 400)) * 255).astype(np.uint8))
    inputs = [*imgs[:5], b"not an image", big, *imgs[5:]]
    out = pre.prepare_many(inputs)
    assert len(out) == len(inputs)
    assert isinstance(out[5], DataError) and "image" in str(out[5])
    for item, got in zip(inputs, out, strict=True):
        if isinstance(got, DataError):
            continue
        x, found = pre.prepare_with_framing(item)
        assert torch.equal(got[0], x) and got[1] == found
