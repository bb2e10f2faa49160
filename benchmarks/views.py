"""How fast a trained run's views are: `sightline report` and `sightline plot ...`.

Each view is timed end to end as a user runs it (a fresh `sightline` process), best of N, and
compared with the baseline measured in this same process: one full evaluation of the test
split, which is what every view used to cost before test predictions were saved with the
evaluation. Targets from the issue: report <= 5 s, each plot <= 3 s (Fashion-MNIST, 2 cores).

    python benchmarks/views.py [RUN] [--repeat 3]

RUN defaults to the newest run under ./runs (train one first: `make demo`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

TARGETS = {"report": 5.0, "plot": 3.0}
PLOTS = ("predictions", "probabilities", "confusion", "top-losses", "curves")


def timed(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", nargs="?", help="run folder (default: the newest under ./runs)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import sightline
    from sightline.run import find_run

    run = find_run(args.run)
    exe = [sys.executable, "-m", "sightline"]
    print(
        f"run: {run.path}  ({run.config['model']['name']} on {run.config['data'].get('name_or_path')})"
    )
    print(f"machine: {os.cpu_count()} CPUs, torch threads {__import__('torch').get_num_threads()}")

    # Baseline, in this process: load the data once, then one full evaluation of the test split.
    start = time.perf_counter()
    data = run.load_data()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    run.evaluate(data, split="test", save=False)
    eval_s = time.perf_counter() - start
    # Make sure the saved evaluation is current (a run from an older sightline has none).
    sightline.load_run(run.path).split_results("test", data=data)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(
            (
                "report",
                timed([*exe, "report", str(run.path), "-o", f"{tmp}/r.html"], args.repeat),
                TARGETS["report"],
            )
        )
        # every figure drawn again (what `sightline report` costs after the run changed)
        rows.append(
            (
                "report --redraw",
                timed(
                    [*exe, "report", str(run.path), "--redraw", "-o", f"{tmp}/r.html"], args.repeat
                ),
                TARGETS["report"],
            )
        )
        for kind in PLOTS:
            rows.append(
                (
                    f"plot {kind}",
                    timed(
                        [*exe, "plot", kind, str(run.path), "-o", f"{tmp}/{kind}.png"], args.repeat
                    ),
                    TARGETS["plot"],
                )
            )
    print(
        f"\nbaseline (this process): load data {load_s:.2f} s, one test-split evaluation {eval_s:.2f} s "
        f"(what each view cost before); a view also pays process start + data load\n"
    )
    print(f"{'view':<22}{'seconds':>9}{'target':>8}{'vs evaluation':>15}")
    for name, secs, target in rows:
        mark = "ok" if secs <= target else "OVER"
        print(f"{name:<22}{secs:>9.2f}{target:>7.0f}s{secs / eval_s:>14.2f}x  {mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
