"""Every plot renders headless on generated data, saves as a real non-blank PNG/SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image

from sightline import plots
from sightline.errors import SightlineError
from sightline.plots import CORRECT, WRONG

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(40) % 10
    logits = torch.randn(40, 10, generator=g)
    logits[:30, :] -= 5
    logits[torch.arange(30), labels[:30]] += 10  # first 30 right, last 10 mostly wrong
    probs = logits.softmax(1)
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return images, labels, probs, losses


def all_figures(batch):
    images, labels, probs, losses = batch
    confusion = torch.bincount(labels * 10 + probs.argmax(1), minlength=100).view(10, 10)
    history = [{"epoch": e, "loss": 1 / e, "accuracy": 1 - 0.5 / e, "val_loss": 1.1 / e, "val_accuracy": 1 - 0.6 / e} for e in range(1, 6)]
    return {
        "image": plots.plot_image(images[0], title="first image"),
        "samples": plots.plot_samples(images, labels, CLASSES, random=True, dark_background=True),
        "rgb-samples": plots.plot_samples(torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8), torch.arange(6) % 3, ["a", "b", "c"], rows=2, cols=3),
        "predictions": plots.plot_predictions(images, labels, probs, CLASSES),
        "probabilities": plots.plot_probabilities(images[0], probs[0], CLASSES, label=int(labels[0])),
        "probability-grid": plots.plot_probability_grid(images, labels, probs, CLASSES),
        "curves": plots.plot_curves(history, best_epoch=5, stopped_epoch=5),
        "confusion": plots.plot_confusion(confusion, CLASSES),
        "confusion-normalized": plots.plot_confusion(confusion, CLASSES, normalize=True),
        "per-class": plots.plot_per_class_accuracy(confusion, CLASSES),
        "top-losses": plots.plot_top_losses(images, labels, probs, losses, CLASSES, k=8),
        "schedule": plots.plot_lr_schedule(0.2, "onecycle", 0.2, 4, 100),
    }


def test_every_figure_saves_as_a_non_blank_png(batch, tmp_path):
    for name, fig in all_figures(batch).items():
        path = plots.save_figure(fig, tmp_path / f"{name}.png", dpi=80)
        with Image.open(path) as im:
            w, h = fig.get_size_inches() * 80
            assert abs(im.size[0] - w) <= 2 and abs(im.size[1] - h) <= 2, name
            assert np.asarray(im.convert("L")).std() > 10, f"{name} looks blank"


def test_svg_is_xml_with_class_names(batch, tmp_path):
    images, labels, probs, _ = batch
    path = plots.save_figure(plots.plot_samples(images, labels, CLASSES), tmp_path / "s.svg")
    ET.parse(path)
    assert "Ankle boot" in path.read_text() or "Ankle" in path.read_text()


def test_bad_suffix_is_a_clear_error(batch, tmp_path):
    with pytest.raises(SightlineError, match=".png or .svg"):
        plots.save_figure(plots.plot_image(batch[0][0]), tmp_path / "x.gif")


def _label_colors(fig):
    return [ax.xaxis.label.get_color() for ax in fig.axes if ax.xaxis.label.get_text()]


def test_prediction_colours_follow_correctness(batch):
    images, labels, probs, _ = batch
    correct = (probs.argmax(1) == labels).tolist()
    colors = _label_colors(plots.plot_predictions(images, labels, probs, CLASSES, rows=8, cols=5))
    assert colors == [CORRECT if c else WRONG for c in correct]
    only = _label_colors(plots.plot_predictions(images, labels, probs, CLASSES, only_mistakes=True))
    assert only and set(only) == {WRONG} and len(only) == correct.count(False)


def test_probability_bars_mark_predicted_red_and_true_blue(batch):
    images, labels, probs, _ = batch
    wrong = int((probs.argmax(1) != labels).nonzero()[0])
    fig = plots.plot_probabilities(images[wrong], probs[wrong], CLASSES, label=int(labels[wrong]))
    bars = fig.axes[1].patches
    from matplotlib.colors import to_hex

    assert to_hex(bars[int(probs[wrong].argmax())].get_facecolor()) == WRONG
    assert to_hex(bars[int(labels[wrong])].get_facecolor()) == CORRECT


def test_most_confused_order():
    cm = np.array([[5, 3, 0], [7, 2, 1], [0, 0, 9]])
    assert plots.most_confused(cm, ["a", "b", "c"], k=3) == [("b", "a", 7), ("a", "b", 3), ("b", "c", 1)]


def test_curves_without_validation():
    fig = plots.plot_curves([{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": None, "val_accuracy": None}])
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]


def test_confusion_cells_show_counts_or_percentages():
    cm = np.array([[8, 2], [1, 9]])
    counts = [t.get_text() for t in plots.plot_confusion(cm, ["a", "b"]).axes[0].texts]
    assert counts == ["8", "2", "1", "9"]
    shares = [t.get_text() for t in plots.plot_confusion(cm, ["a", "b"], normalize=True).axes[0].texts]
    assert shares == ["80%", "20%", "10%", "90%"]
