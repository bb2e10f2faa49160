"""One process or several: training throughput of ``sightline train`` alone and under torchrun.

Each configuration is its own ``sightline train`` process (or torchrun job), one after another
on the same machine, training the same model on the same data for the same optimizer steps
with the same global batch; the figures are the training images per second that the run's
``metrics.csv`` records for its epoch (all ranks' images, data loading and start-up not counted)
and the wall time of the whole command. The first configuration is the baseline of the ratios.

    SIGHTLINE_DATA_MIRROR=../shared/datasets .venv/bin/python benchmarks/distributed.py
    .venv/bin/python benchmarks/distributed.py --configs 1x2,2x1,1x1 --steps 300 --batch-size 128
    .venv/bin/python benchmarks/distributed.py --gpus 1,2,4          # on a machine with GPUs

A configuration PxT is P processes of T threads each (CPU); on GPUs, P processes of one GPU.
No assertions: numbers to read.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(
    procs: int, threads: int, args: argparse.Namespace, runs: Path, gpu: bool
) -> dict[str, float | str]:
    name = f"{procs}x{threads}" + ("-gpu" if gpu else "")
    cmd = [
        sys.executable,
        "-m",
        "sightline",
        "train",
        args.dataset,
        "--model",
        args.model,
        "--max-steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--no-eval",
        "--progress",
        "quiet",
        "--runs-dir",
        str(runs),
        "--name",
        name,
        "--device",
        "cuda" if gpu else "cpu",
    ]
    if args.sync_bn is not None:
        cmd.append("--sync-bn" if args.sync_bn else "--no-sync-bn")
    if procs > 1:
        cmd += ["--gpus" if gpu else "--nproc", str(procs)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    rows = list(csv.DictReader((runs / name / "metrics.csv").read_text().splitlines()))
    config = json.loads((runs / name / "config.json").read_text())["train"]
    return {
        "config": name,
        "processes": procs,
        "threads": threads,
        "images_per_sec": float(rows[0]["images_per_sec"]),
        "train_seconds": float(rows[0]["time"]),
        "wall_seconds": round(wall, 1),
        "sync_bn": str(config.get("sync_bn")),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--model", default="fastcnn")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps per configuration")
    p.add_argument(
        "--batch-size", type=int, default=128, help="the global batch (all processes together)"
    )
    p.add_argument(
        "--configs", default="1x2,2x1,1x1", help="CPU configurations PxT (processes x threads)"
    )
    p.add_argument(
        "--gpus", default=None, help="GPU process counts, e.g. 1,2 (instead of --configs)"
    )
    p.add_argument("--sync-bn", dest="sync_bn", action="store_true", default=None)
    p.add_argument("--no-sync-bn", dest="sync_bn", action="store_false")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if args.gpus:
        plan = [(int(n), 1, True) for n in args.gpus.split(",")]
    else:
        plan = [
            (int(c.split("x")[0]), int(c.split("x")[1]), False) for c in args.configs.split(",")
        ]
    print(
        f"{args.model} on {args.dataset}, global batch {args.batch_size}, {args.steps} steps, "
        f"{os.cpu_count()} CPUs visible",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for procs, threads, gpu in plan:
            results.append(run_one(procs, threads, args, Path(tmp), gpu))
            r = results[-1]
            print(
                f"  {r['config']:>8}: {r['images_per_sec']:8.0f} img/s  train {r['train_seconds']:6.1f} s  "
                f"wall {r['wall_seconds']:6.1f} s  sync_bn {r['sync_bn']}",
                flush=True,
            )
    base = results[0]
    print(f"\n| configuration | images/s | x {base['config']} | training s | whole command s |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['config']} | {r['images_per_sec']:.0f} | {r['images_per_sec'] / base['images_per_sec']:.2f} "
            f"| {r['train_seconds']:.1f} | {r['wall_seconds']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
