"""A training job as the server knows it: its id, its state, what a client sees of it, and the
errors a job request or id can meet (400, 404, 409)."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sightline.errors import SightlineError

JOB_ID = re.compile(r"[A-Za-z0-9_-]{16}")  # secrets.token_urlsafe(12): 96 random bits
ACTIVE = ("running", "stopping")
ENDED = ("finished", "failed", "interrupted", "stopped")
STATES = ("queued", *ACTIVE, *ENDED)


class JobError(SightlineError):
    """A bad job request or id (400)."""


class JobNotFoundError(JobError):
    """No job with that id (404)."""


class JobStateError(JobError):
    """The job's state does not allow this: stop an ended job, resume a running one (409)."""


def check_job_id(job_id: str) -> str:
    """``job_id`` if it is one this store could have made; ``JobError`` otherwise (never a
    path, never SQL: it is only ever a bound parameter, but a strict check keeps logs clean)."""
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        shown = job_id[:40] if isinstance(job_id, str) else job_id
        raise JobError(f"invalid job id {shown!r}: a job id is 16 letters, digits, '-' or '_'")
    return job_id


def _iso(t: float | None) -> str | None:
    return (
        None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")
    )


@dataclass
class Job:
    id: str
    state: str
    created: float
    started: float | None
    ended: float | None
    request: dict[str, Any]
    args: dict[str, Any]
    resumed_from: str | None
    run: str | None
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    pid: int | None
    heartbeat: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        for key in ("request", "args", "progress", "result"):
            d[key] = json.loads(d[key]) if d[key] is not None else None
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """What a client sees: no pid, no resolved arguments (they hold server paths)."""
        return {
            "id": self.id,
            "state": self.state,
            "created": _iso(self.created),
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "request": self.request,
            "run": self.run,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "outcome": self.outcome(),
            "resumed_from": self.resumed_from,
        }

    def outcome(self) -> str:
        """Where the job stands, in one sentence with its cause: what every page shows."""
        p = self.progress or {}
        epoch, epochs = p.get("epoch"), p.get("epochs")
        where = f" in epoch {epoch}" + (f" of {epochs}" if epochs else "") if epoch else ""
        if self.state == "queued":
            return "Queued: it starts when the jobs before it have ended"
        if self.state == "running":
            return f"Training{where}" if where else "Starting"
        if self.state == "stopping":
            return f"Stopping{where}: saving its state"
        if self.state == "finished":
            accuracy = (self.result or {}).get("test_accuracy")
            shown = f": test accuracy {accuracy:.2%}" if isinstance(accuracy, float) else ""
            return f"Finished{shown}"
        if self.state == "failed":
            return f"Failed{where}: {self.error or 'no reason was recorded'}"
        if self.state == "stopped" and not self.started:
            return "Stopped before it started"
        if self.state == "stopped":
            return f"Stopped{where} when asked to, saved: resumable"
        cause = f": {self.error}" if self.error else " when asked to, saved: resumable"
        return f"Stopped{where}{cause}"
