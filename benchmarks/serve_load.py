"""Throughput and latency of ``POST /api/predict`` under concurrent clients.

Starts the real server (``sightline serve`` in a subprocess: uvicorn on 127.0.0.1, a free
port) on a run, waits for /api/health, warms up, then lets ``--clients`` concurrent clients
send predictions for ``--seconds`` (or ``--requests`` in all): ``--batch-files`` real test
images per request, PNG files, rotating through ``--images`` of them. Each client is a thread
with its own ``httpx.Client`` (one keep-alive connection; ``--client asyncio``: tasks with an
``httpx.AsyncClient`` each). The request bodies are encoded once, before the clock starts, so
the client spends its CPU on HTTP only; it still shares this machine's cores with the server,
so the CPU time each side used is printed too. Prints requests/s, predictions/s, p50/p90/p99
latency, status codes, errors and the target; ``--json`` also writes them.

By default it first trains a small run (``--model``, ``--steps`` optimizer steps on
Fashion-MNIST: set $SIGHTLINE_DATA_MIRROR, e.g. /work/shared/datasets, on a machine without
internet) into a temporary folder; ``--run`` serves an existing one. No assertions:

    .venv/bin/python benchmarks/serve_load.py [--clients 16] [--seconds 20] [--model mlp] [--processes 2]
    .venv/bin/python benchmarks/serve_load.py --run runs/fashion-mnist-airnet-... --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TARGET_RATE, TARGET_CLIENTS = 200.0, 16
HEADERS = {"X-Sightline-Request": "1"}
BOUNDARY = "sightline-serve-load-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
TICKS = os.sysconf("SC_CLK_TCK")


def prepare_run(args: argparse.Namespace, scratch: Path) -> tuple[Path, str, str]:
    """(runs folder, run name, dataset of the test images): ``--run``, or a run trained now."""
    import sightline

    if args.run:
        path = Path(args.run)
        if not path.is_dir():  # a run name in --runs-dir (default ./runs or $SIGHTLINE_RUNS_DIR)
            path = Path(args.runs_dir or os.environ.get("SIGHTLINE_RUNS_DIR") or "runs") / args.run
        dataset = sightline.load_run(path).config.get("data", {}).get("name_or_path")
        return (
            path.parent,
            path.name,
            dataset if dataset in sightline.list_datasets() else "fashion-mnist",
        )
    started = time.perf_counter()
    run = sightline.fit(
        args.model,
        "fashion-mnist",
        runs_dir=scratch,
        max_steps=args.steps,
        epochs=1,
        progress="quiet",
    )
    print(f"trained {run.name}: {args.steps} steps in {time.perf_counter() - started:.1f} s")
    return scratch, run.name, "fashion-mnist"


def png_images(dataset: str, n: int) -> list[bytes]:
    """The first ``n`` test images of ``dataset``, each encoded as a PNG file."""
    from PIL import Image

    import sightline

    out = []
    for x in (
        sightline.load_dataset(dataset, val_split=0, progress=False)
        .test.images[:n]
        .permute(0, 2, 3, 1)
        .numpy()
    ):
        buf = io.BytesIO()
        Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def photo_images(dataset: str, n: int) -> list[bytes]:
    """Catalog-style photos (JPEG) of the first ``n`` test items: tests/photo_generator.py."""
    import sightline

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from photo_generator import photos

    items = sightline.load_dataset(dataset, progress=False).test.images[:n, 0].numpy()
    return [p.data for p in photos(items, seed=0)]


def request_bodies(images: list[bytes], run: str, batch: int) -> list[bytes]:
    """One multipart/form-data body per starting image: ``batch`` images from there, the run, k=3."""

    def part(headers: str, data: bytes) -> bytes:
        return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"

    disposition = "Content-Disposition: form-data; name="
    fields = part(f'{disposition}"run"', run.encode()) + part(f'{disposition}"k"', b"3")
    bodies = []
    for i in range(len(images)):
        files = [
            part(
                f'{disposition}"files"; filename="{(i + j) % len(images)}.png"\r\nContent-Type: image/png',
                images[(i + j) % len(images)],
            )
            for j in range(batch)
        ]
        bodies.append(b"".join(files) + fields + f"--{BOUNDARY}--\r\n".encode())
    return bodies


def start_server(
    runs_dir: Path, port: int, log_path: Path, processes: int = 1, engine: str | None = None
) -> tuple[subprocess.Popen, str]:
    """``sightline serve`` in a subprocess, and its URL from its first line (port 0: a free one)."""
    script = Path(sys.executable).with_name("sightline")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "sightline"]
    more = (
        ["--processes", str(processes)] if processes > 1 else []
    )  # as before for one: older servers have no option
    more += ["--engine", engine] if engine else []
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*cmd, "serve", "--port", str(port), "--runs-dir", str(runs_dir), *more],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r" at (http://\S+?)/ ", log_path.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"the server did not start:\n{log_path.read_text(errors='replace')[-2000:]}")


def start_baseline(log_path: Path, processes: int = 1) -> tuple[subprocess.Popen, str]:
    """benchmarks/serve_baseline.py under uvicorn on a free port (access log on, and as many
    processes, as ``sightline serve``)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    here = Path(__file__).resolve().parent
    cmd = [sys.executable, "-m", "uvicorn", "serve_baseline:app", "--app-dir", str(here),
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    cmd += ["--workers", str(processes)] if processes > 1 else []
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # uvicorn shuts down gracefully on SIGTERM; killed if it lingers
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            r = httpx.get(f"{url}/api/health", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server processes of ``--processes``), from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # a process that just ended
            continue
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += [child for child, parent in parents.items() if parent == tree[-1]]
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (all their threads), from /proc."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def thread_count(pid: int) -> int:
    """Threads of a process and its descendants."""
    total = 0
    for p in process_tree(pid):
        try:
            found = re.search(r"Threads:\s+(\d+)", Path(f"/proc/{p}/status").read_text())
        except OSError:
            continue
        total += int(found.group(1)) if found else 0
    return total


class Tally:
    """What the clients saw: latencies, status codes, error messages."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.lock = threading.Lock()

    def record(self, started: float, outcome: httpx.Response | Exception) -> None:
        latency: float | None = time.perf_counter() - started
        if isinstance(outcome, httpx.Response):
            status, error = str(outcome.status_code), None
            try:
                body = outcome.json()
            except ValueError:
                body = {"error": outcome.text[:200]}
            if outcome.status_code != 200 or len(body.get("results", [])) != self.batch:
                error = f"{outcome.status_code}: {str(body.get('error'))[:200]}"
        else:  # a timeout or a connection error: no answer, so no latency
            status, error, latency = (
                type(outcome).__name__,
                f"{type(outcome).__name__}: {str(outcome)[:200]}",
                None,
            )
        with self.lock:
            self.statuses[status] += 1
            if latency is not None:
                self.latencies.append(latency)
            if error is not None:
                self.errors[error] += 1

    def summary(self, elapsed: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        done, bad = sum(self.statuses.values()), sum(self.errors.values())
        return {
            "seconds": elapsed,
            "requests": done,
            "requests_per_s": done / elapsed,
            "predictions_per_s": (done - bad) * self.batch / elapsed,
            **{
                f"p{q}_ms": 1000 * lat[min(len(lat) - 1, q * len(lat) // 100)]
                for q in (50, 90, 99)
                if lat
            },
            "statuses": dict(self.statuses),
            "errors": bad,
            "error_messages": [m for m, _ in self.errors.most_common(5)],
        }


def run_load(
    kind: str,
    url: str,
    bodies: list[bytes],
    batch: int,
    clients: int,
    seconds: float,
    requests: int | None,
    timeout: float,
) -> dict[str, Any]:
    """``clients`` concurrent clients sending predictions until ``seconds`` pass or ``requests``
    are sent (a request in flight then still finishes, within ``timeout``)."""
    tally = Tally(batch)
    deadline = time.perf_counter() + seconds
    tickets = (
        iter(range(requests)) if requests is not None else iter(int, 1)
    )  # iter(int, 1): endless

    def bodies_of(i: int) -> Iterator[bytes]:
        n = i * len(bodies) // clients
        while time.perf_counter() < deadline and next(tickets, None) is not None:
            n += 1
            yield bodies[n % len(bodies)]

    def thread_client(i: int) -> None:
        with httpx.Client(base_url=url, headers=HEADERS, timeout=timeout) as http:
            for body in bodies_of(i):
                t0 = time.perf_counter()
                try:
                    tally.record(t0, http.post("/api/predict", content=body, headers=MULTIPART))
                except httpx.HTTPError as e:
                    tally.record(t0, e)

    async def task_client(i: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=timeout) as http:
            for body in bodies_of(i):
                t0 = time.perf_counter()
                try:
                    tally.record(
                        t0, await http.post("/api/predict", content=body, headers=MULTIPART)
                    )
                except httpx.HTTPError as e:
                    tally.record(t0, e)

    async def all_tasks() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(task_client(i) for i in range(clients))), seconds + timeout + 10
        )

    started = time.perf_counter()
    if kind == "asyncio":
        asyncio.run(all_tasks())
    else:
        threads = [
            threading.Thread(target=thread_client, args=(i,), daemon=True) for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline + timeout + 10 - time.perf_counter()))
    return tally.summary(time.perf_counter() - started)


def measure(
    args: argparse.Namespace,
    runs_dir: Path,
    run: str,
    images: list[bytes],
    scratch: Path,
    baseline: bool = False,
) -> dict[str, Any]:
    """Start the server (sightline's, or the baseline), warm it up, load it; the server is
    stopped whatever happens."""
    proc, url = (
        start_baseline(scratch / "baseline.log", args.processes)
        if baseline
        else start_server(runs_dir, args.port, scratch / "server.log", args.processes, args.engine)
    )
    try:
        health = wait_healthy(url)
        bodies = request_bodies(images, run, args.batch_files)
        first = httpx.post(
            f"{url}/api/predict", content=bodies[0], headers={**HEADERS, **MULTIPART}, timeout=120
        )
        if first.status_code != 200:  # the first prediction loads the model
            raise RuntimeError(
                f"the first prediction failed: {first.status_code} {first.text[:500]}"
            )
        run_load(
            args.client, url, bodies, args.batch_files, args.clients, 1.0, None, args.timeout
        )  # warm-up
        load_avg = Path("/proc/loadavg").read_text().split()[:3]
        server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
        r = run_load(
            args.client,
            url,
            bodies,
            args.batch_files,
            args.clients,
            args.seconds,
            args.requests,
            args.timeout,
        )
        server_cpu, client_cpu = (
            cpu_seconds(proc.pid) - server_cpu,
            time.process_time() - client_cpu,
        )
        threads = thread_count(proc.pid)
    finally:
        stop(proc)
    n = max(r["requests"], 1)
    r.update(
        load_average_before=" ".join(load_avg),
        server_version=health.get("version"),
        server_threads=threads,
        server_cpu_s=server_cpu,
        client_cpu_s=client_cpu,
        server_cpu_ms_per_request=1000 * server_cpu / n,
        client_cpu_ms_per_request=1000 * client_cpu / n,
    )
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument(
        "--clients", type=int, default=TARGET_CLIENTS, help="concurrent clients (default 16)"
    )
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="length of the measurement (default 20)"
    )
    ap.add_argument(
        "--requests", type=int, help="stop after this many requests in all (default: no limit)"
    )
    ap.add_argument("--batch-files", type=int, default=1, help="images per request (default 1)")
    ap.add_argument(
        "--client",
        choices=("threads", "asyncio"),
        default="threads",
        help="client kind (default threads)",
    )
    ap.add_argument(
        "--model",
        choices=("fastcnn", "mlp"),
        default="fastcnn",
        help="model to train (default fastcnn)",
    )
    ap.add_argument(
        "--steps", type=int, default=60, help="optimizer steps of that training (default 60)"
    )
    ap.add_argument(
        "--run", help="serve this run (a folder, or a name in --runs-dir) instead of training one"
    )
    ap.add_argument(
        "--runs-dir", help="where --run is named (default ./runs or $SIGHTLINE_RUNS_DIR)"
    )
    ap.add_argument("--port", type=int, default=0, help="port to serve on (default 0: a free one)")
    ap.add_argument(
        "--processes", type=int, default=1, help="sightline serve --processes (default 1)"
    )
    ap.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        help="sightline serve --engine (default: the server's own, auto; onnx needs an exported --run)",
    )
    ap.add_argument(
        "--images", type=int, default=300, help="distinct test images sent in turn (default 300)"
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds per request before it counts as an error",
    )
    ap.add_argument(
        "--json", type=Path, help="also write the settings and results to this JSON file"
    )
    ap.add_argument(
        "--photos",
        action="store_true",
        help="send catalog-style photos (JPEG, up to 4,000 px: tests/photo_generator.py) of the "
        "test items instead of the 28 px PNGs",
    )
    ap.add_argument(
        "--versus-baseline",
        action="store_true",
        help="also load benchmarks/serve_baseline.py (parse and decode only) with the same "
        "requests, and print sightline's time per request over the baseline's",
    )
    args = ap.parse_args()
    if (
        min(
            args.clients,
            args.batch_files,
            args.images,
            args.steps,
            args.processes,
            args.requests or 1,
        )
        < 1
        or args.seconds <= 0
    ):
        ap.error(
            "--clients, --batch-files, --images, --steps, --processes and --requests must be at least 1, "
            "--seconds > 0"
        )

    import torch

    scratch = Path(tempfile.mkdtemp(prefix="sightline-serve-load-"))
    try:
        runs_dir, run, dataset = prepare_run(args, scratch)
        images = (
            photo_images(dataset, args.images) if args.photos else png_images(dataset, args.images)
        )
        r = measure(args, runs_dir, run, images, scratch)
        base = (
            measure(args, runs_dir, run, images, scratch, baseline=True)
            if args.versus_baseline
            else None
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    settings = {
        "sightline": r["server_version"],
        "run": run,
        "model": "(the run's)" if args.run else args.model,
        "cpus": os.cpu_count(),
        "torch threads (a fresh process)": torch.get_num_threads(),
        "server": f"sightline serve defaults but {args.processes} process(es), engine {args.engine or 'auto'}: asyncio loop, access log on, "
        "device auto",
        "request path": "async /api/predict: images up to 256x256 px decoded and framed in the "
        "batcher's thread, larger ones on one thread per core",
        "server threads at the end (all its processes)": r["server_threads"],
    }
    print("server: " + "; ".join(f"{k} {v}" for k, v in settings.items()))
    print(
        f"load: {args.clients} clients ({args.client}) x {args.batch_files} image(s) per request for "
        f"{r['seconds']:.1f} s; load average before: {r['load_average_before']}"
    )
    nan = float("nan")
    print(
        f"requests/s {r['requests_per_s']:.1f}   predictions/s {r['predictions_per_s']:.1f}   latency ms: p50 "
        f"{r.get('p50_ms', nan):.1f}  p90 {r.get('p90_ms', nan):.1f}  p99 {r.get('p99_ms', nan):.1f}"
    )
    print(f"requests {r['requests']}, status codes {r['statuses']}, errors {r['errors']}")
    for message in r["error_messages"]:
        print(f"  error: {message}")
    print(
        f"CPU: server {r['server_cpu_ms_per_request']:.2f} ms/request ({r['server_cpu_s'] / r['seconds']:.2f} cores), "
        f"client {r['client_cpu_ms_per_request']:.2f} ms/request ({r['client_cpu_s'] / r['seconds']:.2f} cores) "
        f"of {os.cpu_count()}: the client runs on the same cores as the server"
    )
    if base is not None:
        ratio = base["requests_per_s"] / max(r["requests_per_s"], 1e-9)
        print(
            f"baseline (parse + decode only, same requests): requests/s {base['requests_per_s']:.1f}, "
            f"p50 {base.get('p50_ms', nan):.1f} ms, errors {base['errors']}, server CPU "
            f"{base['server_cpu_ms_per_request']:.2f} ms/request; sightline takes {ratio:.2f}x the "
            f"baseline's time per request (target <= 1.5x)"
        )
    passed = (
        r["predictions_per_s"] >= TARGET_RATE
        and r["errors"] == 0
        and args.clients == TARGET_CLIENTS
    )
    print(
        f"target: >= {TARGET_RATE:.0f} predictions/s with {TARGET_CLIENTS} clients and 0 errors: "
        f"{'PASS' if passed else 'MISS'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": settings,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "results": r,
                    "baseline": base,
                    "target_met": passed,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
