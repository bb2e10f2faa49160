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

The CLI (`sightline --help`) is a thin layer over these same functions.
"""

__version__ = "0.1.0"

import os as _os  # noqa: E402

# Bit-for-bit reproducible CPU runs (and so exact resume): without this, Intel MKL picks GEMM
# code paths by the memory alignment of each buffer, so two runs with the same seed could
# differ in the last bits and then drift apart. Must be set before MKL starts; a value the
# user set wins.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from sightline.data import Dataset, ImageSet, Preprocess, list_datasets, load_dataset  # noqa: E402
from sightline.models import create_model, list_models  # noqa: E402
from sightline.models.summary import summary  # noqa: E402
from sightline.runs import Run, list_runs, load_run  # noqa: E402
from sightline.train import TrainConfig, fit, resume  # noqa: E402

__all__ = [
    "Dataset",
    "ImageSet",
    "Preprocess",
    "Run",
    "TrainConfig",
    "__version__",
    "create_model",
    "fit",
    "list_datasets",
    "list_models",
    "list_runs",
    "load_dataset",
    "load_run",
    "resume",
    "summary",
]
