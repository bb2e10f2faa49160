"""Integration (issue 10, "Folders"): a user's small, messy folder of digits trains well with no
flags. The folder is built from the real MNIST files of the mirror (tests/digit_folder.py); the
`mirror` fixture skips these tests without it, and fails them under CI. The time target (≤ 60 s
on 2 cores) is measured by benchmarks/folder_train.py, not here."""

from __future__ import annotations

import pytest
from digit_folder import build_folder, held_out_digits, mnist, save_test_folder

import sightline

pytestmark = pytest.mark.integration


def test_a_folder_of_200_digits_reaches_95_percent_with_no_flags(mirror, tmp_path):
    digits = mnist(mirror, cache_dir=tmp_path / "cache")
    folder = build_folder(
        tmp_path / "digits", digits
    )  # 200 training digits 0-4, 28/40/56 px, L/RGB/RGBA, PNG/JPEG
    test_folder = save_test_folder(
        tmp_path / "test_digits", *held_out_digits(digits)
    )  # 500 other (test) digits
    events: list[dict] = []

    # What `sightline train ./digits` runs: no data, model or training options.
    result = sightline.run_training(
        str(folder), runs_dir=tmp_path / "runs", progress="quiet", on_event=events.append
    )

    assert result.status == "finished"
    data = next(e for e in events if e["kind"] == "data")
    assert data["input_shape"] == [1, 40, 40]  # gray whatever the files' modes; the median size
    assert data["skipped_count"] == 1  # the broken PNG (the .txt and Thumbs.db are not images)
    notes = [e["text"] for e in events if e["kind"] == "message" and e.get("topic")]
    assert any(n.startswith("channels 1: every image is gray") for n in notes)
    assert any(n.startswith("no horizontal flips") for n in notes)
    assert not any(n.startswith("warning") for n in notes)  # 40 images in each class

    metrics = result.run.evaluate(str(test_folder))
    assert metrics.count == 500
    assert metrics.accuracy >= 0.95, metrics.accuracy


def test_the_keras_style_fit_trains_the_folder_as_the_command_line_does(mirror, tmp_path):
    """`sightline.fit(None, "./digits")` used to skip the folder recipe and diverge (fastcnn's SGD
    at lr 0.2 on 9 steps an epoch) where `sightline train ./digits` reached 99 %."""
    digits = mnist(mirror, cache_dir=tmp_path / "cache")
    folder = build_folder(tmp_path / "digits", digits)
    test_folder = save_test_folder(tmp_path / "test_digits", *held_out_digits(digits))

    run = sightline.fit(None, str(folder), runs_dir=tmp_path / "runs", progress="quiet")

    assert run.status["status"] == "finished"
    assert run.config["train"]["extra"]["recipe"] == "folder"
    metrics = run.evaluate(str(test_folder))
    assert metrics.count == 500
    assert metrics.accuracy >= 0.95, metrics.accuracy
