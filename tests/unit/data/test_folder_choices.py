"""What a user's folder is loaded and trained as when no flags are given (issue 10, "Folders"):
gray detection by content, the input size from the images, the notes and warnings, and the
folder training recipe and its precedence under the user's own options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sightline
from sightline.data import load_dataset
from sightline.data.dataset import Dataset, ImageSet
from sightline.data.folder_choices import (
    MAX_SIDE,
    choose_size,
    class_notes,
    is_gray_content,
    probe_size,
)
from sightline.data.folders import load_folder
from sightline.data.preprocess import Preprocess
from sightline.models import get_model_entry
from sightline.plan.folder_recipe import (
    MAX_EPOCHS,
    MIN_STEPS,
    folder_recipe,
    is_user_folder,
    looks_like_glyphs,
    short_of_recipe,
)


def digit_image(side: int, value: int = 200, seed: int = 0) -> np.ndarray:
    """A gray "stroke" on black, side x side."""
    a = np.zeros((side, side), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    r = rng.integers(side // 4, 3 * side // 4)
    a[r : r + max(2, side // 8), side // 5 : 4 * side // 5] = value
    return a


def write(path: Path, img: Image.Image, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


def gray_folder(root: Path, per_class: int = 12, sides: tuple[int, ...] = (28, 40, 56)) -> Path:
    """Gray images stored as L, RGB and RGBA, PNG and JPEG, in several sizes; classes 0/1/2."""
    n = 0
    for c in ("0", "1", "2"):
        for i in range(per_class):
            side = sides[n % len(sides)]
            img = Image.fromarray(digit_image(side, seed=n), "L").convert(
                ("L", "RGB", "RGBA")[(n // 2) % 3]
            )
            fmt = "jpg" if img.mode == "RGB" and n % 4 == 1 else "png"
            write(root / c / f"{i}.{fmt}", img, **({"quality": 80} if fmt == "jpg" else {}))
            n += 1
    return root


def toy_dataset(
    classes: list[str],
    n_train: int,
    n_val: int | None,
    side: int = 28,
    load_options: dict | None = None,
) -> Dataset:
    def part(n: int) -> ImageSet:
        return ImageSet(
            torch.zeros((n, 1, side, side), dtype=torch.uint8), torch.arange(n) % len(classes)
        )

    return Dataset(
        "toy",
        classes,
        part(n_train),
        part(n_val) if n_val else None,
        None,
        Preprocess(1, (side, side)),
        load_options=load_options if load_options is not None else {"name_or_path": "/data/toy"},
    )


# ----------------------------------------------------------------------- channels
def test_gray_images_stored_as_rgb_and_rgba_give_one_channel(tmp_path):
    ds = load_folder(gray_folder(tmp_path))
    assert ds.input_shape[0] == 1
    channels = ds.notes[0]
    assert channels.startswith("channels 1: every image is gray") and "stored as RGB" in channels
    assert "stored as RGBA" in channels


def test_one_colour_image_makes_the_folder_rgb(tmp_path):
    gray_folder(tmp_path)
    a = np.stack([digit_image(40)] * 3, axis=2)
    a[..., 0] = np.clip(a[..., 0].astype(int) + 40, 0, 255)  # a red tint: colour
    write(tmp_path / "1" / "red.png", Image.fromarray(a, "RGB"))
    ds = load_folder(tmp_path)
    assert ds.input_shape[0] == 3
    assert ds.notes[0] == "channels 3: 1 of 37 images are in colour"
    # the gray images are the same in all three planes
    assert torch.equal(ds.train.images[0, 0], ds.train.images[0, 2])


def test_explicit_channels_are_kept_and_said(tmp_path):
    ds = load_folder(gray_folder(tmp_path), channels=3)
    assert ds.input_shape[0] == 3 and ds.notes[0] == "channels 3: as given"


def test_gray_content_tolerates_jpeg_noise_but_not_a_tint():
    base = np.stack([digit_image(32)] * 3, axis=2).astype(int)
    noisy = base + np.random.default_rng(0).integers(-3, 4, base.shape)
    assert is_gray_content(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"))
    tinted = base.copy()
    tinted[..., 2] += 20
    assert not is_gray_content(Image.fromarray(np.clip(tinted, 0, 255).astype(np.uint8), "RGB"))
    big = np.zeros((1200, 900, 3), dtype=np.uint8)  # a large photo is judged on a reduced copy
    big[100:300, 100:300] = (200, 30, 30)
    assert not is_gray_content(Image.fromarray(big, "RGB"))


# ----------------------------------------------------------------------- size
def test_mixed_sizes_take_the_median_and_say_so(tmp_path):
    ds = load_folder(gray_folder(tmp_path))
    assert ds.input_shape[1:] == (40, 40)
    assert (
        ds.notes[1]
        == "size 40x40: the median image is 40x40 px; the longer sides range from 28 to 56 px"
    )


def test_all_the_same_small_size_is_kept_native():
    assert choose_size([(20, 24)] * 5)[0] == (20, 24)
    assert choose_size([(28, 28)] * 3)[1] == "size 28x28: every image is 28x28 px, kept as it is"


def test_large_images_are_capped_for_cpu_cost():
    size, note = choose_size([(480, 640), (600, 800), (768, 1024)])
    assert size == (48, 64) and max(size) <= MAX_SIDE  # their shared 3:4 shape is kept
    assert "at most 64 px a side" in note and "--size" in note
    size, note = choose_size([(480, 640), (640, 480), (500, 500)])
    assert size == (64, 64) and "square" in note  # portrait and landscape mixed


def test_small_images_are_never_enlarged_by_rounding():
    assert choose_size([(30, 30), (30, 30), (26, 26)])[0] == (28, 28)  # 32 would enlarge 30
    assert choose_size([(31, 31), (34, 34), (36, 36)])[0] == (32, 32)  # median 34 → 32
    assert choose_size([(10, 10), (11, 11), (12, 12)])[0] == (11, 11)  # tiny: kept as they are


def test_size_is_chosen_from_headers_even_for_large_files(tmp_path):
    write(tmp_path / "a" / "big.jpg", Image.new("RGB", (1200, 800), (90, 90, 90)), quality=70)
    assert probe_size(tmp_path / "a" / "big.jpg") == (800, 1200)
    (tmp_path / "a" / "bad.png").write_bytes(b"nope")
    assert probe_size(tmp_path / "a" / "bad.png") is None


def test_a_sample_of_a_large_folder_says_it_was_sampled():
    _, note = choose_size([(40, 40), (56, 56), (28, 28)], sampled_from=9000)
    assert "(3 sampled of 9,000)" in note


def test_explicit_size_is_kept_and_said(tmp_path):
    ds = load_folder(gray_folder(tmp_path), size=24)
    assert ds.input_shape[1:] == (24, 24) and ds.notes[1] == "size 24x24: as given"


# ----------------------------------------------------------------------- classes
def test_counts_per_class_and_no_warning_when_fine():
    assert class_notes(["cat", "dog"], [40, 38], skipped=1) == [
        "images per class: cat: 40, dog: 38 (1 unreadable file skipped)"
    ]


def test_tiny_and_unbalanced_classes_are_warned_about(tmp_path):
    for c, n in (("big", 60), ("mid", 20), ("tiny", 4)):
        for i in range(n):
            write(tmp_path / c / f"{i}.png", Image.fromarray(digit_image(16, seed=i), "L"))
    ds = load_dataset(tmp_path, progress=False)
    lines = ds.notes  # load_dataset keeps the folder's notes
    assert lines[2] == "images per class: big: 60, mid: 20, tiny: 4"
    few = next(x for x in lines if "fewer than 10" in x)
    assert few.startswith("warning: 1 class with fewer than 10 images: tiny (4)")
    unbalanced = next(x for x in lines if "unbalanced" in x)
    assert "big has 60 images, tiny only 4 (15x)" in unbalanced


# ----------------------------------------------------------------------- recipe
def test_recipe_for_a_small_folder_of_digits():
    data = toy_dataset(["0", "1", "2", "3", "4"], 180, 20, side=40)
    chosen, notes = folder_recipe(data, "fastcnn", {})
    assert chosen["optimizer"] == "adamw" and chosen["batch_size"] == 32
    assert (
        chosen["epochs"] * 6 >= MIN_STEPS and chosen["epochs"] <= MAX_EPOCHS
    )  # 180 images: 6 steps of 32
    assert chosen["translate"] == 2 and chosen["flip"] is False and chosen["monitor"] == "loss"
    assert any(n.startswith("no horizontal flips: the class names (0, 1, 2, 3, 4)") for n in notes)
    assert any(
        n.startswith(f"epochs {chosen['epochs']}: 180 training images make 6 steps") for n in notes
    )


def test_a_frozen_head_on_a_small_validation_split_keeps_its_last_epoch():
    # Otherwise the recipe leaves a frozen head alone. 60 validation images picked epoch 1 of 40
    # on 540 CIFAR photos (96.2 %; the last: 97.5 %).
    data = toy_dataset(["plane", "car", "bird"], 540, 60)
    chosen, notes = folder_recipe(data, "efficientnet-lite2", {"freeze": True})
    assert chosen == {"monitor": "loss"}  # nothing else: the head keeps FROZEN_HEAD_DEFAULTS
    assert notes[0].startswith("best checkpoint by training loss") and "60 validation" in notes[0]
    given = {"freeze": True, "monitor": "val_accuracy"}
    assert folder_recipe(data, "efficientnet-lite2", given) == ({}, [])
    # Fine-tuning pretrained weights (freeze False) takes the same rule and nothing else.
    tuned, _ = folder_recipe(data, "efficientnet-lite2", {"freeze": False}, pretrained=True)
    assert tuned == {"monitor": "loss"}
    big = toy_dataset(["plane", "car", "bird"], 2700, 300)  # 300 validation images choose
    assert folder_recipe(big, "efficientnet-lite2", {"freeze": True}) == ({}, [])


def test_recipe_never_overrides_what_the_user_gave():
    data = toy_dataset(["0", "1"], 180, 20)
    given = {
        "epochs": 2,
        "lr": 0.3,
        "batch_size": 128,
        "translate": 0,
        "flip": True,
        "monitor": "val_accuracy",
    }
    chosen, _ = folder_recipe(data, "fastcnn", given)
    assert not set(chosen) & set(given)
    assert "optimizer" not in chosen  # an lr is only meaningful with the optimizer it was meant for
    # An optimizer other than the model's, without an lr: an lr suited to it, not the model's.
    chosen, notes = folder_recipe(data, "mlp", {"optimizer": "sgd"})
    assert chosen["lr"] == pytest.approx(0.05) and "optimizer" not in chosen
    assert any("--optimizer sgd" in n for n in notes)
    chosen, _ = folder_recipe(data, "fastcnn", {"optimizer": "adam"})
    assert chosen["lr"] == pytest.approx(2e-3)
    chosen, _ = folder_recipe(data, "fastcnn", {"optimizer": "sgd"})
    assert "lr" not in chosen  # the model's own optimizer: its own lr


def test_given_epochs_stand_and_are_warned_about_when_they_train_fewer_steps():
    data = toy_dataset(["cat", "dog"], 5, 2)  # 5 images: 1 step of 32 an epoch
    chosen, notes = folder_recipe(data, "fastcnn", {"epochs": 5})
    assert "epochs" not in chosen
    assert short_of_recipe(data, "fastcnn", {"epochs": 5}) == {
        "epochs": 5,
        "steps_per_epoch": 1,
        "steps": 5,
        "recipe_epochs": MAX_EPOCHS,
        "recipe_steps": MAX_EPOCHS,
    }
    assert f"warning: 5 epochs × 1 step = 5 steps; the recipe would train {MAX_EPOCHS}" in notes[0]
    assert notes[-1] == "options you set (epochs, lr, ...) override these"  # no face's words
    # As many epochs as the recipe's, or the steps chosen outright: nothing to warn about.
    assert short_of_recipe(data, "fastcnn", {"epochs": MAX_EPOCHS}) is None
    assert short_of_recipe(data, "fastcnn", {"epochs": 5, "max_steps": 5}) is None
    assert short_of_recipe(data, "fastcnn", {}) is None


def test_recipe_keeps_large_folders_on_the_models_tuned_settings():
    # Measured: on 18,000 Fashion-MNIST images fastcnn's own SGD reaches 90.3 %, AdamW with
    # shifts 88.7 %; on 4,500 CIFAR-10 images the small-folder settings win (62.5 % vs 45.3 %).
    data = toy_dataset(["cat", "dog", "bird"], 60_000, 6_000)
    chosen, notes = folder_recipe(data, "fastcnn", {})
    assert (
        chosen == {} and notes == []
    )  # 938 steps an epoch; flips: the dataset decides; 6,000 val images
    chosen, _ = folder_recipe(toy_dataset(["cat", "dog"], 4_500, 500), "fastcnn", {})
    assert chosen == {"batch_size": 32, "optimizer": "adamw", "lr": 2e-3, "translate": 2}


def test_recipe_caps_epochs_for_a_tiny_folder_and_keeps_adam_models_optimizer():
    data = toy_dataset(["a", "b"], 20, 4)
    chosen, _ = folder_recipe(data, "mlp", {})
    assert chosen["epochs"] == MAX_EPOCHS
    assert (
        "optimizer" not in chosen and "lr" not in chosen
    )  # the mlp's Adam at 1e-3 is fine as it is


def test_glyph_like_class_names():
    assert looks_like_glyphs(["0", "1", "9"]) and looks_like_glyphs(["a", "B", "c"])
    assert looks_like_glyphs(["digit_3", "digit_7"]) and looks_like_glyphs(["one", "two"])
    assert not looks_like_glyphs(["cat", "dog"]) and not looks_like_glyphs(["0", "cat"])


def test_recipe_applies_to_user_folders_only(tmp_path):
    assert is_user_folder(toy_dataset(["a", "b"], 10, 2))
    assert not is_user_folder(
        toy_dataset(["a", "b"], 10, 2, load_options={"name_or_path": "mnist"})
    )
    assert not is_user_folder(toy_dataset(["a", "b"], 10, 2, load_options={}))
    assert not is_user_folder(
        toy_dataset(["a", "b"], 10, 2, load_options={"name_or_path": "x", "in_memory": True})
    )
    assert is_user_folder(load_dataset(gray_folder(tmp_path), progress=False))


# ----------------------------------------------------------------------- wiring
def test_run_training_on_a_folder_uses_the_recipe_under_the_users_options(tmp_path):
    events: list[dict] = []
    result = sightline.run_training(
        gray_folder(tmp_path / "digits", per_class=8),
        "fastcnn",
        runs_dir=tmp_path / "runs",
        progress="quiet",
        evaluate=False,
        report=False,
        on_event=events.append,
        epochs=3,
        max_steps=2,
        lr=None,
    )
    messages = [
        (e["topic"], e["text"]) for e in events if e["kind"] == "message" and e.get("topic")
    ]
    assert ("data", "images per class: 0: 8, 1: 8, 2: 8") in messages
    assert any(t == "recipe" and text.startswith("optimizer adamw") for t, text in messages)
    train = json.loads((result.run.path / "config.json").read_text())["train"]
    assert train["epochs"] == 3  # the user's
    assert (
        train["optimizer"] == "adamw" and train["flip"] is False and train["translate"] == 2
    )  # the recipe's
    assert train["momentum"] == get_model_entry("fastcnn").train_defaults["momentum"]  # the model's
    assert (
        train["extra"]["recipe"] == "folder"
        and "images per class: 0: 8, 1: 8, 2: 8" in train["extra"]["notes"]
    )


def test_the_command_line_prints_the_notes(tmp_path, capsys):
    from sightline.cli import main

    code = main(
        [
            "train",
            str(gray_folder(tmp_path / "digits", per_class=8)),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--max-steps",
            "1",
            "--no-eval",
            "--progress",
            "lines",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "  channels 1: every image is gray" in out and "  size 40x40: the median image" in out
    assert "  no horizontal flips" in out and "  optimizer adamw" in out


def test_built_in_datasets_get_no_recipe(tmp_path):
    data = toy_dataset(["0", "1"], 64, 8, load_options={"name_or_path": "mnist"})
    result = sightline.run_training(
        data,
        "fastcnn",
        runs_dir=tmp_path,
        progress="quiet",
        evaluate=False,
        report=False,
        max_steps=1,
    )
    train = result.run.config["train"]
    assert (
        train["optimizer"] == "sgd"
        and train["epochs"] == get_model_entry("fastcnn").train_defaults["epochs"]
    )


def test_loading_a_folder_leaves_the_processs_warning_filters_as_they_were(tmp_path):
    """Images are probed and decoded in threads, where warnings.catch_warnings is not safe: two
    threads inside it once left an "ignore every warning" filter behind for the whole process
    (a tracker's warning, any library's, was then never shown)."""
    import warnings

    for c in range(2):
        (tmp_path / f"c{c}").mkdir()
        for i in range(40):
            Image.new("RGB", (20 + i % 7, 16), (40 * c, i, 90)).save(
                tmp_path / f"c{c}" / f"{i}.png"
            )
    before = list(warnings.filters)
    load_folder(tmp_path)
    assert warnings.filters == before
    with pytest.warns(UserWarning, match="still shown"):
        warnings.warn("still shown", UserWarning, stacklevel=1)
