"""The server's listening sockets and uvicorn's loop on them: what ``serve`` (one process) and
``serve_processes`` (several sharing the port) both use."""

from __future__ import annotations

import logging
import re
import socket
import sys
from typing import Any

from sightline.errors import ConfigError

GRACEFUL_SHUTDOWN_S = 5  # seconds open requests (a slow upload) get to finish after Ctrl-C
_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&#\s]*", re.IGNORECASE)


class RedactToken(logging.Filter):
    """The access log never holds the token: the first visit's `/?token=...` is logged as
    `/?token=[redacted]` (a log file is read by more people than the server's owner)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _TOKEN_IN_QUERY.sub(r"\1[redacted]", record.msg)
        return True


def redact_tokens_in_access_log() -> None:
    """Put ``RedactToken`` on uvicorn's access logger (once; after uvicorn configured it)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactToken) for f in access.filters):
        access.addFilter(RedactToken())


def bind_socket(
    host: str, port: int, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
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


def shared_port(host: str, port: int) -> tuple[socket.socket, tuple[str, int] | socket.socket]:
    """(the socket that holds the port, what each of several server processes listens on).

    On Linux each process listens on a socket of its own (SO_REUSEPORT) and the kernel deals the
    connections out among them. One socket shared by all would be unfair: a keep-alive client
    stays with the process that accepted it, and asyncio accepts every waiting connection at
    once, so one process could get all 16 clients of a burst while the other idles."""
    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        sock = bind_socket(host, port)
        return sock, sock
    probe = bind_socket(
        host, port, listen=False
    )  # a taken port is refused here (port 0: a free one is picked)
    port = probe.getsockname()[1]
    probe.close()
    # Held, not listening, until the server ends: the port stays ours while processes come and go.
    return bind_socket(host, port, reuse_port=True, listen=False), (host, port)


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
    redact_tokens_in_access_log()  # after the Config: it (re)configures uvicorn's loggers
    server.run(sockets=[sock])
