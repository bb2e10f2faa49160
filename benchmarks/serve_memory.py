"""The memory a server process takes for the largest images it accepts, and gives back.

Starts ``sightline serve`` (one process, a small mlp run trained on generated images), then
sends rounds of ``--clients`` concurrent ``POST /api/predict`` requests, each one image just
under the server's pixel limit (24 MP by default: a 4,898 x 4,898 PNG of noise and gradients,
a few MB on the wire), and a JPEG of the same size. Prints the server's resident memory
(VmRSS) before, its peak (VmHWM) and what it holds after each round: the peak is the
worst case a process reaches; "after" must not grow from round to round. No assertions:

    .venv/bin/python benchmarks/serve_memory.py [--clients 8] [--rounds 4] [--megapixels 24]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import HEADERS, start_server, stop, wait_healthy  # noqa: E402

MB = 1024 * 1024


def status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def large_image(megapixels: float, fmt: str) -> bytes:
    side = int((megapixels * 1e6) ** 0.5) - 2
    rng = np.random.default_rng(0)
    y = np.linspace(0, 255, side, dtype=np.float32)[:, None]
    noise = 40 if fmt == "JPEG" else 3  # a PNG of noise would be over the 20 MB upload limit
    img = (y + rng.integers(0, noise, (side, side), dtype=np.uint8)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).convert("RGB").save(
        buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {})
    )
    return buf.getvalue()


def train_run(runs: Path) -> None:
    """A tiny RGB run (32 px, an mlp): the model's size is not what is measured here."""
    import torch

    import sightline
    from sightline.data import Dataset, ImageSet, Preprocess
    from sightline.data.dataset import channel_stats

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (256, 3, 32, 32), dtype=torch.uint8, generator=g)
    train = ImageSet(images, torch.arange(256) % 2)
    mean, std = channel_stats(images)
    pre = Preprocess(channels=3, size=(32, 32), mean=mean, std=std)
    data = Dataset("noise", ["a", "b"], train, None, ImageSet(images[:64], train.labels[:64]), pre)
    sightline.fit("mlp", data, runs_dir=runs, name="mem", epochs=1, progress="quiet")


def send(job: tuple[str, str, bytes]) -> int:
    url, fmt, body = job
    files = {"files": (f"big.{fmt.lower()}", body)}
    return httpx.post(f"{url}/api/predict", files=files, headers=HEADERS, timeout=300).status_code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--megapixels", type=float, default=23.9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        train_run(runs)
        proc, url = start_server(runs, 0, Path(tmp) / "server.log")
        try:
            wait_healthy(url)
            pid = proc.pid
            with httpx.Client(timeout=120) as c:  # one small prediction loads the model
                c.post(
                    f"{url}/api/predict",
                    files={"files": ("s.png", large_image(0.01, "PNG"))},
                    headers=HEADERS,
                )
            print(
                f"server pid {pid}: {status_mb(pid, 'VmRSS'):.0f} MB resident with the model loaded"
            )
            for fmt in ("PNG", "JPEG"):
                body = large_image(args.megapixels, fmt)
                print(
                    f"{fmt}: {args.megapixels:g} MP, {len(body) / MB:.1f} MB a file, {args.clients} at once"
                )
                for r in range(args.rounds):
                    started = time.perf_counter()
                    with ThreadPoolExecutor(args.clients) as pool:
                        codes = list(pool.map(send, [(url, fmt, body)] * args.clients))
                    seconds = time.perf_counter() - started
                    time.sleep(1.0)
                    print(
                        f"  round {r + 1}: {codes.count(200)}/{len(codes)} answered 200 in {seconds:.1f} s; "
                        f"peak {status_mb(pid, 'VmHWM'):.0f} MB, after {status_mb(pid, 'VmRSS'):.0f} MB"
                    )
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
