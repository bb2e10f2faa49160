"""Sweeps (sightline/tune): every trial a sightline run tagged with its study, checked with
Optuna's own client; a study resumed; a killed worker's trial failed while the study goes on;
two worker processes sharing one study on a PostgreSQL server this module starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import write_squares
from postgres_server import binaries, postgres

import sightline
from sightline.cli import main
from sightline.errors import ConfigError
from sightline.sweeps import study as studies
from sightline.sweeps import tune
from sightline.sweeps.space import Dim, default_space, load_space


def _tune(folder, runs, **kw):
    options = {"epochs": 2, "model_options": {"width": 8}, "runs_dir": runs, "seed": 0, **kw}
    return sightline.tune(str(folder), "fastcnn", **options)  # the API face


def test_a_sweep_is_runs_tagged_with_their_study_and_resumes(tmp_path):
    folder = write_squares(tmp_path)
    runs = tmp_path / "runs"
    events = []
    result = _tune(folder, runs, trials=3, study="sq", on_event=events.append)
    storage = f"sqlite:///{runs.resolve() / 'studies.db'}"
    found = optuna.load_study(study_name="sq", storage=storage)  # Optuna's own client
    assert [t.state.name for t in found.trials] == ["COMPLETE"] * 3
    assert found.best_value == pytest.approx(result.best["value"])
    assert set(found.best_params) == {"lr", "label_smoothing", "weight_decay", "batch_size",
                                      "translate", "model.width"}  # fmt: skip
    assert "epochs" not in found.best_params  # the user's own options stay fixed
    lrs = set()
    for t in found.trials:
        run = sightline.load_run(Path(t.user_attrs["run"]))
        assert run.name == f"sq-t{t.number:03d}" and run.path.parent == runs.resolve()
        assert (
            run.tracking["optuna"]["study"] == "sq" and run.tracking["optuna"]["trial"] == t.number
        )
        assert run.config["train"]["lr"] == pytest.approx(t.params["lr"])
        assert run.config["model"]["options"]["width"] == t.params["model.width"]
        assert run.config["train"]["epochs"] == 2
        assert max(r["val_accuracy"] for r in run.history) == pytest.approx(t.value)
        lrs.add(t.params["lr"])
    assert len(lrs) == 3
    assert [e["number"] for e in events if e["kind"] == "trial"] == [0, 1, 2]
    assert (runs / "studies" / "sq" / "history.png").stat().st_size > 1000
    assert (runs / "studies" / "sq" / "importance.png").is_file()
    # every face lists the trials as runs
    names = {r.name for r in sightline.list_runs(runs)}
    assert {"sq-t000", "sq-t001", "sq-t002"} <= names

    again = tune(study="sq", resume=True, trials=4, runs_dir=runs)
    assert [t["number"] for t in again.trials] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="exists.*--resume"):
        _tune(folder, runs, trials=1, study="sq")
    with pytest.raises(ConfigError, match="no study 'nope'.*sq"):
        tune(study="nope", resume=True, runs_dir=runs)


def test_the_command_line_shows_and_retrains_the_best(tmp_path, capsys):
    folder = write_squares(tmp_path)
    runs = str(tmp_path / "runs")
    code = main(["tune", str(folder), "--model", "fastcnn", "--model-opt", "width=8",
                 "--epochs", "1", "--trials", "2", "--study", "cli", "--runs-dir", runs,
                 "--space", _space_file(tmp_path)])  # fmt: skip
    said = capsys.readouterr().out
    assert code == 0 and "trial 0: complete" in said and "Best: trial" in said
    assert main(["tune", "--show", "cli", "--runs-dir", runs, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(shown["trials"]) == 2 and set(shown["best"]["params"]) == {"lr"}
    assert main(["tune", "--retrain", "cli", "--runs-dir", runs]) == 0
    said = capsys.readouterr().out
    assert "retrained on train + validation" in said
    best = sightline.load_run(Path(runs) / "cli-best")
    assert best.config["train"]["lr"] == pytest.approx(shown["best"]["params"]["lr"])
    assert best.evaluation is not None and best.config["data"]["val_split"] == 0.0


def _space_file(tmp_path) -> str:
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lr": {"low": 0.001, "high": 0.01, "log": True}}))
    return str(path)


def test_a_killed_workers_trial_is_failed_and_the_study_goes_on(tmp_path, monkeypatch):
    folder = write_squares(tmp_path)
    runs = tmp_path / "runs"
    url = f"sqlite:///{runs.resolve() / 'studies.db'}"
    _tune(folder, runs, trials=1, study="k", epochs=1)  # a study, one trial finished
    study = optuna.load_study(study_name="k", storage=url)
    request = study.user_attrs[studies.REQUEST]
    fixed = request["train_options"]
    # its next trial is long (400 epochs); a worker process starts it ...
    study.set_user_attr(studies.REQUEST, {**request, "trials": 2,
                                          "train_options": {**fixed, "epochs": 400}})  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-m", "sightline", "tune", "--worker", "--study",
                               "k", "--storage", url])  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(t.state.name == "RUNNING" for t in study.get_trials()):
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.5)
    time.sleep(2)  # its run is training
    worker.send_signal(signal.SIGKILL)  # ... and dies with it: no chance to say so
    worker.wait()
    (stuck,) = [t for t in study.get_trials() if t.state.name == "RUNNING"]
    # the next worker finds its heartbeat stale, fails it and runs the study on
    monkeypatch.setattr(studies, "GRACE_SECONDS", 1)
    monkeypatch.setattr(studies, "HEARTBEAT_SECONDS", 1)
    time.sleep(1.5)
    study.set_user_attr(studies.REQUEST, {**request, "trials": 2})
    result = tune(study="k", resume=True, runs_dir=runs)
    states = {t["number"]: t["state"] for t in result.trials}
    assert states[stuck.number] == "FAIL"
    assert sum(s == "COMPLETE" for s in states.values()) == 2


def test_two_workers_share_one_study_on_postgresql(tmp_path):
    if binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing: .ci/run installs Debian's postgresql")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    folder = write_squares(tmp_path)
    runs = tmp_path / "runs"
    with postgres() as url:
        result = _tune(folder, runs, trials=4, study="pg", storage=url, workers=2, epochs=1)
        found = optuna.load_study(study_name="pg", storage=url)
        states = [t.state.name for t in found.trials]
        assert "FAIL" not in states and sum(s in ("COMPLETE", "PRUNED") for s in states) >= 4
        runs_of = {os.path.basename(t.user_attrs["run"]) for t in found.trials}
        assert len(runs_of) == len(found.trials)  # one run per trial, none shared
        started = sorted(t.datetime_start for t in found.trials)
        ended = sorted(t.datetime_complete for t in found.trials)
        assert started[1] < ended[0]  # two trials ran at once: two processes
        assert result.storage.startswith("postgresql")


def test_the_space_around_the_plan_and_from_a_file(tmp_path):
    from sightline.plan.config import TrainConfig

    space = default_space(TrainConfig(lr=0.2, weight_decay=5e-4, batch_size=256, epochs=10,
                                      translate=2), {"width": 64})  # fmt: skip
    assert space["lr"] == Dim(0.05, 0.8, log=True)
    assert space["batch_size"].choices == (128, 256, 512)
    assert space["epochs"] == Dim(5, 10, integer=True)
    assert space["model.width"].choices == (32, 64, 128)
    frozen = default_space(TrainConfig(lr=1e-3, weight_decay=0.0, epochs=40), {}, frozen=True)
    assert "batch_size" not in frozen and frozen["weight_decay"].low == 1e-6
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lr": {"low": 0.01, "high": 0.1, "log": True},
                                "batch_size": [64, 128]}))  # fmt: skip
    assert load_space(path) == {
        "lr": Dim(0.01, 0.1, log=True),
        "batch_size": Dim(choices=(64, 128)),
    }
    path.write_text(json.dumps({"lr": {"low": 0.1, "high": 0.01}}))
    with pytest.raises(ConfigError, match="lr: low and high"):
        load_space(path)
    folder = write_squares(tmp_path)
    for bad, match in (({"lr": {"low": 0.1, "high": 50.0}}, "lr must be"),
                       ({"lrr": [0.1]}, "not a training option"),
                       ({"model.depthh": [1]}, "no option 'depthh'")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            _tune(folder, tmp_path / "runs", trials=1, space=bad)
    with pytest.raises(ConfigError, match="validation split"):
        _tune(folder, tmp_path / "runs", trials=1, data_options={"val_split": 0})
    assert studies.shown_url("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"


def test_a_tracked_sweep_logs_each_trial_to_mlflow_in_the_studys_experiment(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    folder = write_squares(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = _tune(folder, tmp_path / "runs", trials=2, epochs=1, study="tracked",
                   track="mlflow", track_uri=store)  # fmt: skip
    client = mlflow.MlflowClient(store)
    logged = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    assert sorted(r.info.run_name for r in logged) == ["tracked", "tracked-t000", "tracked-t001"]
    by_name = {r.info.run_name: r for r in logged}
    for t in result.trials:
        run = by_name[os.path.basename(t["run"])]
        assert float(run.data.params["lr"]) == pytest.approx(t["params"]["lr"])
    assert "MLFLOW_EXPERIMENT_NAME" not in os.environ  # the study's name was the trials' only
    # the study is a run of its own, the trials nested under it, with its best and figures
    (parent,) = [r for r in logged if r.info.run_name == "tracked"]
    trials = [r for r in logged if r.info.run_name != "tracked"]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert parent.info.status == "FINISHED" and parent.data.tags["sightline.study"] == "tracked"
    best = result.best
    assert parent.data.metrics["best/val_accuracy"] == pytest.approx(best["value"])
    assert float(parent.data.tags["best.lr"]) == pytest.approx(best["params"]["lr"])
    assert parent.data.metrics["trials/complete"] + parent.data.metrics["trials/pruned"] == 2
    assert "space.lr" in parent.data.params
    shown = {a.path for a in client.list_artifacts(parent.info.run_id, "study")}
    assert "study/study.json" in shown and "study/history.png" in shown
    sightline.tune(study="tracked", resume=True, trials=3, runs_dir=tmp_path / "runs")
    logged = client.search_runs([parent.info.experiment_id])
    assert len(logged) == 4  # one more trial, under the same study run
    again = client.get_run(parent.info.run_id)
    assert again.data.metrics["trials/complete"] + again.data.metrics["trials/pruned"] == 3
    assert {r.data.tags.get("mlflow.parentRunId") for r in logged} == {None, parent.info.run_id}


def test_a_recipe_without_a_validation_split_is_swept_on_one(tmp_path):
    """fashion-mnist-fast trains on all of train (2 % kept to calibrate): its trials would have
    nothing to be scored on, so the sweep keeps 10 % aside and says so (retrain uses all)."""
    from sightline.sweeps.sweep import VAL_SPLIT, _request

    request = _request(None, None, "fashion-mnist-fast", None, 2, None, "median", None, None,
                       tmp_path / "runs", {})  # fmt: skip
    assert request.data_options["val_split"] == VAL_SPLIT
    assert "no validation split" in request.notes[0]
