"""A sightline model as an MLflow pyfunc model ("models from code"; logged by ``--track mlflow``
with the run's ONNX export and predict.py as its artifacts: ``train/callbacks/mlflow_results.py``).

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    answers = model.predict(images)  # uint8 (N, C, H, W) as the run prepares them

Each row is sightline's answer: the class, its calibrated probability, "none of these"
(``unknown``: the class is then only the nearest), the score and every class's probability in
the order of the model's metadata (``model.metadata.metadata["sightline"]["classes"]``). The
model runs on ONNX Runtime, numpy and pandas: it never imports sightline (the preprocessing that
turns a photo into the input is ``predict.prepare``, beside it, or ``run.preprocess.prepare``).
"""

import importlib.util

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

BATCH = 256  # images per ONNX Runtime call: bounded memory for any input


class SightlineModel(PythonModel):
    # The signature given when it is logged checks the input: no type hints asked for.
    _skip_type_hint_validation = True

    def load_context(self, context):
        spec = importlib.util.spec_from_file_location("predict", context.artifacts["predict"])
        self.script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.script)
        self.session, self.meta = self.script.load(context.artifacts["model"])

    def predict(self, context, model_input, params=None):
        x = np.asarray(model_input)
        if x.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (the pixels as decoded), not {x.dtype}")
        x = np.ascontiguousarray(x[None] if x.ndim == 3 else x)
        rows = []
        for i in range(0, len(x), BATCH):
            rows += self.script.answers(self.session, self.meta, x[i : i + BATCH])
        classes = self.meta["classes"]
        for row in rows:
            row["probabilities"] = [row["probabilities"][c] for c in classes]
        columns = ["class", "probability", "unknown", "ood_score", "probabilities"]
        return pd.DataFrame(rows, columns=columns)


mlflow.models.set_model(SightlineModel())
