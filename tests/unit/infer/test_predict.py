"""Prediction on files, folders and globs with a small deterministic model."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from sightline.data.preprocess import Preprocess
from sightline.infer.predict import expand_inputs, predict_files, predict_tensor

CLASSES = ["dark", "bright"]


class Brightness(nn.Module):
    """Logits from mean brightness: bright images → class 1."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], 1) * self.scale


PRE = Preprocess(1, (8, 8), mean=(0.5,), std=(0.5,))


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.full((10, 10), 240, np.uint8)).save(tmp_path / "bright.png")
    Image.fromarray(np.full((12, 9, 3), 10, np.uint8)).save(tmp_path / "dark.jpg")
    Image.fromarray(np.full((5, 5), 250, np.uint8)).save(tmp_path / "sub" / "nested.bmp")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_expand_inputs(folder):
    files, problems = expand_inputs(
        [str(folder), str(folder / "*.png"), str(folder / "nope.png"), str(folder / "*.tif")]
    )
    names = [f.name for f in files]
    assert sorted(names) == sorted(
        ["bright.png", "dark.jpg", "nested.bmp", "corrupt.png", "zero.jpg"]
    )  # deduplicated
    assert [p[0].split("/")[-1] for p in problems] == ["nope.png", "*.tif"]


def test_predict_files_skips_bad_files_and_goes_on(folder):
    report = predict_files(Brightness(), PRE, CLASSES, [str(folder)], top_k=2)
    got = {p.path.split("/")[-1]: p.label for p in report.predictions}
    assert got == {"bright.png": "bright", "dark.jpg": "dark", "nested.bmp": "bright"}
    reasons = {path.split("/")[-1]: reason for path, reason in report.skipped}
    assert set(reasons) == {"corrupt.png", "zero.jpg"} and "empty" in reasons["zero.jpg"]
    p = report.predictions[0]
    assert len(p.top) == 2 and abs(sum(p.probabilities) - 1) < 1e-5


def test_output_formats_parse_back(folder):
    report = predict_files(Brightness(), PRE, CLASSES, [str(folder)], top_k=2)
    data = json.loads(report.to_json())
    assert len(data["predictions"]) == 3 and len(data["skipped"]) == 2
    assert data["predictions"][0]["top"][0]["label"] == data["predictions"][0]["label"]
    rows = list(csv.DictReader(io.StringIO(report.to_csv())))
    assert len(rows) == 3 and set(rows[0]) == {"path", "label", "confidence", "label2", "p2"}
    assert "bright.png" in report.to_table()


def test_chunking_gives_same_results(folder):
    one = predict_files(Brightness(), PRE, CLASSES, [str(folder)], batch_size=256)
    small = predict_files(Brightness(), PRE, CLASSES, [str(folder)], batch_size=1)
    assert [p.confidence for p in one.predictions] == [p.confidence for p in small.predictions]
    assert one.skipped == small.skipped


def test_predict_tensor_accepts_many_kinds(folder):
    batch = torch.full((3, 1, 8, 8), 250, dtype=torch.uint8)
    assert predict_tensor(Brightness(), PRE, batch).argmax(1).tolist() == [1, 1, 1]
    probs = predict_tensor(
        Brightness(), PRE, [str(folder / "dark.jpg"), np.full((4, 4), 255, np.uint8)]
    )
    assert probs.argmax(1).tolist() == [0, 1]
    assert predict_tensor(Brightness(), PRE, str(folder / "bright.png")).shape == (1, 2)
