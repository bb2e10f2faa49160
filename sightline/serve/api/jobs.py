"""The /api/jobs endpoints: queue, list, watch, stop and resume training jobs.

A thin face: requests are checked by ``job_request`` (with sightline's own resolvers), jobs
live in the ``JobStore``, the ``JobPool`` starts their workers. Live progress is a stream of
Server-Sent Events read from the store, so it works the same for a job this server started,
one another server started, and one that ended a week ago (replayed in full).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.convertors import Convertor, register_url_convertor

from sightline.errors import RunInUseError, RunNotFoundError, SightlineError
from sightline.serve.core.errors import errors
from sightline.serve.core.jsonable import to_json
from sightline.serve.core.params import SPACE, JobId, JobState, schema
from sightline.serve.core.paths import public_text
from sightline.serve.jobs.job import (
    ENDED,
    STATES,
    Job,
    JobError,
    JobStateError,
    check_job_id,
)
from sightline.serve.jobs.pool import JobPool
from sightline.serve.jobs.request import JobRequest, preview_job, resolve_job
from sightline.serve.jobs.store import JobStore

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
EVENTS_POLL_S = 0.25  # how often an event stream looks for new events: one indexed read
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
EVENTS_BATCH = 500
RESUMABLE = ("interrupted", "failed", "stopped")


class JobIdSegment(Convertor[str]):
    """The path segment of /api/jobs/{job_id}: any but the routes beside it ("plan"), which
    another method must not reach as a job: GET /api/jobs/plan is a 405 (it takes POST), not
    "invalid job id 'plan'". Any other id still reaches the route, which checks it (400)."""

    regex = "(?!plan$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("job_id", JobIdSegment())


def _pool(request: Request) -> JobPool:
    return request.app.state.jobs


def _store(request: Request) -> JobStore:
    return _pool(request).store


@router.post("", status_code=201, summary="Queue a training job", responses=errors(404))
def create_job(body: JobRequest, request: Request, response: Response) -> dict[str, Any]:
    """Checked as ``sightline train`` checks its options (400 with the reason), then queued;
    jobs run one at a time by default, oldest first."""
    stored, args = resolve_job(body, request.app.state.sightline.datasets())
    job = _store(request).create(stored, args)
    _pool(request).wake()
    response.headers["Location"] = f"/api/jobs/{job.id}"
    return _view(request, job)


@router.post("/plan", summary="What a job would train with, without queuing it")
def plan_job(body: JobRequest, request: Request) -> dict[str, Any]:
    """The body of ``POST /api/jobs``, through the same plan code as a queued job and
    ``sightline train``: the resolved training options (the folder recipe's and the device's
    included), the data's split sizes and the optimizer steps when the data is known (a
    folder's from its files, no image decoded), ``short_of_recipe`` when the given epochs train
    fewer steps than the folder recipe would, and the plan's notes. Errors as for a new job."""
    return preview_job(body, request.app.state.sightline.datasets())


@router.get("", summary="Jobs, newest first")
def list_jobs(
    request: Request, state: JobState = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    if state is not None and state not in STATES:
        raise JobError(f"unknown job state {state[:40]!r}; states: {', '.join(STATES)}")
    store = _store(request)
    busy = store.busy_runs()  # one read for the list, not one per job
    return {"jobs": [_view(request, job, busy) for job in store.list_jobs(state, limit)]}


@router.get(
    "/{job_id:job_id}",
    summary="One job: state, request, run, last progress, result or error",
    responses=errors(404),
)
def get_job(job_id: JobId, request: Request) -> dict[str, Any]:
    return _view(request, _store(request).get(job_id))


@router.delete(
    "/{job_id:job_id}",
    summary="Clear an ended job from the list (its run stays; 409 while it trains)",
    responses=errors(404, 409),
)
def delete_job(job_id: JobId, request: Request) -> dict[str, Any]:
    check_job_id(job_id)
    _store(request).delete(job_id)
    return {"deleted": job_id}


@router.post(
    "/{job_id:job_id}/stop",
    summary="Stop a job: a queued one never starts, a running one saves and ends resumable",
    responses=errors(404, 409),
)
def stop_job(job_id: JobId, request: Request) -> dict[str, Any]:
    job = _store(request).request_stop(job_id)
    _pool(request).wake()
    return _view(request, job)


def _view(request: Request, job: Job, busy: set[str] | None = None) -> dict[str, Any]:
    """What a client sees of a job, with whether Resume would be accepted now. ``busy``: the
    runs a job is queued for or training (read here when not given)."""
    view = {**job.to_dict(), "resumable": _resumable(request, job, busy)}
    if not view["resumable"] and view["outcome"].endswith("saved: resumable"):
        # resumed since (by another job), or its run ended: no longer a promise to show
        view["outcome"] = view["outcome"].removesuffix(", saved: resumable") + " (resumed since)"
    return view


def _resumable(request: Request, job: Job, busy: set[str] | None) -> bool:
    if job.state not in RESUMABLE:
        return False
    if job.run is None:
        return True  # it starts again
    if job.run in (busy if busy is not None else _store(request).busy_runs()):
        return False  # resumed already, by another job
    try:
        _check_resumable(request, job.id, job.run)
    except SightlineError:  # gone, ended, training, no saved state: the reason comes on Resume
        return False
    return True


def _check_resumable(request: Request, job_id: str, run: str) -> None:
    """Refuse (409) before queuing what the worker could only fail at: a run that is gone,
    has ended, is training, or never saved a training state."""
    from sightline.fileio import inside
    from sightline.run import ENDED as RUN_ENDED
    from sightline.run import Run, RunLayout, run_id_path

    try:
        path = run_id_path(run, request.app.state.sightline.runs_dir)
    except RunNotFoundError:
        raise JobStateError(
            f"the run of job {job_id}, {run!r}, no longer exists: nothing to resume"
        ) from None
    status = Run(path, strict=False).status.get("status")
    if status in RUN_ENDED:
        raise JobStateError(f"run {run!r} already ended ({status}): nothing to resume")
    if status == "running":
        raise RunInUseError(f"run {run!r} is training")
    inside(path, RunLayout(path).resume)  # a symbolic link: refused (403), never loaded
    if not RunLayout(path).resume.is_file():
        raise JobStateError(
            f"run {run!r} saved no training state (it stopped before its first checkpoint): "
            "start a new job instead"
        )


@router.post(
    "/{job_id:job_id}/resume",
    status_code=201,
    summary="Resume an interrupted job exactly: a new job on the same run",
    responses=errors(404, 409),
)
def resume_job(job_id: JobId, request: Request, response: Response) -> dict[str, Any]:
    """A new job continues the old job's run folder from its last checkpoint, exactly as an
    uninterrupted run would have gone on. A job that never made a run starts again."""
    store = _store(request)
    job = store.get(job_id)
    if job.state not in RESUMABLE:
        raise JobStateError(
            f"job {job_id} is {job.state}: only an interrupted, failed or stopped job can be resumed"
        )
    if job.run is None:
        new = store.create(job.request, job.args, resumed_from=job.id)
    else:
        _check_resumable(request, job_id, job.run)
        args = {
            "resume": job.run,
            "evaluate": job.args.get("evaluate", True),
            "report": job.args.get("report", True),
        }
        new = store.create({"resume": job.run}, args, resumed_from=job.id, run=job.run)
    _pool(request).wake()
    response.headers["Location"] = f"/api/jobs/{new.id}"
    return _view(request, new)


MAX_EVENT_ID = 2**63 - 1  # SQLite's largest integer: event numbers are its rowids
EVENT_ID = re.compile(r"[0-9]{1,19}")
# As ``event_number`` reads it: blank (none), or one around spaces (and at most MAX_EVENT_ID).
EVENT_NUMBER_PATTERN = f"^{SPACE}*(?:{EVENT_ID.pattern})?{SPACE}*$"


def event_number(text: str | None, where: str) -> int | None:
    """``text`` as an event number (0 to 2^63 - 1); ``JobError`` (400) naming ``where`` when it
    is anything else: a sign, a fraction, other digits than 0-9, or too large."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not EVENT_ID.fullmatch(text) or int(text) > MAX_EVENT_ID:
        raise JobError(
            f"bad {where} {text[:40]!r}: an event number from 0 to {MAX_EVENT_ID} is expected"
        )
    return int(text)


def _first_seq(after: str | None, last_event_id: str | None) -> int:
    first = event_number(after, "after")
    if first is None:
        first = event_number(last_event_id, "Last-Event-ID header")
    return first or 0


async def _event_stream(
    store: JobStore, job_id: str, after: int, request: Request
) -> AsyncIterator[str]:
    idle = 0.0
    while True:
        # The state first: events written before it ended are then all in the read after it.
        state = store.state(job_id)
        events = store.events_after(job_id, after, EVENTS_BATCH)
        for seq, data in events:  # as the worker wrote them: its paths made public
            yield f"id: {seq}\ndata: {to_json(json.loads(data), public_text())}\n\n"
        if events:
            after, idle = events[-1][0], 0.0
            if len(events) == EVENTS_BATCH:
                continue  # more are waiting: no pause
        if state is None:  # gone from the store (removed by hand): nothing more will come
            return
        if state in ENDED:
            ended = _view(request, store.get(job_id))
            yield f"event: end\ndata: {to_json(ended, public_text())}\n\n"
            return
        if await request.is_disconnected() or request.app.state.shutting_down.is_set():
            return  # the client went away, or the server is stopping (the client may reconnect)
        await asyncio.sleep(EVENTS_POLL_S)
        idle += EVENTS_POLL_S
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keep-alive\n\n"


@router.get(
    "/{job_id:job_id}/events",
    summary="The job's events as Server-Sent Events, live until it ends",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "'id: <seq>' + 'data: <JSON event>' per event, then 'event: end' "
            "with the job",
        },
        **errors(404),
    },
)
async def job_events(
    job_id: JobId,
    request: Request,
    after: Annotated[
        str | None,
        Query(
            description=f"replay from after this event number (0 to {MAX_EVENT_ID})",
            **schema(pattern=EVENT_NUMBER_PATTERN),
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            description="set by EventSource when it reconnects",
            **schema(pattern=EVENT_NUMBER_PATTERN),
        ),
    ] = None,
) -> StreamingResponse:
    """Every stored event numbered above ``after`` (or the Last-Event-ID header), then new ones
    as the worker writes them; an ``end`` event carries the job once it has ended."""
    store = _store(request)
    check_job_id(job_id)
    store.get(job_id)  # 404 now, not inside a started stream
    first = _first_seq(after, last_event_id)
    return StreamingResponse(
        _event_stream(store, job_id, first, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
