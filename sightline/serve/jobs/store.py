"""The job store: training jobs and their events in one SQLite file in the runs folder.

``<runs_dir>/.sightline-jobs.sqlite`` (a dot name, so ``list_runs`` never shows it). The web
server writes a job when it is asked for, stopped or claimed by a worker; the worker process
writes its events, heartbeat and result. So the file is shared by threads and processes:

* WAL journal: readers (a page, an event stream) never wait for the writer, nor it for them.
* A busy timeout: a second writer waits while one short transaction commits, it never fails.
* One short transaction per write, begun with ``BEGIN IMMEDIATE`` (the write lock first), so a
  read-then-write (the next event number, claiming the oldest queued job) cannot race.
* One connection per call: sqlite3 connections must not cross threads, nothing stays open
  across a fork, and opening one costs ~0.1 ms.

States: queued → running → finished | failed | interrupted, with stopping between running and
interrupted when a stop is asked for; a queued job that is stopped never runs: stopped.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sightline.serve.core.jsonable import to_json
from sightline.serve.jobs.job import (
    ENDED,
    Job,
    JobError,
    JobNotFoundError,
    JobStateError,
    check_job_id,
)

DB_NAME = ".sightline-jobs.sqlite"
BUSY_TIMEOUT_S = 30.0
SCHEMA_VERSION = 1
# Events that update a job's "last progress" (what a jobs table shows without the events).
PROGRESS_KEYS = (
    "epoch",
    "epochs",
    "step",
    "steps",
    "global_step",
    "stop_step",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "images_per_sec",
    "eta_seconds",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    state TEXT NOT NULL,
    request TEXT NOT NULL,      -- the client's request, as validated (JSON)
    args TEXT NOT NULL,         -- run_training's keyword arguments, resolved by the server (JSON)
    resumed_from TEXT,          -- the job this one resumes
    run TEXT,                   -- the run folder's name, once the worker has made it
    progress TEXT,              -- the last progress (JSON)
    result TEXT,                -- the outcome (JSON)
    error TEXT,
    pid INTEGER,                -- the worker process
    heartbeat REAL              -- when the worker last said it is alive
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs (run);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,       -- 1, 2, ... per job: what a client replays from
    event TEXT NOT NULL,        -- JSON with a "kind"
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""


class JobStore:
    """The jobs of one runs folder. Safe to use from any thread and any process."""

    def __init__(self, runs_dir: str | Path) -> None:
        self.path = Path(runs_dir) / DB_NAME
        self._ready = False

    # ------------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self._create()
        con = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None
        )  # we BEGIN ourselves
        con.row_factory = sqlite3.Row
        # WAL + NORMAL: a commit survives a crash of any process; only a power cut can lose
        # the last few (progress events), and the file is never corrupted.
        con.execute("PRAGMA synchronous = NORMAL")
        return con

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = WAL")  # stored in the file: once for every process
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JobError(
                    f"{self.path} was written by a newer sightline (job store version {version})"
                )
            con.executescript(
                f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        finally:
            con.close()
        self._ready = True

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, holding the write lock from its first statement."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    # ------------------------------------------------------------------ reads
    def get(self, job_id: str) -> Job:
        check_job_id(job_id)
        with self._read() as con:
            row = con.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id!r}")
        return Job.from_row(row)

    def list_jobs(self, state: str | None = None, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs first (in one state, if given)."""
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._read() as con:
            rows = con.execute(
                f"SELECT * FROM jobs {where} ORDER BY created DESC, rowid DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [Job.from_row(r) for r in rows]

    def events_after(self, job_id: str, after: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """(seq, JSON) of the job's events numbered above ``after``, in order: an indexed read."""
        with self._read() as con:
            rows = con.execute(
                "SELECT seq, event FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (job_id, after, limit),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def stopped_by(self, job_id: str) -> str | None:
        """Who asked the job to stop ("user" or "server"; None: nobody)."""
        with self._read() as con:
            rows = con.execute(
                "SELECT event FROM events WHERE job_id = ? AND event LIKE '%\"stopping\"%' "
                "ORDER BY seq DESC LIMIT 1",
                (job_id,),
            ).fetchall()
        return json.loads(rows[0][0]).get("by", "user") if rows else None

    def state(self, job_id: str) -> str | None:
        with self._read() as con:
            row = con.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row[0]

    # ------------------------------------------------------------------ writes
    def create(
        self,
        request: dict[str, Any],
        args: dict[str, Any],
        *,
        resumed_from: str | None = None,
        run: str | None = None,
    ) -> Job:
        """A new queued job. With ``run`` (a resume), refused while another job is queued for
        or training that run: two workers must never train one run folder."""
        job_id = secrets.token_urlsafe(12)
        with self._write() as con:
            if run is not None:
                busy = _busy_with(con, run)
                if busy is not None:
                    raise JobStateError(
                        f"run {run!r} already has a job that is queued or training: {busy}"
                    )
            con.execute(
                "INSERT INTO jobs (id, created, state, request, args, resumed_from, run) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, time.time(), "queued", to_json(request), to_json(args), resumed_from, run),
            )
            self._add_event(con, job_id, {"kind": "state", "state": "queued"})
        return self.get(job_id)

    def claim_next(self, max_active: int) -> Job | None:
        """The oldest queued job, now running, if fewer than ``max_active`` jobs of this runs
        folder are running (whichever server started them); else None."""
        with self._write() as con:
            active = con.execute(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('running', 'stopping')"
            ).fetchone()[0]
            if active >= max_active:
                return None
            row = con.execute(
                "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            con.execute(
                "UPDATE jobs SET state = 'running', started = ?, heartbeat = ?, pid = NULL WHERE id = ?",
                (now, now, row[0]),
            )
            self._add_event(con, row[0], {"kind": "state", "state": "running"})
        return self.get(row[0])

    def attach(self, job_id: str, pid: int) -> str | None:
        """Record the worker process of an active job; returns the job's state."""
        with self._write() as con:
            con.execute(
                "UPDATE jobs SET pid = ?, heartbeat = ? WHERE id = ? AND state IN ('running', 'stopping')",
                (pid, time.time(), job_id),
            )
            row = con.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row[0]

    def beat(self, job_id: str, pid: int) -> None:
        with self._write() as con:
            con.execute(
                "UPDATE jobs SET heartbeat = ? WHERE id = ? AND pid = ?", (time.time(), job_id, pid)
            )

    def add_event(self, job_id: str, event: dict[str, Any]) -> int:
        """Store one event (numbered after the job's last one); returns its number. A ``run``
        event names the job's run; step and epoch events become its last progress."""
        with self._write() as con:
            return self._add_event(con, job_id, event)

    def _add_event(self, con: sqlite3.Connection, job_id: str, event: dict[str, Any]) -> int:
        seq = con.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
        con.execute(
            "INSERT INTO events (job_id, seq, event) VALUES (?, ?, ?)",
            (job_id, seq, to_json(event)),
        )
        kind = event.get("kind")
        if kind == "run" and event.get("name"):
            con.execute("UPDATE jobs SET run = ? WHERE id = ?", (event["name"], job_id))
        elif kind in ("step", "epoch"):
            row = con.execute("SELECT progress FROM jobs WHERE id = ?", (job_id,)).fetchone()
            progress = json.loads(row[0]) if row and row[0] else {}
            progress.update({k: event[k] for k in PROGRESS_KEYS if k in event})
            con.execute("UPDATE jobs SET progress = ? WHERE id = ?", (to_json(progress), job_id))
        return seq

    def request_stop(self, job_id: str, by: str = "user") -> Job:
        """Stop a job: a queued one never starts (stopped), a running one is asked to stop
        (stopping; its worker then ends the run resumable: stopped when a user asked,
        interrupted when the server shut down, ``by="server"``). Repeating is harmless."""
        job = self.get(job_id)
        with self._write() as con:
            state = con.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            if state in ENDED:
                raise JobStateError(f"job {job_id} has already ended ({state})")
            if state == "queued":
                con.execute(
                    "UPDATE jobs SET state = 'stopped', ended = ? WHERE id = ?",
                    (time.time(), job_id),
                )
                self._add_event(con, job_id, {"kind": "state", "state": "stopped"})
            elif state == "running":
                con.execute("UPDATE jobs SET state = 'stopping' WHERE id = ?", (job_id,))
                self._add_event(con, job_id, {"kind": "state", "state": "stopping", "by": by})
        return self.get(job.id)

    def delete(self, job_id: str) -> None:
        """Forget an ended job and its events (its run folder stays: that is the run's own);
        ``JobStateError`` while it is queued or training."""
        self.get(job_id)  # JobNotFoundError naming it
        with self._write() as con:
            state = con.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if state is None:
                return  # deleted meanwhile: nothing left to do
            if state[0] not in ENDED:
                raise JobStateError(f"job {job_id} is {state[0]}: stop it first, then clear it")
            con.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            con.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def finish(
        self,
        job_id: str,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        pid: int | None = None,
    ) -> bool:
        """End an active job (with ``pid``: only if that process still owns it). False when it
        was not active: someone else (the worker, a recovering server) ended it first."""
        if state not in ENDED:
            raise ValueError(f"not an end state: {state!r}")
        owner, params = (" AND pid = ?", (pid,)) if pid is not None else ("", ())
        with self._write() as con:
            done = con.execute(
                f"UPDATE jobs SET state = ?, ended = ?, result = ?, error = ? "
                f"WHERE id = ? AND state IN ('running', 'stopping'){owner}",
                (
                    state,
                    time.time(),
                    None if result is None else to_json(result),
                    error,
                    job_id,
                    *params,
                ),
            ).rowcount
            if done:
                self._add_event(
                    con,
                    job_id,
                    {"kind": "state", "state": state, **({"error": error} if error else {})},
                )
        return bool(done)

    def busy_runs(self) -> set[str]:
        """The runs a job is queued for or training."""
        with self._read() as con:
            rows = con.execute(
                f"SELECT DISTINCT run FROM jobs WHERE run IS NOT NULL AND state IN {_BUSY}"
            ).fetchall()
        return {r[0] for r in rows}

    def active(self) -> list[Job]:
        with self._read() as con:
            rows = con.execute(
                "SELECT * FROM jobs WHERE state IN ('running', 'stopping')"
            ).fetchall()
        return [Job.from_row(r) for r in rows]


_BUSY = "('queued', 'running', 'stopping')"  # a job in these states owns its run folder


def _busy_with(con: sqlite3.Connection, run: str) -> str | None:
    row = con.execute(f"SELECT id FROM jobs WHERE run = ? AND state IN {_BUSY}", (run,)).fetchone()
    return None if row is None else row[0]
