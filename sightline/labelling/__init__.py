"""The labelling loop: from a folder of unlabelled photos to a labelled dataset, asking for the
labels that matter (``loop.py``), on the label check's pretrained features (``features.py``)."""

from sightline._lazy import lazy_exports

_EXPORTS = {
    "Labeller": "sightline.labelling.loop",
    "label": "sightline.labelling.loop",
    "CONFIDENT": "sightline.labelling.loop",
    "Suggestion": "sightline.labelling.loop",
    "Pool": "sightline.labelling.pool",
    "gather": "sightline.labelling.pool",
    "NotWaitingError": "sightline.labelling.pool",
    "LabelledAlreadyError": "sightline.labelling.pool",
    "UnsureError": "sightline.labelling.loop",
    "export_label_studio": "sightline.labelling.label_studio",
    "import_label_studio": "sightline.labelling.label_studio",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
