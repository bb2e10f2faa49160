"""``sightline serve``: the web API (``sightline.serve``), started from the command line."""

from __future__ import annotations

import argparse

from sightline.cli.options import add_engine, positive_int


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, not {port}")
    return port


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the web UI and REST API: classify, browse runs, train and watch jobs",
        description="Serve the sightline web UI and REST API (described at /docs) for the runs in "
        "--runs-dir. It listens on 127.0.0.1 only, unless a token is given.",
        epilog="Examples:\n  sightline serve\n  sightline serve --port 8080 --data-dir ./photos\n"
        "  SIGHTLINE_TOKEN=$(openssl rand -hex 16) sightline serve --host 0.0.0.0\n\n"
        'Needs the server packages: pip install "sightline[serve]"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs a token)",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port to listen on (default 8000; 0 picks a free one)",
    )
    p.add_argument(
        "--runs-dir",
        default=None,
        help="the runs to serve (default: ./runs or $SIGHTLINE_RUNS_DIR)",
    )
    p.add_argument(
        "--data-dir",
        action="append",
        default=[],
        metavar="FOLDER",
        help="an image folder (one subfolder per class) to list under /api/datasets, or a folder "
        "of such folders, where the web UI can also make new ones (created if missing; repeatable)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="secret every API call must send, at least 16 characters, or 'generate' for a random "
        "one printed at start (default $SIGHTLINE_TOKEN, which keeps it out of the process list); "
        "required with a --host other than loopback",
    )
    p.add_argument(
        "--max-upload-mb",
        type=positive_int,
        default=20,
        help="largest request body in MB (default 20)",
    )
    p.add_argument(
        "--max-megapixels",
        type=positive_int,
        default=24,
        help="largest image in megapixels (default 24, at most 64): larger uploads are refused "
        "before they are decoded, which bounds the server's memory",
    )
    p.add_argument(
        "--run",
        dest="default_run",
        default=None,
        metavar="NAME",
        help="the run that classifies for clients that name none (default: the newest run at each "
        "request); every answer names the run it used",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    add_engine(p, "predictions run (inspection uses PyTorch)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="training jobs run at once (default 1; more are queued): each takes the CPU cores "
        "or GPU it is given",
    )
    p.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="server processes sharing the port (default 1): one process answers with about one CPU "
        "core at most, so e.g. 2 on a 2-core machine; each loads its own copy of the models",
    )
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from sightline.serve import require_server_packages

    require_server_packages()  # a clear `pip install "sightline[serve]"`, not an ImportError
    from sightline.serve import serve

    serve(
        args.host,
        args.port,
        runs_dir=args.runs_dir,
        data_dirs=args.data_dir,
        token=args.token,
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        max_pixels=args.max_megapixels * 1_000_000,
        device=args.device,
        max_workers=args.workers,
        engine=args.engine,
        processes=args.processes,
        default_run=args.default_run,
    )
    return 0
