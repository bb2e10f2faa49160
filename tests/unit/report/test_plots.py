"""Every plot renders headless on generated data, saves as a real non-blank PNG/SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from sightline import plots
from sightline.errors import SightlineError
from sightline.infer.calibration import reliability_bins
from sightline.plots import CORRECT, WRONG

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


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
    history = [
        {
            "epoch": e,
            "loss": 1 / e,
            "accuracy": 1 - 0.5 / e,
            "val_loss": 1.1 / e,
            "val_accuracy": 1 - 0.6 / e,
        }
        for e in range(1, 6)
    ]
    return {
        "image": plots.plot_image(images[0], title="first image"),
        "samples": plots.plot_samples(images, labels, CLASSES, random=True, dark_background=True),
        "rgb-samples": plots.plot_samples(
            torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8),
            torch.arange(6) % 3,
            ["a", "b", "c"],
            rows=2,
            cols=3,
        ),
        "predictions": plots.plot_predictions(images, labels, probs, CLASSES),
        "probabilities": plots.plot_probabilities(
            images[0], probs[0], CLASSES, label=int(labels[0])
        ),
        "probability-grid": plots.plot_probability_grid(images, labels, probs, CLASSES),
        "curves": plots.plot_curves(history, best_epoch=5, stopped_epoch=5),
        "confusion": plots.plot_confusion(confusion, CLASSES),
        "confusion-normalized": plots.plot_confusion(confusion, CLASSES, normalize=True),
        "per-class": plots.plot_per_class_accuracy(confusion, CLASSES),
        "top-losses": plots.plot_top_losses(images, labels, probs, losses, CLASSES, k=8),
        "schedule": plots.plot_lr_schedule(0.2, "onecycle", 0.2, 4, 100),
        "reliability": plots.plot_reliability(
            reliability_bins(probs, labels), 0.05, (reliability_bins(probs**2, labels), 0.1)
        ),
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
    return [t.get_color() for ax in fig.axes for t in ax.texts if t.get_text()]


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
    assert plots.most_confused(cm, ["a", "b", "c"], k=3) == [
        ("b", "a", 7),
        ("a", "b", 3),
        ("b", "c", 1),
    ]


def test_curves_without_validation():
    fig = plots.plot_curves(
        [{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": None, "val_accuracy": None}]
    )
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]


def test_confusion_cells_show_counts_or_percentages():
    cm = np.array([[8, 2], [1, 9]])
    counts = [t.get_text() for t in plots.plot_confusion(cm, ["a", "b"]).axes[0].texts]
    assert counts == ["8", "2", "1", "9"]
    shares = [
        t.get_text() for t in plots.plot_confusion(cm, ["a", "b"], normalize=True).axes[0].texts
    ]
    assert shares == ["80%", "20%", "10%", "90%"]


def test_curves_mark_best_and_stop_and_keep_the_legend_off_the_axes():
    history = [
        {"epoch": e, "loss": 1 / e, "accuracy": 0.5, "val_loss": 2 / e, "val_accuracy": 0.4}
        for e in range(1, 6)
    ]
    fig = plots.plot_curves(history, best_epoch=3, stopped_epoch=5)
    loss_ax = fig.axes[0]
    assert [list(line.get_xdata()) for line in loss_ax.lines[2:]] == [
        [3, 3],
        [5, 5],
    ]  # the two markers
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert "best (epoch 3)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert plots.plot_curves([]).texts  # no epochs yet: a message, not a crash


def _drawn(fig):
    """Lay the figure out and draw it (as saving does), returning the renderer for measuring."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlaps(texts, renderer) -> bool:
    """Whether any two labels overlap on the page.

    Rotated labels have axis-aligned boxes that overlap even when the text does not, so for
    those compare the gap between neighbouring parallel strips with the text height instead.
    """
    texts = [t for t in texts if t.get_text()]
    angle = np.deg2rad(texts[0].get_rotation()) if texts else 0.0
    if angle:
        anchors = np.array([t.get_transform().transform(t.get_position()) for t in texts])
        gaps = np.hypot(*np.diff(anchors, axis=0).T) * abs(np.sin(angle))
        height = renderer.points_to_pixels(texts[0].get_fontsize())
        return bool(len(gaps)) and gaps.min() < height
    boxes = [t.get_window_extent(renderer) for t in texts]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_ten_long_class_names_do_not_overlap(batch):
    images, labels, probs, _ = batch
    long = [f"{c} (long name)" for c in CLASSES]
    confusion = torch.bincount(labels * 10 + probs.argmax(1), minlength=100).view(10, 10)
    for fig in (
        plots.plot_confusion(confusion, long),
        plots.plot_probabilities(images[0], probs[0], long, label=0),
    ):
        renderer = _drawn(fig)
        for ax in fig.axes:
            assert not _overlaps(ax.get_xticklabels(), renderer)
            assert not _overlaps(ax.get_yticklabels(), renderer)
    fig = plots.plot_predictions(images, labels, probs, long)
    assert not _overlaps([t for ax in fig.axes for t in ax.texts], _drawn(fig))
    fig = plots.plot_probability_grid(images, labels, probs, long, rows=2, cols=3)
    captions = [t for t in fig.axes[0].texts if t.get_rotation() == 0]
    assert len(captions) == 6 and not _overlaps(captions, _drawn(fig))


def test_per_class_values_sit_clear_of_the_bars_and_mean_line():
    cm = np.array([[9, 1, 0], [5, 5, 0], [0, 3, 7]])
    fig = plots.plot_per_class_accuracy(cm, ["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["90.0%", "50.0%", "70.0%"]
    renderer = _drawn(fig)
    right = ax.get_window_extent(renderer).x1
    assert all(t.get_window_extent(renderer).x0 >= right for t in ax.texts)


def test_top_losses_show_the_highest_losses_first(batch):
    images, labels, probs, losses = batch
    fig = plots.plot_top_losses(images, labels, probs, losses, CLASSES, k=3)
    shown = [float(t.get_text().rsplit("loss ", 1)[1]) for t in fig.axes[0].texts]
    assert shown == pytest.approx(sorted(losses.tolist(), reverse=True)[:3], abs=0.01)


def test_lr_schedule_follows_lr_factor_in_epochs():
    from sightline.train.optim import lr_factor

    line = plots.plot_lr_schedule(0.1, "cosine", 0.1, 3, 10).axes[0].lines[0]
    assert line.get_xdata()[-1] == pytest.approx(2.9)
    assert line.get_ydata()[15] == pytest.approx(0.1 * lr_factor("cosine", 15, 30, 0.1))
    with pytest.raises(SightlineError, match="at least 1"):
        plots.plot_lr_schedule(0.1, "cosine", 0.1, 3, 0)


def test_numpy_images_channels_first_or_last(tmp_path):
    gray = np.tile(np.arange(28, dtype=np.uint8) * 9, (1, 28, 1))  # (1, 28, 28)
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16, 0] = 255
    cases = [
        (gray, (28, 28)),
        (gray[0], (28, 28)),
        (torch.from_numpy(gray)[None], (28, 28)),
        (rgb, (32, 32, 3)),
        (rgb.transpose(2, 0, 1), (32, 32, 3)),
    ]
    for image, shown in cases:
        fig = plots.plot_image(image)
        assert fig.axes[0].images[0].get_array().shape == shown
        plots.save_figure(fig, tmp_path / "x.png")
    with pytest.raises(SightlineError, match="shape"):
        plots.plot_image(np.zeros((5, 8, 8), np.uint8))


def test_mismatched_inputs_are_clear_errors(batch):
    images, labels, probs, losses = batch
    with pytest.raises(SightlineError, match="labels"):
        plots.plot_samples(images, labels[:5], CLASSES)
    with pytest.raises(SightlineError, match="class names"):
        plots.plot_samples(images, labels, CLASSES[:3])
    with pytest.raises(SightlineError, match="probabilities"):
        plots.plot_predictions(images, labels, probs[:, :5], CLASSES)
    with pytest.raises(SightlineError, match="losses"):
        plots.plot_top_losses(images, labels, probs, losses[:3], CLASSES)
    with pytest.raises(SightlineError, match="confusion"):
        plots.plot_confusion(np.eye(3), CLASSES)


def test_no_mistakes_gives_a_message_figure(batch):
    images, labels, _, _ = batch
    perfect = torch.nn.functional.one_hot(labels, 10).float()
    fig = plots.plot_predictions(images, labels, perfect, CLASSES, only_mistakes=True)
    assert not fig.axes and "no mistakes" in fig.texts[0].get_text()


def test_probability_grid_bars_follow_the_colour_rule(batch):
    from matplotlib.colors import to_hex

    images, labels, probs, _ = batch
    fig = plots.plot_probability_grid(images, labels, probs, CLASSES, rows=2, cols=2)
    bars = [p for p in fig.axes[0].patches if p.get_fill()]
    assert len(bars) == 4 * len(CLASSES)
    for i in range(4):
        cell = bars[i * len(CLASSES) : (i + 1) * len(CLASSES)]
        pred, true = int(probs[i].argmax()), int(labels[i])
        assert to_hex(cell[true].get_facecolor()) == CORRECT
        if pred != true:
            assert to_hex(cell[pred].get_facecolor()) == WRONG
        heights = [abs(b.get_height()) for b in cell]
        assert heights.index(max(heights)) == pred  # the tallest bar is the prediction
    names = [t.get_text() for t in fig.axes[0].texts if t.get_rotation() == 90]
    assert names == CLASSES * 2  # under the bottom row only
