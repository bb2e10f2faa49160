"""Every file name of a run folder, in one place: the only code that spells them.

```
runs/<name>/
  config.json        how the run was made: model, data options, resolved training config
  metrics.csv        one row per epoch (loss, accuracy, val_loss, val_accuracy, lr, time, ...)
  status.json        running / finished / early_stopped / max_steps / interrupted / failed
  best.safetensors   weights of the best epoch, with model + preprocessing metadata inside
  last.safetensors   weights at the last save
  resume.pt          full training state for --resume (tensors only, weights_only load)
  evaluations/       one JSON (+ text + saved logits) per evaluated source (run/evaluations.py)
  tracking.json      where --track logs it too: MLflow's store and run id, TensorBoard's folder
  plots/             the figures (PNG) and their cache; report.html beside them
  export/            best.onnx / last.onnx (``sightline export``), best.engine.json (the faster engine here),
                     best.int8.onnx (``--format onnx-int8``), report.json (every format's check),
                     best.openvino.xml + .bin, best.openvino.int8.xml + .bin, best.tflite, best.int8.tflite, best.mlpackage.zip, MODEL_CARD.md, best.package.zip (``--format package``)
```

>>> files = RunLayout(run.path)
>>> files.status, files.model("best"), files.evaluation("test")
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.csv"
RESUME = "resume.pt"
EVALUATIONS = "evaluations"
PLOTS = "plots"
REPORT = "report.html"
CHECK = "check.json"  # the data check run before training (sightline.health)
TRACKING = "tracking.json"  # where --track logs the run (train/callbacks/trackers.py)
EXPORT = "export"
INSPECT = "inspect"  # `sightline inspect`'s figures, a folder per image
CHECKPOINTS = ("best", "last")  # the model files a run may have
MODEL_SUFFIX = ".safetensors"


class RunLayout:
    """The paths of the files of the run folder ``path`` (nothing is read or made here)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def status(self) -> Path:
        return self.path / STATUS

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def resume(self) -> Path:
        return self.path / RESUME

    @property
    def evaluations(self) -> Path:
        return self.path / EVALUATIONS

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    @property
    def check(self) -> Path:
        return self.path / CHECK

    @property
    def tracking(self) -> Path:
        return self.path / TRACKING

    @property
    def report(self) -> Path:
        return self.path / REPORT

    @property
    def export(self) -> Path:
        return self.path / EXPORT

    def model(self, which: str) -> Path:
        """``best.safetensors`` or ``last.safetensors``."""
        return self.path / f"{which}{MODEL_SUFFIX}"

    def onnx(self, which: str) -> Path:
        return self.export / f"{which}.onnx"

    def onnx_int8(self, which: str) -> Path:
        return self.export / f"{which}.int8.onnx"

    def openvino(self, which: str) -> Path:
        """``export/<which>.openvino.xml`` (its weights beside it: ``.openvino.bin``)."""
        return self.export / f"{which}.openvino.xml"

    def openvino_int8(self, which: str) -> Path:
        """``export/<which>.openvino.int8.xml`` (+ ``.bin``): NNCF's INT8 of the IR."""
        return self.export / f"{which}.openvino.int8.xml"

    def litert(self, which: str) -> Path:
        """``export/<which>.tflite``: LiteRT (uint8 channels-last images in)."""
        return self.export / f"{which}.tflite"

    def litert_int8(self, which: str) -> Path:
        """``export/<which>.int8.tflite``: LiteRT with INT8 convolutions."""
        return self.export / f"{which}.int8.tflite"

    def coreml(self, which: str) -> Path:
        """``export/<which>.mlpackage.zip``: Core ML's .mlpackage (a folder) as one file."""
        return self.export / f"{which}.mlpackage.zip"

    def package(self, which: str) -> Path:
        """``export/<which>.package.zip``: the model(s), card and predict.py to hand on."""
        return self.export / f"{which}.package.zip"

    @property
    def model_card(self) -> Path:
        return self.export / "MODEL_CARD.md"

    @property
    def export_report(self) -> Path:
        """``export/report.json``: each export's check beside PyTorch (run/exports.py)."""
        return self.export / "report.json"

    def downloads(self) -> list[Path]:
        """The export files a person may download (the server serves these names only): each
        checkpoint's ONNX, INT8, OpenVINO (.xml and .bin), LiteRT, Core ML and package, the card and the report."""
        out = []
        for which in CHECKPOINTS:
            for xml in (self.openvino(which), self.openvino_int8(which)):
                out += [xml, xml.with_suffix(".bin")]
            out += [self.onnx(which), self.onnx_int8(which), self.litert(which)]
            out += [self.litert_int8(which), self.coreml(which)]
            out.append(self.package(which))
        return [*out, self.model_card, self.export_report]

    def engine_choice(self, which: str) -> Path:
        """``export/<which>.engine.json``: which engine predicts faster here (infer/engine.py)."""
        return self.export / f"{which}.engine.json"

    def evaluation(self, key: str, suffix: str = ".json") -> Path:
        """An evaluation's files: ``.json`` (the record), ``.txt``, ``.logits.safetensors``."""
        return self.evaluations / f"{key}{suffix}"

    def plot(self, name: str) -> Path:
        return self.plots / name

    def inspection(self, image: str, name: str) -> Path:
        """``inspect/<image>/<name>``: a figure of ``sightline inspect`` for one image."""
        return self.path / INSPECT / image / name


# The float exports a run predicts through (``--engine``): engine -> its file. Float only: each
# answers as PyTorch within 1e-4, so choosing one by speed never changes an answer.
ENGINE_EXPORTS = {
    "onnx": RunLayout.onnx,
    "openvino": RunLayout.openvino,
    "litert": RunLayout.litert,
}
ENGINES = ("auto", "torch", *ENGINE_EXPORTS)  # what --engine takes (run/predictor.py decides)
