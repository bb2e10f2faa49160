"""Training jobs in the REST API (sightline.serve): queue, worker process, events, stop, resume,
restart, and the job store under concurrent writers.

Every job trains the 2-layer MLP on a tiny image folder (3 classes x 20 PNGs of 12x12 px, one
of the server's data folders) for a few epochs: a job is a second or two of training plus the
worker's start (a fresh Python that imports PyTorch).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from sightline.plan.recipes import for_machine, get_recipe  # noqa: E402
from sightline.serve import create_app  # noqa: E402
from sightline.serve.jobs.pool import STALE_S  # noqa: E402
from sightline.serve.jobs.request import JobRequest, resolve_job  # noqa: E402
from sightline.serve.jobs.store import DB_NAME, JobStore  # noqa: E402

CSRF = {"X-Sightline-Request": "1"}
FOLDER = "shapes"
TINY = {
    "folder": FOLDER,
    "model": "mlp",
    "model_options": {"hidden": 16},
    "epochs": 2,
    "batch_size": 8,
    "report": False,
}
# Long enough to be stopped part-way with seconds to spare on a slow machine (~1,100 steps;
# stopped after its first epoch), short enough for a test.
LONG = {**TINY, "epochs": 80, "batch_size": 4}
ENDED = ("finished", "failed", "interrupted", "stopped")


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes x 20 gray PNGs: a bright square in quadrant c, plus noise."""
    root = tmp_path_factory.mktemp("data") / FOLDER
    rng = np.random.default_rng(0)
    for c, name in enumerate(("top-left", "top-right", "bottom-left")):
        (root / name).mkdir(parents=True)
        for i in range(20):
            a = rng.integers(0, 60, (12, 12), dtype=np.uint8)
            r, q = divmod(c, 2)
            a[r * 6 : r * 6 + 6, q * 6 : q * 6 + 6] += 180
            Image.fromarray(a).save(root / name / f"{i}.png")
    return root


def client(runs: Path, folder: Path, **options) -> TestClient:
    options.setdefault("shutdown_timeout", 20)
    app = create_app(runs_dir=runs, data_dirs=[folder], device="cpu", **options)
    return TestClient(app, base_url="http://127.0.0.1")


def post(c: TestClient, path: str, body: dict | None = None):
    return c.post(path, json=body, headers=CSRF) if body is not None else c.post(path, headers=CSRF)


def create(c: TestClient, body: dict) -> dict:
    r = post(c, "/api/jobs", body)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/api/jobs/{r.json()['id']}"
    return r.json()


def wait_for(c: TestClient, job_id: str, states=ENDED, timeout: float = 40, until=None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = c.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states and (until is None or until(job)):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}: {job}"
        time.sleep(0.05)


def sse(response) -> list[dict]:
    """The events of an SSE response, up to and including 'end': {"id", "event", "data"}."""
    out, buf = [], ""
    for chunk in response.iter_text():
        buf += chunk
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            fields = dict(
                line.split(": ", 1)
                for line in block.split("\n")
                if line and not line.startswith(":")
            )
            if fields:
                out.append(
                    {
                        "id": int(fields["id"]) if "id" in fields else None,
                        "event": fields.get("event", "message"),
                        "data": json.loads(fields["data"]),
                    }
                )
                if out[-1]["event"] == "end":
                    return out
    return out


def weights(runs: Path, run: str) -> dict:
    return load_file(runs / run / "last.safetensors")


def run_status(runs: Path, run: str) -> dict:
    return json.loads((runs / run / "status.json").read_text())


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory) -> tuple[Path, str]:
    """LONG trained without interruption, through a job: what stopped-and-resumed runs must equal."""
    runs = tmp_path_factory.mktemp("reference")
    with client(runs, folder) as c:
        job = wait_for(c, create(c, {**LONG, "name": "reference"})["id"])
    assert job["state"] == "finished", job
    return runs, job["run"]


# ---------------------------------------------------------------------------- the life of a job
def test_jobs_run_in_a_worker_one_at_a_time_and_stream_their_events(folder, tmp_path):
    runs = tmp_path / "runs"
    with client(runs, folder) as c:
        first = create(c, {**TINY, "name": "first"})
        second = create(c, {**TINY, "name": "second"})
        assert first["state"] == "queued" and first["request"]["folder"] == FOLDER
        with c.stream("GET", f"/api/jobs/{first['id']}/events") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "text/event-stream"
            )
            events = sse(r)
        assert c.get(f"/api/jobs/{second['id']}").json()["state"] in ("queued", "running")
        second = wait_for(c, second["id"])
    assert [e["id"] for e in events[:-1]] == list(range(1, len(events)))  # every event, in order
    kinds = [e["data"]["kind"] for e in events[:-1]]
    states = [e["data"]["state"] for e in events[:-1] if e["data"]["kind"] == "state"]
    assert states == ["queued", "running", "finished"]
    assert {"data", "model", "run", "train_begin", "step", "epoch", "train_end", "done"} <= set(
        kinds
    )
    step = next(e["data"] for e in events if e["data"]["kind"] == "step")
    assert {"loss", "accuracy", "images_per_sec", "eta_seconds", "global_step"} <= set(step)
    end = events[-1]
    assert end["event"] == "end" and end["id"] is None and end["data"]["state"] == "finished"
    with client(runs, folder, start_workers=False) as c:  # a restarted server: the records are kept
        job = c.get(f"/api/jobs/{first['id']}").json()
        assert job["run"] == "first" and job["progress"]["epoch"] == 2 and job["error"] is None
        assert job["result"] == {"run": "first", "status": "finished", "report": False}
        assert c.get("/api/runs/first").json()["status"] == "finished"
        # One job at a time (max_workers=1): the second started after the first ended.
        store = JobStore(runs)
        assert (
            second["state"] == "finished"
            and store.get(second["id"]).started >= store.get(first["id"]).ended
        )
        assert [j["id"] for j in c.get("/api/jobs").json()["jobs"]] == [second["id"], first["id"]]
        assert [j["id"] for j in c.get("/api/jobs?state=finished&limit=1").json()["jobs"]] == [
            second["id"]
        ]
        # Replay from any event: ?after=N or the Last-Event-ID header of a reconnecting EventSource.
        with c.stream("GET", f"/api/jobs/{first['id']}/events?after=3") as r:
            assert [e["id"] for e in sse(r)] == [e["id"] for e in events[3:]]
        with c.stream(
            "GET",
            f"/api/jobs/{first['id']}/events",
            headers={"Last-Event-ID": str(len(events) - 2)},
        ) as r:
            assert [e["event"] for e in sse(r)] == ["message", "end"]
    assert store.get(first["id"]).pid not in (None, os.getpid())  # trained in another process
    assert {p.name for p in runs.iterdir()} >= {"first", "second", DB_NAME}
    assert [r["name"] for r in c.get("/api/runs").json()["runs"]] == [
        "second",
        "first",
    ]  # the store is hidden


def test_stop_a_running_job_then_resume_it_exactly(folder, tmp_path, reference):
    runs = tmp_path / "runs"
    with client(runs, folder) as c:
        job = create(c, {**LONG, "name": "stopped"})
        wait_for(
            c,
            job["id"],
            states=("running",),
            until=lambda j: (j["progress"] or {}).get("epoch", 0) >= 1,
        )
        r = post(c, f"/api/jobs/{job['id']}/stop")
        assert r.status_code == 200 and r.json()["state"] in ("stopping", "interrupted"), r.text
        assert post(c, f"/api/jobs/{job['id']}/stop").status_code in (200, 409)  # again: harmless
        stopped = wait_for(c, job["id"])
        # issue 51: a stop asked for ends "stopped", not "interrupted" like a crash
        assert stopped["state"] == "stopped" and stopped["error"] is None, stopped
        assert stopped["result"]["status"] == "interrupted"
        # One sentence where it stopped, as the trainer's own log says it ("saved at epoch E").
        epoch = stopped["progress"]["epoch"]
        assert stopped["outcome"] == (
            f"Stopped in epoch {epoch} of {LONG['epochs']} when asked to, saved: resumable"
        )
        assert stopped["resumable"] is True
        assert run_status(runs, "stopped")["status"] == "interrupted"
        assert post(c, f"/api/jobs/{job['id']}/stop").status_code == 409  # ended
        r = post(c, f"/api/jobs/{job['id']}/resume")
        assert r.status_code == 201, r.text
        resumed = r.json()
        assert (
            resumed["resumed_from"] == job["id"]
            and resumed["run"] == "stopped"
            and resumed["id"] != job["id"]
        )
        assert (
            post(c, f"/api/jobs/{job['id']}/resume").status_code == 409
        )  # the run is already queued again: no Resume button offers it
        again = c.get(f"/api/jobs/{job['id']}").json()
        assert again["resumable"] is False and again["outcome"].endswith("(resumed since)")
        assert "saved: resumable" not in again["outcome"]
        resumed = wait_for(c, resumed["id"])
        assert resumed["state"] == "finished", resumed
        assert post(c, f"/api/jobs/{resumed['id']}/resume").status_code == 409  # finished
        assert post(c, f"/api/jobs/{job['id']}/resume").status_code == 409  # its run has ended
        listed = {j["id"]: j for j in c.get("/api/jobs").json()["jobs"]}
        assert listed[job["id"]]["resumable"] is False and not listed[resumed["id"]]["resumable"]
        assert resumed["outcome"].startswith("Finished")
    status = run_status(runs, "stopped")
    assert status["status"] == "finished" and status["epochs_done"] == LONG["epochs"]
    a, b = weights(runs, "stopped"), weights(*reference)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_a_job_whose_worker_died_with_the_server_is_interrupted_then_resumed_exactly(
    folder, tmp_path, reference
):
    """The server and the worker were killed mid-run: the next server marks the job
    interrupted (its run too), and resuming it gives the run an uninterrupted one would be."""
    runs = tmp_path / "runs"
    store = JobStore(runs)
    request, args = resolve_job(JobRequest(**LONG, name="killed"), [folder])
    job = store.create(request, args)
    store.claim_next(1)  # as a server does, then it starts the worker
    worker = subprocess.Popen(
        [sys.executable, "-m", "sightline.serve.jobs.worker", str(runs), job.id]
    )
    deadline = time.monotonic() + 40
    while (store.get(job.id).progress or {}).get("epoch", 0) < 2:
        assert worker.poll() is None and time.monotonic() < deadline, store.get(job.id)
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert (
        store.get(job.id).state == "running" and run_status(runs, "killed")["status"] == "running"
    )
    with client(runs, folder) as c:
        lost = c.get(f"/api/jobs/{job.id}").json()
        assert lost["state"] == "interrupted" and "worker process is gone" in lost["error"]
        assert str(worker.pid) not in lost["error"]  # the server's processes are its own business
        assert run_status(runs, "killed")["status"] == "interrupted"
        resumed = wait_for(c, create_resume(c, job.id)["id"])
        assert resumed["state"] == "finished", resumed
    a, b = weights(runs, "killed"), weights(*reference)
    assert all((a[k] == b[k]).all() for k in a)


def test_a_worker_whose_server_was_killed_stops_and_says_so(folder, tmp_path):
    """kill -9 of the server: its worker does not train on unwatched; it stops at a step
    boundary, resumable, and the job says why (one state, not "running" beside "stopped")."""
    from sightline.serve.jobs.worker import SERVER_GONE

    runs = tmp_path / "runs"
    store = JobStore(runs)
    request, args = resolve_job(JobRequest(**LONG, name="orphan"), [folder])
    job = store.create(request, args)
    store.claim_next(1)
    server = subprocess.Popen(  # stands in for the server: the worker's parent
        [sys.executable, "-c", "import subprocess, sys, time\n"
         f"w = subprocess.Popen([sys.executable, '-m', 'sightline.serve.jobs.worker', {str(runs)!r}, {job.id!r}])\n"
         "print(w.pid, flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    server.stdout.readline()  # the worker has started
    deadline = time.monotonic() + 40
    while (store.get(job.id).progress or {}).get("epoch", 0) < 1:
        assert time.monotonic() < deadline, store.get(job.id)
        time.sleep(0.02)
    server.kill()
    server.wait()
    deadline = time.monotonic() + 30
    while (ended := store.get(job.id)).state in ("running", "stopping"):
        assert time.monotonic() < deadline, "the worker trained on without its server"
        time.sleep(0.05)
    assert ended.state == "interrupted" and ended.error == SERVER_GONE
    assert run_status(runs, "orphan")["status"] == "interrupted"  # resumable


def create_resume(c: TestClient, job_id: str) -> dict:
    r = post(c, f"/api/jobs/{job_id}/resume")
    assert r.status_code == 201, r.text
    return r.json()


def test_shutdown_stops_the_running_job_cooperatively(folder, tmp_path):
    runs = tmp_path / "runs"
    with client(runs, folder) as c:
        job = create(c, {**LONG, "name": "shut"})
        queued = create(c, {**TINY, "name": "later"})
        wait_for(c, job["id"], states=("running",), until=lambda j: j["progress"] is not None)
    store = JobStore(runs)
    assert (
        store.get(job["id"]).state == "interrupted" and store.get(job["id"]).error is None
    )  # saved, not killed
    assert (
        run_status(runs, "shut")["status"] == "interrupted"
        and (runs / "shut" / "resume.pt").is_file()
    )
    assert store.get(queued["id"]).state == "queued"  # left for the next start


# ---------------------------------------------------------------------------- without workers
def test_a_stopped_queued_job_never_runs_and_resumes_as_a_new_job(folder, tmp_path):
    with client(tmp_path / "runs", folder, start_workers=False) as c:
        job = create(c, TINY)
        r = post(c, f"/api/jobs/{job['id']}/stop")
        assert r.status_code == 200 and r.json()["state"] == "stopped" and r.json()["ended"]
        again = create_resume(c, job["id"])
        assert (
            again["state"] == "queued"
            and again["request"] == job["request"]
            and again["run"] is None
        )
        with c.stream("GET", f"/api/jobs/{job['id']}/events") as r:
            assert [e["data"].get("state") for e in sse(r)] == [
                "queued",
                "stopped",
                "stopped",
            ]  # ..., end
        # A live stream of a job that has not ended: the first events, then the client goes away.
        with c.stream("GET", f"/api/jobs/{again['id']}/events") as r:
            first = next(r.iter_text())
        assert first.startswith("id: 1\ndata: ") and '"queued"' in first
        c.app.state.shutting_down.set()  # as uvicorn begins to stop: open streams end, without an end event
        with c.stream("GET", f"/api/jobs/{again['id']}/events?after=0") as r:
            assert [e["event"] for e in sse(r)] == ["message"]


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({**TINY, "model": "resnet9000"}, 400, "unknown model 'resnet9000'; available:"),
        ({"dataset": "imagenet", "model": "mlp"}, 400, "unknown dataset 'imagenet'"),
        ({"dataset": "/etc", "model": "mlp"}, 400, "unknown dataset '/etc'"),
        ({**TINY, "folder": "../shapes"}, 400, "unknown folder '../shapes'"),
        ({**TINY, "folder": "elsewhere"}, 400, f"one of {FOLDER}"),
        ({**TINY, "dataset": "mnist"}, 400, "not both"),
        ({**TINY, "epochs": 0}, 400, "epochs must be from 1 to 10,000"),
        ({**TINY, "epochs": 1e9}, 400, "epochs must be from 1 to 10,000"),  # the worker for years
        ({**TINY, "lr": -1}, 400, "lr must be more than 0"),
        ({**TINY, "lr": 1e308}, 400, "lr must be more than 0 and at most 10"),
        ({**TINY, "batch_size": 10**6}, 400, "batch_size must be from 1 to 65,536"),
        ({**TINY, "options": {"seed": 2**70}}, 400, "seed must be from 0"),
        ({**TINY, "options": {"translate": 10**9}}, 400, "translate must be from 0 to 64"),
        ({**TINY, "model_options": {"hidden": 1e8}}, 400, "parameters"),  # a failed run folder
        ({**TINY, "batch_size": 65536, "size": 512}, 400, "on batches of 65,536"),  # activations
        ({**TINY, "options": {"optimizer": "rmsprop"}}, 400, "choose one of"),
        ({**TINY, "options": {"bogus": 1}}, 400, "unknown training option(s): bogus"),
        ({**TINY, "options": {"epochs": 3}}, 400, "given twice"),
        ({**TINY, "options": {"lr": "fast"}}, 400, "invalid training option"),
        ({**TINY, "options": {"freeze": True}}, 400, "go with pretrained weights"),
        ({**TINY, "model_options": {"width": 3}}, 400, "has no option width"),
        ({**TINY, "pretrained": True}, 400, "has no pretrained weights"),
        ({**TINY, "classes": ["top-left", "nope"]}, 400, "unknown class 'nope'"),
        ({**TINY, "channels": 2}, 400, "channels must be 1 or 3"),
        ({**TINY, "size": [0, 5]}, 400, "out of range"),
        ({**TINY, "val_split": 1.5}, 400, "validation fraction"),
        ({**TINY, "val_split": 0, "calibration_split": 1.5}, 400, "calibration_split"),
        ({**TINY, "name": "../evil"}, 400, "invalid run name"),
        ({**TINY, "mirror": "/tmp"}, 422, "extra inputs are not permitted"),
        ({**TINY, "epochs": "many"}, 422, "epochs"),
        # JSON's true is not a number (issue 51: it trained 1 epoch), nor "yes" a switch
        ({**TINY, "epochs": True}, 422, "epochs"),
        ({**TINY, "lr": True}, 422, "lr"),
        ({**TINY, "val_split": False}, 422, "val_split"),
        ({**TINY, "size": [32, True]}, 422, "size"),
        ({**TINY, "evaluate": "no"}, 422, "evaluate"),
        ({**TINY, "options": {"max_steps": True}}, 400, "max_steps"),
        ({"recipe": "fastest"}, 400, "unknown recipe 'fastest'"),
        (
            {"recipe": "fashion-mnist-fast", "model": "mlp"},
            400,
            "trains fastcnn (on a CPU with AMX: airnet), not mlp",
        ),
        ({"recipe": "fashion-mnist-fast", "pretrained": True}, 400, "from scratch"),
        (
            {"recipe": "fashion-mnist-fast", "model_options": {"hidden": 3}},
            400,
            "has no option hidden",
        ),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_queued(folder, tmp_path, body, status, message):
    c = client(tmp_path / "runs", folder, start_workers=False)
    r = post(c, "/api/jobs", body)
    assert r.status_code == status, r.text
    assert message.lower() in r.json()["error"].lower(), r.json()
    assert c.get("/api/jobs").json() == {"jobs": []}
    assert not [p for p in (tmp_path / "runs").glob("*") if not p.name.startswith(".")]


def test_an_infinite_lr_is_refused_not_trained_at_the_default(folder, tmp_path):
    c = client(tmp_path / "runs", folder, start_workers=False)
    body = json.dumps({**TINY, "lr": 1.0}).replace("1.0", "Infinity")  # what JSON.parse can't say
    r = c.post("/api/jobs", content=body, headers={**CSRF, "Content-Type": "application/json"})
    assert r.status_code == 400 and "lr must be a finite number" in r.json()["error"], r.text
    assert c.get("/api/jobs").json() == {"jobs": []}


def test_an_ended_job_can_be_cleared_and_its_run_stays(folder, tmp_path):
    c = client(tmp_path / "runs", folder, start_workers=False)
    job = create(c, TINY)
    r = c.delete(f"/api/jobs/{job['id']}", headers=CSRF)
    assert r.status_code == 409 and "stop it first" in r.json()["error"]  # queued: not yet
    assert post(c, f"/api/jobs/{job['id']}/stop").json()["state"] == "stopped"
    r = c.delete(f"/api/jobs/{job['id']}", headers=CSRF)
    assert r.status_code == 200 and r.json() == {"deleted": job["id"]}
    assert c.get(f"/api/jobs/{job['id']}").status_code == 404
    assert c.get(f"/api/jobs/{job['id']}/events").status_code == 404
    assert c.get("/api/jobs").json() == {"jobs": []}
    assert c.delete(f"/api/jobs/{job['id']}", headers=CSRF).status_code == 404
    assert c.delete("/api/jobs/nope", headers=CSRF).status_code == 400


def planned(args: dict):
    """The plan ``run_training`` makes of a job's arguments."""
    from sightline.plan import TrainRequest, check

    keys = ("dataset", "model", "recipe", "data_options", "model_options")
    others = ("name", "evaluate", "report")
    train = {k: v for k, v in args.items() if k not in keys + others}
    return check(TrainRequest(*(args[k] for k in keys), train_options=train))


def test_a_recipe_job_trains_the_recipes_model_on_its_dataset_unless_told_otherwise(folder):
    request, args = resolve_job(JobRequest(recipe="cifar3-fast"), [folder])
    assert request == {
        "recipe": "cifar3-fast",
        "model_options": {},
        "pretrained": False,
        "options": {},
        "evaluate": True,
        "report": True,
    }
    # The job passes the request on; the plan picks the model, as for `sightline train`.
    assert (args["dataset"], args["model"], args["recipe"]) == ("cifar10", None, "cifar3-fast")
    assert planned(args).model == "fastcnn"
    _, args = resolve_job(
        JobRequest(
            recipe="fashion-mnist-fast", folder=FOLDER, epochs=2, model_options={"width": 8}
        ),
        [folder],
    )
    assert args["dataset"] == str(folder.resolve()) and args["epochs"] == 2
    # The caller's width over the recipe's options as it trains here (fastcnn's pool_first; on a
    # CPU with AMX its airnet variant, which sets none).
    here = for_machine(get_recipe("fashion-mnist-fast"))
    plan = planned(args)
    assert plan.model == here.model and plan.model_options == {**here.model_options, "width": 8}
    assert here.model == "airnet" or plan.model_options == {"width": 8, "pool_first": True}


@pytest.mark.parametrize(
    "amx, avx512",
    [(False, True), (True, True), (False, False)],
    ids=["cpu-avx512", "cpu-with-amx", "cpu-avx2"],
)
def test_recipes_are_listed_as_they_train_on_this_machine(
    folder, tmp_path, monkeypatch, on_a_cpu, amx, avx512
):
    monkeypatch.setattr("sightline.devices.cpu_has_amx", lambda: amx)
    monkeypatch.setattr("sightline.devices.cpu_has_avx512", lambda: avx512)
    c = client(tmp_path / "runs", folder, start_workers=False)
    listed = {r["name"]: r for r in c.get("/api/recipes").json()["recipes"]}
    assert all(r["model"] and r["train_options"] and r["measured"] for r in listed.values())
    fast = listed["fashion-mnist-fast"]
    expected = (
        "cpu-amx" if amx else None
    )  # AVX2 or AVX-512: the time budget fits its epochs to the CPU
    assert (fast["model"], fast.get("variant")) == ("airnet" if amx else "fastcnn", expected)
    long = listed["fashion-mnist-long"]
    assert long.get("variant") == expected
    recipe = get_recipe("fashion-mnist-long")
    assert (
        long["train_options"]
        == (recipe.with_variant(expected) if expected else recipe).train_options
    )
    assert long["train_options"]["time_budget"] == 300
    tutorial = listed[
        "cifar3-tutorial-cnn"
    ]  # a speed ratio against Keras: fewer epochs without AVX-512
    assert tutorial.get("variant") == (None if amx or avx512 else "cpu-avx2")
    # What the page then sends (the listed model with the recipe) trains that model.
    _, args = resolve_job(JobRequest(recipe="fashion-mnist-fast", model=fast["model"]), [folder])
    assert args["model"] == fast["model"]


def test_job_ids_and_states_are_checked(folder, tmp_path):
    c = client(tmp_path / "runs", folder, start_workers=False)
    cross = {"Sec-Fetch-Site": "cross-site"}  # another site's page
    assert c.post("/api/jobs", json=TINY, headers=cross).status_code == 403
    for bad in ("nope", "..%2F..%2Fetc", "a" * 17, "%00" * 16, "aaaaaaaaaaaaaaa."):
        for r in (
            c.get(f"/api/jobs/{bad}"),
            c.get(f"/api/jobs/{bad}/events"),
            post(c, f"/api/jobs/{bad}/stop"),
            post(c, f"/api/jobs/{bad}/resume"),
        ):
            assert r.status_code in (400, 404) and "error" in r.json(), (bad, r.status_code, r.text)
    assert "invalid job id" in c.get("/api/jobs/nope").json()["error"]
    unknown = "A" * 16
    for r in (
        c.get(f"/api/jobs/{unknown}"),
        c.get(f"/api/jobs/{unknown}/events"),
        post(c, f"/api/jobs/{unknown}/stop"),
        post(c, f"/api/jobs/{unknown}/resume"),
    ):
        assert r.status_code == 404 and "no job" in r.json()["error"], r.text
    job = create(c, TINY)
    assert post(c, f"/api/jobs/{job['id']}/resume").status_code == 409  # queued: nothing to resume
    events = f"/api/jobs/{job['id']}/events"
    # Out-of-range event numbers are the client's mistake (they were a cut stream and a 500).
    for bad in ("x", "-1", "1.5", "²", str(2**63), "9" * 4400):
        if bad.isascii():  # a header holds ASCII only
            r = c.get(events, headers={"Last-Event-ID": bad})
            assert r.status_code == 400 and "event number" in r.json()["error"], (bad[:30], r.text)
        r = c.get(events, params={"after": bad})
        assert r.status_code == 400 and "event number" in r.json()["error"], (bad[:30], r.text)
    assert c.get("/api/jobs?state=sleeping").status_code == 400
    paths = c.get("/openapi.json").json()["paths"]
    assert {
        "/api/jobs",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/events",
        "/api/jobs/{job_id}/stop",
        "/api/jobs/{job_id}/resume",
    } <= set(paths)
    # Issue 52: each training option is in the schema as declared once (plan/config.py).
    from sightline.plan.config import TrainConfig
    from sightline.plan.options import declared

    spec = c.get("/openapi.json").json()["components"]["schemas"]["JobRequest"]["properties"]
    options = spec["options"]["properties"]
    for o in declared(TrainConfig):
        if o.spec.api:
            assert options[o.name]["description"] == o.spec.help, o.name
        else:  # a path on the server (track_dir): never a client's to give
            assert o.name not in options, o.name
    assert options["label_smoothing"]["exclusiveMaximum"] == 1
    assert options["optimizer"]["enum"] == ["sgd", "adam", "adamw"]
    assert spec["epochs"]["minimum"] == 1 and spec["epochs"]["maximum"] == 10_000
    # ... and so is each data and model option (plan/inputs.py): a field of its own.
    from sightline.plan.inputs import DataOptions, ModelChoice
    from sightline.plan.option_faces import json_schema

    def same(schema):  # JSON's numbers: 2^63 - 1 comes back as a float
        text = json.dumps({k: v for k, v in schema.items() if k != "title"}, sort_keys=True)
        return json.loads(text, parse_int=float)

    for cls in (DataOptions, ModelChoice):
        for o in declared(cls):
            if o.spec.api:
                assert same(spec[o.name]) == same(json_schema(o)), o.name
            else:
                assert o.name not in spec, o.name  # a path on the server (mirror, cache_dir)
    assert spec["val_split"]["anyOf"][1] == {"enum": ["test"]}
    assert spec["resize"]["enum"] == ["squash", "crop", "pad"]


def test_jobs_left_running_by_a_gone_server_are_marked_interrupted(folder, tmp_path):
    runs = tmp_path / "runs"
    store = JobStore(runs)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer exists (and is reaped)
    ids = {}
    for name, pid, beat_age in (
        ("dead", dead.pid, 0),
        ("stale", os.getpid(), STALE_S + 5),
        ("alive", os.getpid(), 0),
    ):
        job = store.create({"folder": FOLDER}, {"dataset": "x"})
        store.claim_next(10)
        store.attach(job.id, pid)
        with store._write() as con:  # the heartbeat as the worker last wrote it
            con.execute(
                "UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time() - beat_age, job.id)
            )
        ids[name] = job.id
    with client(runs, folder, start_workers=False) as c:
        states = {name: c.get(f"/api/jobs/{i}").json() for name, i in ids.items()}
    assert states["dead"]["state"] == "interrupted" and "is gone" in states["dead"]["error"]
    assert (
        states["stale"]["state"] == "interrupted"
    )  # its pid exists, but it has not been heard from
    assert states["alive"]["state"] == "running"  # another server's live worker: left alone


# ---------------------------------------------------------------------------- the store
def test_the_store_is_safe_with_concurrent_writers_in_threads_and_processes(tmp_path):
    store = JobStore(tmp_path)
    jobs = [store.create({"n": i}, {}).id for i in range(6)]
    code = (
        "import sys\nfrom sightline.serve.jobs.store import JobStore\ns = JobStore(sys.argv[1])\n"
        "for i in range(40):\n    s.add_event(sys.argv[2], {'kind': 'step', 'step': i, 'loss': float('nan')})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), jobs[0]]) for _ in range(2)
    ]
    claimed, errors = [], []

    def work(t: int) -> None:
        try:
            for i in range(40):
                store.add_event(jobs[t % 3], {"kind": "epoch", "epoch": i})
            job = store.claim_next(max_active=2)
            if job is not None:
                claimed.append(job.id)
        except Exception as e:  # pragma: no cover - the failure is the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert errors == []
    assert len(claimed) == 2 and len(set(claimed)) == 2  # never more than max_active running
    for i, job_id in enumerate(jobs[:3]):
        seqs = [seq for seq, _ in store.events_after(job_id, 0, limit=10_000)]
        expected = 1 + 40 * len(range(i, 8, 3)) + (80 if i == 0 else 0) + (job_id in claimed)
        assert seqs == list(range(1, expected + 1)), (
            i,
            len(seqs),
            expected,
        )  # no gap, no duplicate
    steps = [
        e
        for e in (json.loads(data) for _, data in store.events_after(jobs[0], 0, 10_000))
        if e["kind"] == "step"
    ]
    assert len(steps) == 80 and all(
        e["loss"] is None for e in steps
    )  # NaN stored as null: strict JSON
    assert store.get(jobs[0]).progress["epoch"] == 39


def test_a_job_with_no_model_trains_the_datas_default(folder):
    """As `sightline train DATA` with no --model: Fashion-MNIST's own default, else the folders'."""

    def model(**request):
        return planned(resolve_job(JobRequest(**request), [folder])[1]).model

    assert model() == "airnet"  # fashion-mnist when none is named
    assert model(dataset="mnist") == "fastcnn"
    assert model(folder=FOLDER) == "fastcnn"
    assert model(dataset="fashion-mnist", model="mlp") == "mlp"
