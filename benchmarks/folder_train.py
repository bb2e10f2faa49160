"""`sightline train ./folder` with no flags, on issue 10's folder of digits: time and accuracy.

The folder (tests/digit_folder.py): 200 MNIST training digits of classes 0-4 (40 each) saved at
28/40/56 px as L/RGB/RGBA PNG/JPEG files, plus a broken PNG and two non-image files. The
command runs in a fresh subprocess, timed end to end as a user waits for it (start-up, loading,
training, plots and report; target ≤ 60 s on 2 CPU cores). Its best checkpoint is then scored
on 500 other MNIST digits (test split, 100 per class), saved as a labelled folder of 28 px PNGs.

As a baseline, in this process: what the same folder got before issue 10 — RGB 64x64 and
fastcnn's own train_defaults of then (SGD at lr 0.2, batch 64, 3 epochs), scored the same way.
No assertions: numbers to read. Needs the MNIST files ($SIGHTLINE_DATA_MIRROR, or a download).

    .venv/bin/python benchmarks/folder_train.py [--keep DIR] [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the folder builder is test data, kept with the tests

from digit_folder import build_folder, held_out_digits, mnist, save_test_folder  # noqa: E402

import sightline  # noqa: E402


def sightline_command() -> list[str]:
    # The installed entry point beside this Python when there is one (what a user runs).
    script = Path(sys.executable).with_name("sightline")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sightline"]


def train_with_no_flags(folder: Path, runs: Path) -> tuple[float, Path, str]:
    """Run `sightline train FOLDER` (only where the runs go, and a fixed name); returns
    (wall seconds, run folder, the command's output)."""
    cmd = [
        *sightline_command(),
        "train",
        str(folder),
        "--runs-dir",
        str(runs),
        "--name",
        "no-flags",
        "--progress",
        "lines",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return seconds, runs / "no-flags", done.stdout


def old_defaults(folder: Path, runs: Path) -> tuple[float, sightline.Run]:
    """The folder as it trained before issue 10: RGB 64x64 and fastcnn's train_defaults alone
    (``fit`` applies no folder recipe; flips on, as folders had them)."""
    t0 = time.perf_counter()
    data = sightline.load_dataset(folder, channels=3, size=64, progress=False)
    run = sightline.fit(
        "fastcnn", data, runs_dir=runs, name="old-defaults", progress="quiet", epochs=3
    )
    return time.perf_counter() - t0, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keep", type=Path, help="build the folders and runs here (default: a temporary folder)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the old-defaults baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        digits = mnist()
        folder = build_folder(base / "digits", digits)
        test_folder = save_test_folder(base / "test_digits", *held_out_digits(digits))
        print(
            f"folder: {folder} (200 digits 0-4, 28/40/56 px, L/RGB/RGBA, PNG/JPEG, 3 junk files); "
            f"torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}; cpus: {os.cpu_count()}"
        )

        seconds, run_dir, out = train_with_no_flags(folder, base / "runs")
        notes = [
            line for line in out.splitlines() if line.startswith("  ") and "skipped" not in line
        ]
        print("\n".join(notes))
        run = sightline.load_run(run_dir)
        train = run.config["train"]
        acc = run.evaluate(str(test_folder)).accuracy
        training = sum(row["time"] for row in run.history)  # the optimizer steps alone
        print(
            f"sightline train ./digits (no flags): {seconds:.1f} s end to end ({training:.1f} s of training steps), "
            f"{train['epochs']} epochs ({run.status['global_step']} steps), input {run.preprocess.input_shape}: "
            f"{acc:.1%} on 500 test digits"
        )

        if not args.no_baseline:
            seconds, old = old_defaults(folder, base / "runs")
            acc = old.evaluate(str(test_folder)).accuracy
            last = old.history[-1]
            print(
                f"old defaults (RGB 64x64, SGD lr 0.2, 3 epochs): {seconds:.1f} s in process, final loss "
                f"{last['loss']:.2f}, val_loss {last['val_loss']:.2f}: {acc:.1%} on 500 test digits"
            )


if __name__ == "__main__":
    main()
