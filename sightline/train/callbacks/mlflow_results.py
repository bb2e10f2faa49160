"""What ``--track mlflow`` logs once the run is evaluated (the pipeline calls it through
``trackers.log_results``): the test metrics, the run's files as artifacts, and the model.

* metrics ``test/accuracy``, ``test/balanced_accuracy``, ``test/loss``, ``test/macro_f1``,
  ``test/ece``, ``test/nll``, ``test/brier``, ``test/unknown_rate`` and, per class,
  ``test/<class>/precision|recall|f1``;
* artifacts: ``config.json``, ``metrics.csv``, ``check.json``, ``report.html``, ``plots/`` (the
  figures), ``evaluations/`` (JSON and text), and the export's ``MODEL_CARD.md`` and ``report.json``;
* the model ``model``: the run's ONNX export (checked against PyTorch as every export is) with
  predict.py, as an MLflow pyfunc model (``run/mlflow_model.py``) whose signature takes uint8
  images (N, C, H, W) and answers as sightline does; its metadata holds the classes, the
  preprocessing and the "none of these" threshold.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from sightline.run import Run
from sightline.run.layout import RunLayout
from sightline.train.callbacks.mlflow import client, require_mlflow
from sightline.train.callbacks.tracked_metrics import evaluation_metrics

MODEL = "model"  # the model's name in the MLflow run: runs:/<run id>/model
REQUIREMENTS = ["onnxruntime", "numpy", "pandas", "pillow"]  # what the model needs to run


def run_artifacts(run: Run) -> list[tuple[Path, str | None]]:
    """(file, its folder among the artifacts) for each of the run's files worth keeping there."""
    layout = RunLayout(run.path)
    found: list[tuple[Path, str | None]] = [
        (p, None) for p in (layout.config, layout.metrics, layout.check, layout.report)
    ]
    found += [(p, "plots") for p in sorted(layout.plots.glob("*")) if p.suffix in (".png", ".svg")]
    found += [(p, "evaluations") for p in sorted(layout.evaluations.glob("*"))
              if p.suffix in (".json", ".txt")]  # fmt: skip
    found += [(p, "export") for p in (layout.model_card, layout.export_report)]
    return [(p, folder) for p, folder in found if p.is_file() and not p.is_symlink()]


def log_mlflow_results(run: Run, record: dict[str, Any], model: bool = True) -> str:
    """Log ``run``'s evaluation, files and (``model``) model into its MLflow run (``record``:
    its entry of ``tracking.json``); returns where, for a person."""
    from mlflow.entities import Metric

    c, run_id = client(record["uri"]), record["run_id"]
    evaluation = run.evaluation
    if evaluation:
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in evaluation_metrics(evaluation).items()]
        for i in range(0, len(metrics), 1000):
            c.log_batch(run_id, metrics=metrics[i : i + 1000])
    if model and evaluation is not None:
        log_model(run, record)  # first: its export writes the card and report.json
    for path, folder in run_artifacts(run):
        c.log_artifact(run_id, str(path), folder)
    return f"MLflow run {run_id} at {record['uri']}"


def log_model(run: Run, record: dict[str, Any]) -> None:
    """The run's best model, exported to ONNX (and checked), as the MLflow run's pyfunc model."""
    mlflow = require_mlflow()
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema, TensorSpec

    layout = RunLayout(run.path)
    onnx_file = layout.onnx("best")
    if not onnx_file.is_file():
        run.export("onnx")
    meta = _onnx_metadata(onnx_file)
    c, h, w = run.preprocess.input_shape
    import numpy as np

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, c, h, w))]),
        outputs=Schema(
            [
                ColSpec("string", "class"),
                ColSpec("double", "probability"),
                ColSpec("boolean", "unknown"),
                ColSpec("double", "ood_score", required=False),
                ColSpec(Array("double"), "probabilities"),
            ]
        ),  # fmt: skip
    )
    package = files("sightline.run")
    with (
        as_file(package / "mlflow_model.py") as code,
        as_file(package / "standalone_predict.py") as script,
        _tracking_uri(record["uri"]),
        mlflow.start_run(run_id=record["run_id"]),
    ):
        mlflow.pyfunc.log_model(
            name=MODEL,
            python_model=str(code),
            artifacts={"model": str(onnx_file), "predict": str(script)},
            signature=signature,
            input_example=np.zeros((1, c, h, w), np.uint8),  # the shape; MLflow runs it once
            pip_requirements=REQUIREMENTS,
            metadata={"sightline": meta},
        )


def _onnx_metadata(path: Path) -> dict[str, Any]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    return json.loads(props.get("sightline", "{}"))


@contextmanager
def _tracking_uri(uri: str):
    """MLflow's fluent calls (``log_model`` needs them) pointed at ``uri`` for a moment, then
    back as they were, ``$MLFLOW_TRACKING_URI`` included."""
    import os

    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    env = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if env is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env
