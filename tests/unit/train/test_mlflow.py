"""MLflow tracking (sightline/train/callbacks/mlflow.py, mlflow_results.py, run/mlflow_model.py),
checked with MLflow's own client against a real tracking server this module starts on 127.0.0.1:
a run interrupted and resumed is one MLflow run with every epoch, its evaluation, files and a
model whose ``pyfunc.predict`` gives sightline's answers; the default local store needs no
server; a tracker that cannot be reached warns once and training goes on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from conftest import write_squares

import sightline
from sightline.errors import SightlineError
from sightline.train.callbacks.mlflow import plan_params, require_mlflow, tracking_uri
from sightline.train.callbacks.tracked_metrics import evaluation_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 (SQLite store, artifacts served through it); its URL."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = open(root / "server.log", "w")  # noqa: SIM115 - open while the server runs
    proc = subprocess.Popen(
        [str(mlflow_cli), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "server.log").read_text()[-3000:])
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class StopAfterSteps:
    """``should_stop`` for run_training: True from the ``n``-th step on (Ctrl-C mid-run)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.n


def test_a_resumed_run_is_one_mlflow_run_with_its_evaluation_files_and_model(
    server, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "squares-test")
    folder = write_squares(tmp_path)
    torch.manual_seed(0)
    first = sightline.run_training(
        str(folder), "fastcnn", runs_dir=tmp_path / "runs", epochs=3, progress="quiet",
        model_options={"width": 8}, track="mlflow", track_uri=server,
        should_stop=StopAfterSteps(8),
    )  # fmt: skip
    assert first.status == "interrupted"
    record = first.run.tracking["mlflow"]
    client = mlflow.MlflowClient(server)
    assert client.get_run(record["run_id"]).info.status == "KILLED"

    result = sightline.run_training(resume=first.run, progress="quiet")
    assert result.status == "finished" and result.run.tracking["mlflow"] == record
    experiment = client.get_experiment_by_name("squares-test")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [record["run_id"]]  # the same run, continued
    logged = runs[0]
    assert logged.info.status == "FINISHED" and logged.info.run_name == result.run.name
    assert logged.data.params["model"] == "fastcnn" and logged.data.params["epochs"] == "3"
    assert logged.data.params["model.width"] == "8"
    assert logged.data.tags["sightline.run"] == str(result.run.path)
    assert "images per class" in logged.data.tags["mlflow.note.content"]  # the plan's notes
    epochs = client.get_metric_history(record["run_id"], "epoch/val_accuracy")
    assert sorted({m.step for m in epochs}) == [1, 2, 3]
    assert client.get_metric_history(record["run_id"], "train/loss")
    evaluation = result.run.evaluation
    assert logged.data.metrics["test/accuracy"] == pytest.approx(evaluation["accuracy"])
    assert logged.data.metrics["test/class1/recall"] == pytest.approx(
        evaluation["per_class"][1]["recall"]
    )
    files = {a.path for a in client.list_artifacts(record["run_id"])}
    files |= {a.path for d in ("plots", "evaluations", "export")
              for a in client.list_artifacts(record["run_id"], d)}  # fmt: skip
    for name in ("config.json", "metrics.csv", "report.html", "plots/confusion.png",
                 "evaluations/test.json", "export/MODEL_CARD.md"):  # fmt: skip
        assert name in files, sorted(files)

    # The model: MLflow's pyfunc answers as sightline does, on the images as the run has them.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    model = mlflow.pyfunc.load_model(f"runs:/{record['run_id']}/model")
    images = result.run.load_data().test.images
    answers = model.predict(images.numpy())
    predictor = result.run.predictor(engine="torch", device="cpu")
    probs, scores = predictor.scored(images)
    classes = result.run.classes
    assert list(answers["class"]) == [classes[k] for k in probs.argmax(1).tolist()]
    got = np.stack(answers["probabilities"].to_list())
    assert np.abs(got - probs.numpy()).max() < 1e-4
    threshold = predictor.threshold()
    assert list(answers["unknown"]) == [bool(s > threshold) for s in scores.tolist()]
    meta = model.metadata.metadata["sightline"]
    assert meta["classes"] == classes and meta["preprocess"]["size"] == [12, 12]
    with pytest.raises(Exception, match="uint8|dtype|type"):
        model.predict(images.numpy().astype(np.float32))


def test_a_tracker_that_cannot_be_reached_warns_once_and_training_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refused port: at once
    folder = write_squares(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sightline.run_training(
            str(folder), "fastcnn", runs_dir=tmp_path / "runs", epochs=2, progress="quiet",
            model_options={"width": 8}, track="mlflow", report=False,
            track_uri=f"http://127.0.0.1:{_free_port()}",
        )  # fmt: skip
    said = [w for w in caught if "MLflow tracking at" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert result.status == "finished" and result.metrics.accuracy is not None
    assert len(result.run.history) == 2 and "mlflow" not in result.run.tracking


def test_the_command_line_logs_to_mlflows_local_store_without_a_server(tmp_path, monkeypatch):
    from sightline.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    folder = write_squares(tmp_path)
    code = main(["train", str(folder), "--model", "mlp", "--epochs", "1", "--no-report",
                 "--runs-dir", "runs", "--track", "mlflow", "--progress", "quiet"])  # fmt: skip
    assert code == 0
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("sightline").experiment_id])
    assert run.data.params["model"] == "mlp" and "test/accuracy" in run.data.metrics
    (logged,) = client.search_logged_models([run.info.experiment_id])
    assert logged.source_run_id == run.info.run_id  # the model, in MLflow's models too


def test_the_plan_as_parameters_and_the_evaluation_as_metrics():
    config = {"model": {"name": "fastcnn", "options": {"width": 8}},
              "data": {"size": [12, 12]},
              "train": {"lr": 0.002, "epochs": 3, "extra": {"recipe": "folder", "notes": ["x"]}}}  # fmt: skip
    params = plan_params(config)
    assert params == {"model": "fastcnn", "model.width": "8", "data.size": "[12, 12]",
                      "lr": "0.002", "epochs": "3", "recipe": "folder"}  # fmt: skip
    metrics = evaluation_metrics({"accuracy": 0.5, "ece": None, "per_class": [
        {"class": "t-shirt/top", "recall": 1.0}, {"class": "a:b?", "f1": 0.25}]})  # fmt: skip
    assert metrics == {"test/accuracy": 0.5, "test/t-shirt/top/recall": 1.0, "test/a_b_/f1": 0.25}


def test_the_store_is_made_absolute_and_a_missing_mlflow_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert tracking_uri("http://host:5000") == "http://host:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///sub/x.db")
    assert tracking_uri() == f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(SightlineError, match="pip install mlflow"):
        require_mlflow()
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///sub/x.db"
