"""Figures of the classic workflow, as ``matplotlib.figure.Figure`` objects (headless-safe).

>>> fig = sightline.plots.plot_samples(data.train.images, data.train.labels, data.classes)
>>> sightline.plots.save_figure(fig, "samples.png")
"""

from sightline.plots.data_plots import (
    plot_image,
    plot_predictions,
    plot_probabilities,
    plot_probability_grid,
    plot_samples,
    plot_top_losses,
)
from sightline.plots.result_plots import (
    most_confused,
    plot_confusion,
    plot_curves,
    plot_lr_schedule,
    plot_per_class_accuracy,
    plot_reliability,
)
from sightline.plots.style import CORRECT, WRONG, figure_bytes, figure_format, save_figure

__all__ = [
    "CORRECT",
    "WRONG",
    "most_confused",
    "plot_confusion",
    "plot_curves",
    "plot_image",
    "plot_lr_schedule",
    "plot_per_class_accuracy",
    "plot_predictions",
    "plot_probabilities",
    "plot_probability_grid",
    "plot_reliability",
    "plot_samples",
    "plot_top_losses",
    "figure_bytes",
    "figure_format",
    "save_figure",
]
