"""Looking inside a trained network: layer outputs, their statistics, saliency maps
(``core``: plain tensors and JSON-ready dicts) and the figures that draw them (``plots``,
imported on first use so that the numbers alone never load matplotlib).

>>> seen = sightline.inspect.inspect_image(run.load_model(), run.preprocess, "boot.jpg")
>>> sightline.inspect.plot_activations(seen.outputs)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports
from sightline.inspect.core import (
    MAPS_PER_ROW,
    SALIENCY_METHODS,
    Inspection,
    activation_stats,
    inspect_image,
    is_map,
    key_layers,
    layer_outputs,
    leaf_names,
    map_mosaic,
    saliency,
    saliency_with_method,
)
from sightline.models.summary import conv_layers

_PLOTS = ("plot_activations", "plot_layer", "plot_filters", "plot_dense_weights", "plot_saliency")
_EXPORTS = dict.fromkeys(_PLOTS, "sightline.inspect.plots")

if TYPE_CHECKING:
    from sightline.inspect.plots import (
        plot_activations,
        plot_dense_weights,
        plot_filters,
        plot_layer,
        plot_saliency,
    )

__all__ = [
    "MAPS_PER_ROW",
    "SALIENCY_METHODS",
    "Inspection",
    "activation_stats",
    "conv_layers",
    "inspect_image",
    "is_map",
    "key_layers",
    "layer_outputs",
    "leaf_names",
    "map_mosaic",
    "saliency",
    "saliency_with_method",
    "plot_activations",
    "plot_dense_weights",
    "plot_filters",
    "plot_layer",
    "plot_saliency",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
