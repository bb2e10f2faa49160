"""The one preprocessing object: round trips, input kinds, background polarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sightline.data.preprocess import Preprocess


def object_on_black(size: int = 28) -> np.ndarray:
    a = np.zeros((size, size), np.uint8)
    a[6:22, 9:19] = 200  # a bright "garment"
    a[10:14, 12:16] = 255
    return a


def test_dict_round_trip():
    p = Preprocess(3, (32, 32), "crop", (0.4, 0.5, 0.6), (0.2, 0.2, 0.3), False)
    assert Preprocess.from_dict(p.to_dict()) == p


def test_shift_tta_round_trips_and_old_dicts_have_none():
    p = Preprocess(1, (28, 28), flip_tta=True, shift_tta=2)
    assert Preprocess.from_dict(p.to_dict()) == p
    old = {k: v for k, v in p.to_dict().items() if k != "shift_tta"}  # a run saved before shift TTA
    assert Preprocess.from_dict(old).shift_tta == 0
    with pytest.raises(ValueError, match="shift_tta must be from 0 to 1"):
        Preprocess(1, (4, 4), shift_tta=2)  # reflection needs a shift under half the side
    with pytest.raises(ValueError, match="shift_tta"):
        Preprocess(1, (28, 28), shift_tta=-1)


@pytest.mark.parametrize(
    "flip, shift, count", [(False, 0, 1), (True, 0, 2), (False, 1, 3), (True, 2, 6)]
)
def test_tta_views_are_the_image_its_shifts_and_their_mirrors(flip, shift, count):
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    views = Preprocess(3, (8, 8), flip_tta=flip, shift_tta=shift).tta_views(x)
    assert (
        len(views) == count and all(v.shape == x.shape for v in views) and torch.equal(views[0], x)
    )
    if shift:
        s = shift
        assert torch.equal(views[1][..., s:, s:], x[..., :-s, :-s])  # moved down and right
        assert torch.equal(views[2][..., :-s, :-s], x[..., s:, s:])  # moved up and left
        assert torch.equal(views[1][..., 0, s:], x[..., s, :-s])  # the edge reflected, not zeros
    if flip:
        half = count // 2
        assert all(
            torch.equal(m, v.flip(-1)) for v, m in zip(views[:half], views[half:], strict=True)
        )


def test_normalize_denormalize_inverse():
    p = Preprocess(1, (4, 4), mean=(0.3,), std=(0.2,))
    x = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    assert torch.allclose(p.denormalize(p.normalize(x)), x.float(), atol=1e-3)


def test_invalid_values_rejected():
    with pytest.raises(ValueError):
        Preprocess(2, (4, 4))
    with pytest.raises(ValueError):
        Preprocess(1, (4, 4), resize="stretch")


def test_path_pil_array_tensor_agree(tmp_path):
    a = object_on_black()
    path = tmp_path / "x.png"
    Image.fromarray(a).save(path)
    p = Preprocess(1, (28, 28), dark_background=True)
    ref = p.prepare_image(path)
    for other in (Image.fromarray(a), a, torch.from_numpy(a)[None]):
        assert torch.equal(p.prepare_image(other), ref)
    assert ref.shape == (1, 28, 28) and ref.dtype == torch.uint8
    assert p([path, path]).shape == (2, 1, 28, 28)


def test_outside_photo_matches_dark_background_data(tmp_path):
    """A dark object on a white 224x224 RGB JPEG comes out like the 28x28 original."""
    a = object_on_black()
    photo = Image.fromarray(255 - a).resize((224, 224), Image.Resampling.BICUBIC).convert("RGB")
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=90)
    got = Preprocess(1, (28, 28), dark_background=True).prepare_image(path)[0].float().numpy()
    assert np.abs(got - a).mean() < 20
    assert np.corrcoef(got.ravel(), a.ravel().astype(float))[0, 1] > 0.9
    assert got[0].max() < 30  # the white background became black


def test_light_background_kept_for_ordinary_models(tmp_path):
    light = np.full((28, 28), 240, np.uint8)
    light[10:18, 10:18] = 20
    got = Preprocess(1, (28, 28), dark_background=False).prepare_image(light)
    assert got[0, 0, 0] > 200 and got[0, 14, 14] < 50


def test_pad_uses_the_photo_background():
    wide = np.full((20, 60, 3), 250, np.uint8)  # white landscape photo
    got = Preprocess(3, (32, 32), resize="pad").prepare_image(wide)
    assert got.min() > 200  # padding is white, not a black frame


def test_normalize_makes_its_constants_once_and_they_serve_any_mode():
    """normalize's mean and scale are made once per (statistics, device): a fresh tensor each
    batch would be a copy to the GPU that waits for its queue. Made under inference_mode, they
    still serve a later batch that autograd records."""
    from sightline.data import preprocess as module

    p = Preprocess(size=(4, 4), channels=3, mean=(0.1, 0.2, 0.3), std=(0.2, 0.25, 0.5))
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    expected = (x.float() / 255.0 - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.25, 0.5]
    ).view(1, 3, 1, 1)
    module._scaling.cache_clear()
    with torch.inference_mode():
        torch.testing.assert_close(p.normalize(x), expected)
    made = module._scaling.cache_info().misses
    for _ in range(3):
        out = p.normalize(x)
    torch.testing.assert_close(out, expected)
    assert module._scaling.cache_info().misses == made == 1
    w = torch.ones(1, requires_grad=True)
    (p.normalize(x) * w).sum().backward()  # the cached constants are not inference tensors
    assert w.grad is not None
    other = Preprocess(size=(4, 4), channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert not torch.equal(other.normalize(x), out) and module._scaling.cache_info().misses == 2


def test_one_check_of_image_options_for_every_loader_and_face():
    """Issue 52: "channels must be 1 or 3" was written in five places; a JSON true passed as 1."""
    from sightline.data.preprocess import check_image_options
    from sightline.errors import DataError

    check_image_options(None, None, None)
    check_image_options(3, "pad", "object")
    for channels in (2, 0, True):
        with pytest.raises(DataError, match="channels must be 1 or 3"):
            check_image_options(channels, None)
    with pytest.raises(DataError, match="unknown resize mode 'zoom'"):
        check_image_options(None, "zoom")
    with pytest.raises(DataError, match="unknown fit 'tile'"):
        check_image_options(None, None, "tile")


def test_interpolation_round_trips_resamples_and_old_dicts_are_bilinear(tmp_path):
    p = Preprocess(3, (20, 20), "squash", interpolation="bicubic")
    assert Preprocess.from_dict(p.to_dict()) == p
    old = {k: v for k, v in p.to_dict().items() if k != "interpolation"}  # a run saved before
    assert Preprocess.from_dict(old).interpolation == "bilinear"
    with pytest.raises(ValueError, match="interpolation must be one of bilinear, bicubic"):
        Preprocess(3, (20, 20), interpolation="nearest")
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    bicubic = p.prepare_image(photo)
    bilinear = Preprocess(3, (20, 20), "squash").prepare_image(photo)
    assert bicubic.shape == bilinear.shape == (3, 20, 20) and not torch.equal(bicubic, bilinear)
    want = np.asarray(photo.resize((20, 20), Image.Resampling.BICUBIC)).transpose(2, 0, 1)
    assert torch.equal(bicubic, torch.from_numpy(want.copy()))


def test_a_folder_loaded_bicubic_is_prepared_as_its_photos_are_predicted(tmp_path):
    from sightline.data import load_dataset
    from sightline.errors import DataError

    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (30, 45, 3), dtype=np.uint8)).save(
                tmp_path / c / f"{i}.png"
            )
    data = load_dataset(tmp_path, size=16, val_split=0, interpolation="bicubic")
    assert data.preprocess.interpolation == "bicubic"
    assert data.load_options["interpolation"] == "bicubic"
    for image, path in zip(data.train.images, data.train.paths, strict=True):
        assert torch.equal(image, data.preprocess.prepare_image(path))  # training = predicting
    assert "interpolation" not in load_dataset(tmp_path, size=16, val_split=0).load_options
    with pytest.raises(DataError, match="unknown interpolation 'cubic'"):
        load_dataset(tmp_path, interpolation="cubic")
