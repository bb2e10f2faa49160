"""``serve()``: run the app under uvicorn, on 127.0.0.1 unless a token protects it."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from sightline.errors import ConfigError
from sightline.serve.app import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MODEL_CACHE_SIZE, create_app
from sightline.serve.guards import is_loopback

TOKEN_ENV = "SIGHTLINE_TOKEN"
GRACEFUL_SHUTDOWN_S = 5  # seconds open requests (a slow upload) get to finish after Ctrl-C


def _bind(host: str, port: int, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket, bound here so that a taken port is a one-line error (and port 0
    gets a free port whose number we can print) before uvicorn starts. ``reuse_port``: one of
    several sockets on the port (SO_REUSEPORT), among which the kernel shares the connections."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as e:
        raise ConfigError(f"cannot serve on {host!r}: {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot serve on {host}:{port}: {e.strerror or e} (another server? try --port)"
        ) from None
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _shared_port(host: str, port: int) -> tuple[socket.socket, tuple[str, int] | socket.socket]:
    """(the socket that holds the port, what each of several server processes listens on).

    On Linux each process listens on a socket of its own (SO_REUSEPORT) and the kernel deals the
    connections out among them. One socket shared by all would be unfair: a keep-alive client
    stays with the process that accepted it, and asyncio accepts every waiting connection at
    once, so one process could get all 16 clients of a burst while the other idles."""
    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        sock = _bind(host, port)
        return sock, sock
    probe = _bind(
        host, port, listen=False
    )  # a taken port is refused here (port 0: a free one is picked)
    port = probe.getsockname()[1]
    probe.close()
    # Held, not listening, until the server ends: the port stays ours while processes come and go.
    return _bind(host, port, reuse_port=True, listen=False), (host, port)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    runs_dir: str | os.PathLike | None = None,
    data_dirs: Iterable[str | os.PathLike] = (),
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    model_cache_size: int = DEFAULT_MODEL_CACHE_SIZE,
    device: str = "auto",
    max_workers: int = 1,
    log_level: str = "info",
    engine: str = "auto",
    processes: int = 1,
    default_run: str | None = None,
) -> None:
    """Serve the web API until Ctrl-C; prints its URL first.

    Binding to anything but a loopback address makes the runs reachable from the network, so
    it needs a token (``token`` or $SIGHTLINE_TOKEN), which every API call must then send.
    ``engine``: "auto", "torch" or "onnx", what predictions run on (see ``create_app``).
    ``processes``: server processes sharing the port (``sightline.serve.processes``): one uses
    about one core whatever the machine has; each holds its own copies of the models."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on {host}: other machines could reach it; give a token "
            f"(--token or ${TOKEN_ENV}) that every API call must then send, or keep 127.0.0.1"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"port must be 0..65535, not {port}")
    if processes < 1:
        raise ConfigError(f"processes must be at least 1, not {processes}")
    options = dict(
        runs_dir=runs_dir,
        data_dirs=list(data_dirs),
        token=token,
        max_upload_bytes=max_upload_bytes,
        model_cache_size=model_cache_size,
        device=device,
        max_workers=max_workers,
        engine=engine,
        default_run=default_run,
    )
    app = create_app(
        **options
    )  # with several processes, each makes its own: this one checks the options first
    sock, shared = _shared_port(host, port) if processes > 1 else (_bind(host, port), None)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    runs = app.state.sightline.runs_dir.resolve()
    print(
        f"sightline serving the runs in {runs} at {url}/  (API docs: {url}/docs; Ctrl-C stops)",
        flush=True,
    )
    if engine == "onnx":
        print(
            "Predictions run through each run's export/best.onnx in ONNX Runtime (`sightline export RUN` makes it); "
            "inspection uses PyTorch.",
            flush=True,
        )
    elif engine == "auto" and "onnx" in app.state.sightline.models._backends:
        print(
            "Runs with a current ONNX export (`sightline export RUN`) predict through ONNX Runtime, the others "
            "in PyTorch (--engine torch: always PyTorch).",
            flush=True,
        )
    if token:
        # The browser keeps the token as a cookie after this first visit; scripts send a header.
        print(
            f"Open {url}/?token={quote(token, safe='')} in a browser; API calls need the header "
            "'Authorization: Bearer <token>'.",
            flush=True,
        )
    try:
        if processes == 1:
            run_app(app, sock, log_level)
        else:
            from sightline.serve.processes import serve_processes

            print(
                f"{processes} server processes share the port; one of them runs the training jobs.",
                flush=True,
            )
            serve_processes(processes, options, shared, log_level)
    finally:
        sock.close()


def run_app(app: Any, sock: socket.socket, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn on the bound ``sock`` until Ctrl-C or SIGTERM."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # An open event stream (/api/jobs/{id}/events) lasts as long as its job, and uvicorn
            # waits for open requests before the lifespan's shutdown (which stops the jobs): the
            # streams end now (an EventSource reconnects with Last-Event-ID to the next server).
            app.state.shutting_down.set()
            super().handle_exit(sig, frame)

    server = Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    server.run(sockets=[sock])
