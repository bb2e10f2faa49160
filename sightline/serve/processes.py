"""``sightline serve --processes N``: N server processes sharing one port.

One server process uses at most about one core, however many it has: decoding and framing
uploads, FastAPI and uvicorn hold the GIL (benchmarks/serve_load.py measured ~1.15 cores of 2).
N processes, each a whole app with its own model cache and batcher, share the port: on Linux
each listens on a socket of its own (SO_REUSEPORT) and the kernel deals the connections out;
elsewhere they share the parent's listening socket. The parent only watches:
it starts the processes, starts again one that dies (unless it died at once, which would only
repeat: then the server stops), and on Ctrl-C or SIGTERM asks each to stop, as uvicorn's own
``--workers`` does. Exactly one of the processes launches training jobs (``job_pool``: the lock
file in the runs folder decides); each answers the job API from the shared store.

The processes are started with "spawn": fresh interpreters, which inherit no threads, locks or
OpenMP state from the parent.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

Listen = socket.socket | tuple[str, int]

MIN_UPTIME_S = (
    10.0  # a process that dies sooner is failing to start: starting it again would only repeat
)
STOP_TIMEOUT_S = (
    40.0  # uvicorn's graceful shutdown, then the job pool's (running jobs save and stop)
)


def default_threads(processes: int) -> int:
    """PyTorch threads per server process: the cores shared out, so N processes of 2 threads
    each do not contend for fewer cores than that."""
    return max(1, (os.cpu_count() or 1) // processes)


def serve_processes(
    processes: int,
    options: dict[str, Any],
    listen: Listen,
    log_level: str = "info",
    threads: int | None = None,
) -> None:
    """Run ``processes`` server processes of ``create_app(**options)`` until SIGINT/SIGTERM,
    then stop them. ``listen``: a listening socket they share, or (host, port) for each to
    bind with SO_REUSEPORT. ``threads``: PyTorch threads each (default: the cores shared out)."""
    threads = threads or default_threads(processes)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(index: int) -> tuple[Any, float]:
        proc = context.Process(
            target=_worker,
            args=(options, listen, log_level, threads),
            daemon=False,
            name=f"sightline-serve-{index + 1}",
        )
        proc.start()
        return proc, time.monotonic()

    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    running: list[tuple[Any, float]] = []
    try:
        running = [start(i) for i in range(processes)]
        while not stop.wait(0.5):
            for i, (proc, started) in enumerate(running):
                if proc.exitcode is None:
                    continue
                if time.monotonic() - started < MIN_UPTIME_S:
                    print(
                        f"sightline: server process {proc.pid} exited at start (code {proc.exitcode}): stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    stop.set()
                    break
                print(
                    f"sightline: server process {proc.pid} ended (code {proc.exitcode}): starting another",
                    file=sys.stderr,
                    flush=True,
                )
                running[i] = start(i)
    finally:
        _stop_all([proc for proc, _ in running])
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(procs: list[Any]) -> None:
    """SIGTERM each (uvicorn's graceful shutdown, then the app's: batchers, jobs), then wait;
    kill what is left after ``STOP_TIMEOUT_S``."""
    for proc in procs:
        if proc.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.exitcode is None:
            proc.kill()
            proc.join()


def _worker(options: dict[str, Any], listen: Listen, log_level: str, threads: int) -> None:
    """One server process: its own app (jobs launched only by the lock's holder) on the port."""
    import torch

    torch.set_num_threads(threads)  # this process only: job workers are processes of their own
    from sightline.serve.app import create_app
    from sightline.serve.sockets import bind_socket, run_app

    sock = bind_socket(*listen, reuse_port=True) if isinstance(listen, tuple) else listen
    try:
        run_app(create_app(**options, exclusive_jobs=True), sock, log_level)
    finally:
        sock.close()
