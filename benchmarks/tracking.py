"""What tracking costs: the default Fashion-MNIST run (``sightline train fashion-mnist``, the
README's main job) untracked, with ``--track tensorboard`` and with ``--track mlflow`` (MLflow's
local SQLite store), in one process, alternating, each timed from the call to its result
(training, evaluation, report and, when tracked, the tracker's own logging after it: the
model's ONNX export and upload included for MLflow).

Prints each run's wall time and the ratio to the untracked runs' median.

    .venv/bin/python benchmarks/tracking.py [--rounds 2] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import sightline


def one(kind: str | None, root: Path, epochs: int | None) -> float:
    options = {"track": kind} if kind else {}
    if epochs:
        options["epochs"] = epochs
    torch.manual_seed(0)
    start = time.perf_counter()
    result = sightline.run_training("fashion-mnist", runs_dir=root / "runs", progress="quiet",
                                    **options)  # fmt: skip
    seconds = time.perf_counter() - start
    if kind:
        assert kind in result.run.tracking, result.run.tracking  # it did log
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chdir(root)  # MLflow's default store: ./mlflow.db here
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        one(None, root, 1)  # warm: the dataset's cache, the imports
        times: dict[str, list[float]] = {"none": [], "tensorboard": [], "mlflow": []}
        for r in range(args.rounds):
            for kind in ("none", "tensorboard", "mlflow"):
                t = one(None if kind == "none" else kind, root, args.epochs)
                times[kind].append(t)
                print(f"round {r + 1} {kind:12s} {t:7.1f} s", flush=True)
    base = statistics.median(times["none"])
    for kind, ts in times.items():
        print(f"{kind:12s} median {statistics.median(ts):7.1f} s  ratio "
              f"{statistics.median(ts) / base:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
