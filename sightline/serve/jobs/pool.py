"""The server's side of training jobs: start workers for queued jobs, notice the ones that end
or are lost, and stop them when the server shuts down.

One scheduler thread in the web server's process. Each job trains in a worker process of its
own (``job_worker``, started with ``subprocess``: a fresh interpreter that imports only what
training needs, with nothing inherited from the server's threads or sockets, in a session of
its own so a Ctrl-C meant for the server reaches the job only as the server's cooperative
stop). At most ``max_workers`` jobs of a runs folder run at once, counted in the store, so two
servers on one runs folder share the limit; the others wait, oldest first.

Lost workers. A worker records its own end. One that could not (killed, out of memory, or the
server and it were stopped together) leaves its job "running"; such a job is marked
interrupted, resumable from its last checkpoint, as soon as its worker is known to be gone:
at once for this server's own children (their exit is seen), and for others' by their pid and
heartbeat, when a server starts and then every RECOVER_EVERY_S seconds.

One owner among a server's processes (``sightline serve --processes N``: ``exclusive``). Only
the process holding the runs folder's lock file (``LOCK_NAME``, ``fcntl.flock``, released by
the kernel when its holder dies) launches and recovers jobs; the others serve the job API (the
store is shared) and try the lock every ``poll_s`` seconds, so one of them takes over if the
owner goes away. A job launched by another process is never "ours", so recovery leaves it alone
while its worker is alive and heard from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import sightline
from sightline.errors import SightlineError
from sightline.serve.jobs.job import Job, JobStateError
from sightline.serve.jobs.store import JobStore

log = logging.getLogger("sightline.serve")

try:
    import fcntl
except (
    ImportError
):  # Windows: no flock; there every process schedules (the store still counts the limit)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".sightline-jobs.lock"  # in the runs folder: a dot name, never listed as a run
STALE_S = (
    30.0  # a heartbeat this old means a lost worker, whatever its pid (job_worker.HEARTBEAT_S: 2 s)
)
RECOVER_EVERY_S = 5.0
DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine). A pid reused by another process
    reads as alive: the heartbeat catches that case."""
    if os.name != "posix":
        return True  # no cheap check: the heartbeat decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def mark_run_interrupted(runs_dir: Path, run: str | None, reason: str) -> None:
    """A run whose worker died says "running" forever (and cannot be deleted): say
    interrupted, as after Ctrl-C; its last checkpoint resumes it exactly."""
    if run is None:
        return
    from sightline.fileio import read_json_inside
    from sightline.run import RunLayout, RunWriter, run_id_path

    with contextlib.suppress(SightlineError, OSError, ValueError):  # a link too: refused
        path = run_id_path(run, runs_dir)
        # as written: a listing already says interrupted
        status = read_json_inside(path, RunLayout(path).status)
        if status.get("status") == "running":
            RunWriter(path).mark(status="interrupted", error=reason, process=None)


class JobPool:
    def __init__(
        self,
        store: JobStore,
        runs_dir: Path,
        max_workers: int = 1,
        poll_s: float = 0.5,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
        exclusive: bool = False,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        self.store, self.runs_dir = store, Path(runs_dir)
        self.max_workers, self.poll_s, self.shutdown_timeout = max_workers, poll_s, shutdown_timeout
        self.exclusive = exclusive and fcntl is not None
        self._lock_fd: int | None = None  # the owner lock's file, while this process holds it
        self._procs: dict[str, subprocess.Popen] = {}  # job id → this server's worker
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # _procs: the scheduler thread and shutdown()
        self._last_recovery = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._closing.clear()
        if self.owns_jobs():
            self.recover()
        self._thread = threading.Thread(target=self._loop, name="sightline-jobs", daemon=True)
        self._thread.start()

    def owns_jobs(self) -> bool:
        """Whether this process launches and recovers the jobs: always, unless ``exclusive``;
        then while it holds the lock file, which it tries to take now if it does not."""
        if not self.exclusive or self._lock_fd is not None:
            return True
        self.runs_dir.mkdir(
            parents=True, exist_ok=True
        )  # as the store makes it: a new runs folder is fine
        fd = os.open(self.runs_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another process of the server owns them
            os.close(fd)
            return False
        self._lock_fd = fd
        self._last_recovery = 0.0  # a new owner recovers at once: the last one may have died
        log.info("process %s runs the training jobs of %s", os.getpid(), self.runs_dir)
        return True

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the file releases the lock
            self._lock_fd = None

    def wake(self) -> None:
        """A job was queued or stopped: look now, not at the next poll."""
        self._wake.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop launching; ask this server's running jobs to stop (they save and end
        interrupted, resumable); after ``timeout`` seconds terminate what is left. Queued jobs
        stay queued for the next start."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            procs = dict(self._procs)
        for job_id in procs:
            with contextlib.suppress(JobStateError):
                self.store.request_stop(job_id, by="server")
        deadline = time.monotonic() + timeout
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs.values():
            if proc.poll() is None:
                log.warning(
                    "job worker %s did not stop in %.0f s: terminating it", proc.pid, timeout
                )
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._reap()
        self._release()  # only now: a process that takes over must find these workers ended

    # ------------------------------------------------------------------ the scheduler
    def _loop(self) -> None:
        while not self._closing.is_set():
            try:
                self._tick()
            except Exception:  # a bad moment of the store: keep scheduling (the log has it)
                log.exception("job scheduler error")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _tick(self) -> None:
        if not self.owns_jobs():  # another process launches them; try again at the next poll
            return
        self._reap()
        if time.monotonic() - self._last_recovery >= RECOVER_EVERY_S:
            self.recover()
        while not self._closing.is_set():
            job = self.store.claim_next(self.max_workers)
            if job is None:
                return
            self._launch(job)

    def _launch(self, job: Job) -> None:
        env = dict(os.environ)
        # The worker imports sightline from where this server did, installed or not.
        package_root = str(Path(sightline.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sightline.serve.jobs.worker", str(self.runs_dir), job.id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                start_new_session=os.name == "posix",
            )
        except OSError as e:
            self.store.finish(job.id, "failed", error=f"could not start a worker process: {e}")
            return
        with self._lock:
            self._procs[job.id] = proc
        self.store.attach(job.id, proc.pid)

    def _reap(self) -> None:
        """This server's workers that exited: a job still active lost its worker."""
        with self._lock:
            ended = {job_id: p for job_id, p in self._procs.items() if p.poll() is not None}
            for job_id in ended:
                del self._procs[job_id]
        for job_id, proc in ended.items():
            self._lost(
                job_id,
                f"the worker process ended without recording the job's end (exit code {proc.returncode})",
            )

    def recover(self) -> list[str]:
        """Mark interrupted the active jobs whose worker is gone: not one of this server's,
        and its pid is dead or its heartbeat stale. Returns their ids."""
        self._last_recovery = time.monotonic()
        with self._lock:
            ours = set(self._procs)
        now = time.time()
        lost = []
        for job in self.store.active():
            if job.id in ours:
                continue
            stale = job.heartbeat is None or now - job.heartbeat > STALE_S
            if stale or (job.pid is not None and not pid_alive(job.pid)):
                log.warning("job %s: its worker (pid %s) is gone", job.id, job.pid)
                if self._lost(
                    job.id,
                    "the worker process is gone: the server or the worker stopped during "
                    "the job; resume the job to continue from its last checkpoint",
                ):
                    lost.append(job.id)
        return lost

    def _lost(self, job_id: str, reason: str) -> bool:
        # Conditional on the job still being active: a worker that recorded its end wins.
        if not self.store.finish(job_id, "interrupted", error=reason):
            return False
        log.warning("job %s: %s", job_id, reason)
        mark_run_interrupted(self.runs_dir, self.store.get(job_id).run, reason)
        return True

    def running(self) -> list[str]:
        with self._lock:
            return list(self._procs)
