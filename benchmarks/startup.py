"""Start-up time of the quick CLI commands, against the cost of ``import torch`` alone.

``sightline --help``, ``datasets``, ``models`` and ``runs`` only print names, descriptions and
small JSON files, so they should not pay for loading PyTorch. Each command runs in a fresh
subprocess (best of ``--repeat``), and ``python -c "import torch"`` is timed in the same run as
the baseline, so the ratios stay meaningful on a busy or slow machine. No assertions: numbers
to read.

    .venv/bin/python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best_time(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    """Lowest wall time of ``repeat`` runs: the least disturbed by other processes."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        best = min(best, time.perf_counter() - t0)
    return best


def sightline_command() -> list[str]:
    # The installed entry point when there is one beside this Python (what a user runs),
    # else the module, which starts the same way.
    script = Path(sys.executable).with_name("sightline")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sightline"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--repeat", type=int, default=5, help="runs per command; the best is kept")
    args = ap.parse_args()

    runs_dir = tempfile.mkdtemp(prefix="sightline-startup-")
    env = {**os.environ, "SIGHTLINE_RUNS_DIR": runs_dir}
    cli = sightline_command()
    cases = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "sightline --help": [*cli, "--help"],
        "sightline datasets": [*cli, "datasets"],
        "sightline models": [*cli, "models"],
        "sightline runs": [*cli, "runs"],
    }
    try:
        times = {name: best_time(cmd, env, args.repeat) for name, cmd in cases.items()}
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    base = times['python -c "import torch"']
    width = max(map(len, times))
    print(f"best of {args.repeat}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'command':<{width}}  {'seconds':>8}  {'/ import torch':>14}")
    for name, t in times.items():
        print(f"{name:<{width}}  {t:8.3f}  {t / base:14.2f}")


if __name__ == "__main__":
    main()
