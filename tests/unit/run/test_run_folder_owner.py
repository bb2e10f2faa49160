"""The run folder says the truth to every face (issue 35): any folder the listing shows can be
opened and deleted by its name, a run whose trainer was killed is interrupted (not running
forever), and a server pinned to a run (`serve --run`) answers with it and names it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_serve_api import CSRF, RUN, client, png, trained, upload  # noqa: F401 (fixture)
from test_train import fit_toy

import sightline
from sightline.errors import RunNotFoundError
from sightline.run import list_runs
from sightline.run.folders import training_process


@pytest.fixture
def runs(trained, tmp_path):  # noqa: F811
    root = tmp_path / "runs"
    shutil.copytree(trained[0], root)
    return root


def test_a_folder_the_listing_shows_opens_and_deletes_by_its_name(runs):
    shutil.copytree(runs / RUN, runs / "mnist copy (2)")  # what a file manager names a copy
    c = client(runs)
    names = [r["name"] for r in c.get("/api/runs").json()["runs"]]
    assert "mnist copy (2)" in names
    assert c.get("/api/runs/mnist copy (2)").status_code == 200
    assert c.get("/runs/mnist copy (2)").status_code == 200  # its page
    assert c.delete("/api/runs/mnist copy (2)", headers=CSRF).status_code == 200
    assert not (runs / "mnist copy (2)").exists() and (runs / RUN).is_dir()
    for bad in ("..", ".hidden", "a\\b", "x%01"):  # still never a path or a hidden folder
        assert c.get(f"/api/runs/{bad}").status_code in (400, 404), bad


def _status_with(runs, process):
    status = json.loads((runs / RUN / "status.json").read_text())
    (runs / RUN / "status.json").write_text(
        json.dumps({**status, "status": "running", "process": process})
    )
    return sightline.load_run(runs / RUN)


def test_a_run_whose_trainer_is_gone_is_interrupted_not_running_forever(runs):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = {**training_process(), "pid": int(gone.stdout)}
    run = _status_with(runs, dead)
    assert run.status["status"] == "interrupted" and "process" not in run.status
    assert [r.status["status"] for r in list_runs(runs) if r.name == RUN] == ["interrupted"]
    assert client(runs).delete(f"/api/runs/{RUN}", headers=CSRF).status_code == 200  # not "in use"


def test_a_live_trainer_or_one_on_another_machine_stays_running(runs):
    assert _status_with(runs, training_process()).status["status"] == "running"
    elsewhere = {**training_process(), "host": "another-machine"}
    assert _status_with(runs, elsewhere).status["status"] == "running"  # this machine can't tell
    reused = {**training_process(), "started": "1"}  # our pid, but another process's start
    assert _status_with(runs, reused).status["status"] == "interrupted"


def test_the_trainer_records_itself_while_it_runs_and_never_shows_it(trained, tmp_path):  # noqa: F811
    seen = []

    class Look:
        def on_epoch_end(self, row):
            raw = json.loads((tmp_path / "look" / "status.json").read_text())
            seen.append(
                (raw["status"], raw.get("process"), sightline.load_run(tmp_path / "look").status)
            )

    run = fit_toy(trained[1], tmp_path, name="look", epochs=1, callbacks=[Look()])
    (raw_status, process, shown) = seen[0]
    assert raw_status == "running" and process == training_process()
    assert shown["status"] == "running" and "process" not in shown
    assert "process" not in json.loads((run.path / "status.json").read_text())  # ended: gone


def test_a_server_pinned_to_a_run_answers_with_it_and_names_it(runs, trained, tmp_path):  # noqa: F811
    fit_toy(trained[1], runs, name="newer", epochs=1)
    newest = client(runs)
    assert upload(newest, [("a.png", png(trained[1]))]).json()["run"] == "newer"
    pinned = client(runs, default_run=RUN)
    assert pinned.get("/api/runs").json()["default_run"] == RUN
    assert upload(pinned, [("a.png", png(trained[1]))]).json()["run"] == RUN
    assert upload(pinned, [("a.png", png(trained[1]))], run="newer").json()["run"] == "newer"
    with pytest.raises(RunNotFoundError, match="no run named 'nope'"):
        client(runs, default_run="nope")
