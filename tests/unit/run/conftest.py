"""The small run the export tests share: a fastcnn trained for 4 epochs on a folder of 12 px
gray squares with train and test splits (so every export's check reads labels)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sightline


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fastcnn run on a folder with train and test splits (labels the check can read)."""
    from test_train import make_dataset

    root = tmp_path_factory.mktemp("int8")
    data = make_dataset(n_per_class=60)
    for split, part in (("train", data.train), ("test", data.test)):
        for i, (x, y) in enumerate(zip(part.images, part.labels, strict=True)):
            folder = root / "squares" / split / f"class{int(y)}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[0].numpy()).save(folder / f"{i:03d}.png")
    torch.manual_seed(0)
    result = sightline.run_training(str(root / "squares"), "fastcnn", runs_dir=root / "runs",
                                    epochs=4, progress="quiet", report=False, name="squares",
                                    model_options={"width": 8})  # fmt: skip
    return result.run
