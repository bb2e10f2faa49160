"""sightline — an image-classification workbench on PyTorch.

The classic workflow in a few lines::

    import sightline
    data = sightline.load_dataset("fashion-mnist")             # uint8 tensors, cached download
    model = sightline.create_model("fastcnn", data.input_shape, data.num_classes)
    print(sightline.summary(model))                             # layers, shapes, parameters
    run = sightline.fit(model, data, epochs=5)                  # run folder with checkpoints
    metrics = run.evaluate()                                    # test loss, accuracy, per class
    probs = run.predict(["boot.jpg"])                           # the training preprocessing
    run = sightline.load_run(run.path)                          # any time later
    sightline.export_onnx(run); sightline.load_onnx(run)        # ONNX Runtime (sightline[onnx])
    sightline.export(run, ["onnx", "onnx-int8"])                # each checked, export/report.json

The CLI (`sightline --help`) is a thin layer over these same functions.
"""

from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING

from sightline._lazy import lazy_exports as _lazy_exports
from sightline._version import __version__

# Bit-for-bit reproducible CPU runs (and so exact resume): without this, Intel MKL picks GEMM
# code paths by the memory alignment of each buffer, so two runs with the same seed could
# differ in the last bits and then drift apart. Must be set before MKL starts; a value the
# user set wins. Every ``sightline.*`` import runs this file first, so it is always in time.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

# The public API is imported on first use (PEP 562), not here: most of it needs PyTorch, whose
# import alone takes 1.5-2 s, and `sightline --help`, `datasets`, `models` and `runs` need none
# of it. ``sightline.fit`` and ``from sightline import fit`` work as with eager imports.
_EXPORTS = {
    "Dataset": "sightline.data.dataset",
    "ImageSet": "sightline.data.dataset",
    "Preprocess": "sightline.data.preprocess",
    "list_datasets": "sightline.data.registry",
    "load_dataset": "sightline.data.load",
    "create_model": "sightline.models.registry",
    "default_model": "sightline.models.registry",
    "list_models": "sightline.models.registry",
    "summary": "sightline.models.summary",
    "Run": "sightline.run",
    "list_runs": "sightline.run",
    "load_run": "sightline.run",
    "run_training": "sightline.pipeline",
    "TrainingResult": "sightline.pipeline",
    "TrainConfig": "sightline.plan.config",
    "fit": "sightline.train.api",
    "resume": "sightline.train.api",
    "export_onnx": "sightline.run.export_api",
    "export": "sightline.run.export_api",
    "load_onnx": "sightline.run.listing",
    "check": "sightline.health.check",
    "HealthReport": "sightline.health.problems",
    "tune": "sightline.sweeps.sweep",
    "label": "sightline.labelling.loop",
    "Labeller": "sightline.labelling.loop",
}

if TYPE_CHECKING:  # what editors and type checkers see
    from sightline.data.dataset import Dataset, ImageSet
    from sightline.data.load import load_dataset
    from sightline.data.preprocess import Preprocess
    from sightline.data.registry import list_datasets
    from sightline.health.check import check
    from sightline.health.problems import HealthReport
    from sightline.labelling.loop import Labeller, label
    from sightline.models.registry import create_model, default_model, list_models
    from sightline.models.summary import summary
    from sightline.pipeline import TrainingResult, run_training
    from sightline.plan.config import TrainConfig
    from sightline.run import Run, list_runs, load_run
    from sightline.run.export_api import export, export_onnx
    from sightline.run.listing import load_onnx
    from sightline.sweeps.sweep import tune
    from sightline.train.api import fit, resume

__all__ = [
    "Dataset",
    "HealthReport",
    "ImageSet",
    "Labeller",
    "Preprocess",
    "Run",
    "TrainConfig",
    "TrainingResult",
    "__version__",
    "check",
    "create_model",
    "default_model",
    "export",
    "export_onnx",
    "fit",
    "label",
    "list_datasets",
    "list_models",
    "list_runs",
    "load_dataset",
    "load_onnx",
    "load_run",
    "resume",
    "run_training",
    "summary",
    "tune",
]

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, __all__)
