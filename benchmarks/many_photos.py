"""A folder of 20,000 phone-style photos: what loading it for a backbone costs in time and peak
memory, and that fine-tuning starts within the machine's memory (issue 53).

sightline decodes each photo once, at the size the model uses (JPEG's DCT scaling where it can:
``images.open_image(max_side=)``), and keeps the decoded images in memory as uint8: at 224 px,
20,000 RGB images are 3.0 GB. This writes such a folder (4 classes; ``--side`` px JPEGs of
coloured shapes on gradients, with sensor noise, quality 85), then runs ``sightline train FOLDER --pretrained
--fine-tune --max-steps N`` in a child process and reports its wall time and peak resident
memory (``ru_maxrss``), beside the decoded images' own size.

    .venv/bin/python benchmarks/many_photos.py [--photos 20000] [--side 1280] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def write_photo(path: Path, k: int, side: int, cls: int) -> None:
    rng = np.random.default_rng(k)
    h = side * 3 // 4
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp).astype(np.uint8).repeat(side, axis=1)
    photo = Image.fromarray(img)
    draw = ImageDraw.Draw(photo)
    x, y = rng.integers(0, side // 2), rng.integers(0, h // 2)
    size = int(rng.integers(side // 5, side // 2))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    shape = [draw.ellipse, draw.rectangle, draw.polygon, draw.line][cls]
    if cls == 2:
        shape([(x, y + size), (x + size // 2, y), (x + size, y + size)], fill=colour)
    elif cls == 3:
        draw.line([(x, y), (x + size, y + size)], fill=colour, width=max(4, size // 8))
    else:
        shape([x, y, x + size, y + size], fill=colour)
    # Sensor noise and texture, so the files are as large and slow to decode as photos'.
    noisy = np.asarray(photo, dtype=np.int16) + rng.integers(-24, 25, (h, side, 3), dtype=np.int16)
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=85)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=20_000)
    p.add_argument("--side", type=int, default=1280)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--keep", type=Path, help="write (or reuse) the folder here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "photos"
        start = time.perf_counter()
        jobs = []
        for k in range(args.photos):
            folder = root / f"class{k % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"IMG_{k:05d}.jpg"
            if not path.exists():
                jobs.append((path, k))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda j: write_photo(j[0], j[1], args.side, j[1] % 4), jobs))
        size_gb = sum(f.stat().st_size for f in root.rglob("*.jpg")) / 1e9
        print(f"{args.photos:,} photos of {args.side} px: {size_gb:.1f} GB on disk, "
              f"written in {time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
        command = [sys.executable, "-m", "sightline", "train", str(root), "--pretrained",
                   "--model", "efficientnet-lite0", "--fine-tune", "--max-steps", str(args.steps),
                   "--runs-dir", str(Path(tmp) / "runs"), "--no-report", "--no-eval",
                   "--progress", "quiet"]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB on Linux
        decoded_gb = args.photos * 3 * 224 * 224 / 1e9
        print(done.stdout[-1500:], done.stderr[-1500:])
        print(f"train --fine-tune, {args.steps} steps: exit {done.returncode}, {wall:.0f} s, "
              f"peak memory {peak_gb:.1f} GB (the decoded images: {decoded_gb:.1f} GB)")  # fmt: skip


if __name__ == "__main__":
    main()
