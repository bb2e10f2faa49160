"""The worker process: one job's training through the Python API, recorded in the job store.

``python -m sightline.serve.jobs.worker RUNS_DIR JOB_ID``, started by the server's ``JobPool``
as a process of its own (never a thread of the web server: training holds the CPU, its memory
and, on a GPU, the device; a crash or a kill must not take the pages down). It calls
``sightline.run_training`` as any user of the Python API would, and:

* writes every event to the store (a client replays them; the server streams them),
* polls the job's state in a background thread, so a stop asked of the server reaches the
  training loop's ``should_stop`` as a flag (no database read between training steps),
* beats a heartbeat there too, so a restarted server can tell a live worker from a lost one,
* stops when its server is gone (killed, crashed): the job ends interrupted and resumable, with
  the reason, instead of training on unwatched; a restarted server shows that one state,
* records the end: finished, interrupted (stopped, resumable) or failed with the error.

Every write is conditional on this process still owning the job: a server that declared it
lost (and marked it interrupted) is never overwritten.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sightline.errors import SightlineError, failure_text
from sightline.serve.jobs.job import ACTIVE, Job, check_job_id
from sightline.serve.jobs.store import JobStore

HEARTBEAT_S = 2.0  # how often the worker says it is alive (see job_pool.STALE_S)
STOP_POLL_S = 0.25  # how often it reads the job's state: how soon a stop takes effect


def _log(message: str) -> None:
    print(f"sightline job worker {os.getpid()}: {message}", file=sys.stderr, flush=True)


SERVER_GONE = (
    "the server stopped during the job (the worker stopped with it, at a step boundary): "
    "resume the job to continue from its last checkpoint"
)


class Watch(threading.Thread):
    """The job's state, every STOP_POLL_S: anything but running (stopping, or no longer
    active because a server gave the worker up) sets ``stop``, and so does the end of the
    server that started this worker (its parent: a new parent means it is gone); and a
    heartbeat."""

    def __init__(self, store: JobStore, job_id: str, pid: int) -> None:
        super().__init__(name="sightline-job-watch", daemon=True)
        self.store, self.job_id, self.pid = store, job_id, pid
        self.stop = threading.Event()
        self.server = os.getppid()
        self.server_gone = False
        self._done = threading.Event()

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self._done.wait(STOP_POLL_S):
            if os.getppid() != self.server:
                self.server_gone = True
                self.stop.set()
            try:
                if self.store.state(self.job_id) != "running":
                    self.stop.set()
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    self.store.beat(self.job_id, self.pid)
                    last_beat = time.monotonic()
            except sqlite3.Error as e:  # a locked or full disk: training goes on, we try again
                _log(f"job store unavailable ({e})")

    def close(self) -> None:
        self._done.set()
        self.join(timeout=5)


class Recorder:
    """``on_event``: each event into the store. A failed write is logged, never raised into
    the training loop: losing a progress event must not lose the training."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            self.store.add_event(self.job_id, event)
        except sqlite3.Error as e:
            _log(f"could not record a {event.get('kind')} event ({e})")


def _outcome(result: Any) -> dict[str, Any]:
    """The result a client sees: run name and status, test metrics; no server paths."""
    out = {k: v for k, v in result.to_dict().items() if k not in ("run", "report")}
    return {"run": result.run.name, **out, "report": result.report is not None}


def train(
    store: JobStore, job: Job, runs_dir: Path, should_stop: Callable[[], bool]
) -> tuple[str, dict[str, Any] | None, str | None]:
    """Run the job's training; (end state, result, error)."""
    import sightline
    from sightline.run import run_id_path

    args = dict(job.args)
    common: dict[str, Any] = dict(
        runs_dir=runs_dir,
        progress="quiet",
        on_event=Recorder(store, job.id),
        should_stop=should_stop,
    )
    try:
        if "resume" in args:  # a run name, checked again here: it must be a run folder in runs_dir
            resume = run_id_path(args.pop("resume"), runs_dir)
            result = sightline.run_training(resume=resume, **args, **common)
        else:
            result = sightline.run_training(**args, **common)
    except BaseException as e:  # KeyboardInterrupt too: a job must never stay "running"
        if not isinstance(e, SightlineError):
            traceback.print_exc()  # the server's log gets the details
        return (
            ("interrupted" if isinstance(e, KeyboardInterrupt) else "failed"),
            None,
            failure_text(e),
        )
    return ("interrupted" if result.status == "interrupted" else "finished"), _outcome(result), None


def run_job(runs_dir: Path, job_id: str) -> int:
    store = JobStore(runs_dir)
    pid = os.getpid()
    if store.attach(job_id, pid) not in ACTIVE:
        return 0  # stopped, or given up by a server, before this process got going
    job = store.get(job_id)
    watch = Watch(store, job_id, pid)
    watch.start()
    try:
        state, result, error = train(store, job, runs_dir, watch.stop.is_set)
    finally:
        watch.close()
    if watch.server_gone and state == "interrupted":
        error = SERVER_GONE
    elif state == "interrupted" and error is None and store.stopped_by(job_id) == "user":
        state = "stopped"  # as asked: a stop, not a crash (the run itself stays resumable)
    for attempt in range(5):  # the end must be recorded: retry a busy or briefly failing store
        try:
            store.finish(job_id, state, result=result, error=error, pid=pid)
            break
        except sqlite3.Error as e:
            _log(f"could not record the end of job {job_id} ({e}); attempt {attempt + 1} of 5")
            time.sleep(1.0)
    return 0 if state != "failed" else 1


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m sightline.serve.jobs.worker RUNS_DIR JOB_ID", file=sys.stderr)
        return 2
    return run_job(Path(argv[0]), check_job_id(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
