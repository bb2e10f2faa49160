"""``serve()``: run the app under uvicorn, on 127.0.0.1 unless a token protects it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import quote

from sightline.errors import ConfigError
from sightline.serve.app import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_MODEL_CACHE_SIZE,
    create_app,
)
from sightline.serve.core.guards import GENERATE_TOKEN, check_token, is_loopback
from sightline.serve.sockets import bind_socket, run_app, shared_port

TOKEN_ENV = "SIGHTLINE_TOKEN"


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    runs_dir: str | os.PathLike | None = None,
    data_dirs: Iterable[str | os.PathLike] = (),
    token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
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
    token = check_token(token or os.environ.get(TOKEN_ENV) or None)  # "generate": made here
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"refusing to serve on {host}: other machines could reach it; give a token "
            f"(--token {GENERATE_TOKEN}, --token or ${TOKEN_ENV}) that every API call must then send, "
            "or keep 127.0.0.1"
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
        max_pixels=max_pixels,
        model_cache_size=model_cache_size,
        device=device,
        max_workers=max_workers,
        engine=engine,
        default_run=default_run,
    )
    app = create_app(
        **options
    )  # with several processes, each makes its own: this one checks the options first
    sock, shared = shared_port(host, port) if processes > 1 else (bind_socket(host, port), None)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    runs = app.state.sightline.runs_dir.resolve()
    print(
        f"sightline serving the runs in {runs} at {url}/  (API docs: {url}/docs; Ctrl-C stops)",
        flush=True,
    )
    if engine not in ("auto", "torch"):
        fmt = "" if engine == "onnx" else f" --format {engine}"
        print(
            f"Predictions run through each run's {engine} export (`sightline export RUN{fmt}` makes it); "
            "inspection uses PyTorch.",
            flush=True,
        )
    elif engine == "auto" and app.state.sightline.models.exports_may_run:
        print(
            "A run with current exports (`sightline export RUN --format onnx openvino litert`) predicts "
            "through the fastest of them and PyTorch here (timed once; the log says which), the others "
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
