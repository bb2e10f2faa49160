"""Where the time of a command goes, as a user sees it: each output line stamped with the seconds
since the process started (issue 52: "the work around training, taken apart").

Runs the command in a subprocess with its output unbuffered, and prints every line it writes
(stdout and stderr, merged) after ``[  12.34 s]``. The stamp is when the line arrived, so a
line is stamped at the end of the work it reports. No assertions: numbers to read.

    .venv/bin/python benchmarks/stamped.py -- sightline train fashion-mnist --progress lines
    .venv/bin/python benchmarks/stamped.py --markdown -- sightline train cifar10 --recipe cifar10-airbench
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print a table: seconds, line")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command after --")
    if command[0] == "sightline":  # this checkout's, through this interpreter
        command = [sys.executable, "-m", "sightline", *command[1:]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True, bufsize=1
    )
    rows = []
    assert proc.stdout is not None
    for line in proc.stdout:
        t = time.perf_counter() - start
        line = line.rstrip("\n")
        rows.append((t, line))
        if not args.markdown:
            print(f"[{t:8.2f} s] {line}", flush=True)
    code = proc.wait()
    end = time.perf_counter() - start
    if args.markdown:
        print("| s from start | line |\n| ---: | --- |")
        for t, line in rows:
            print(f"| {t:.2f} | {line.replace('|', '/')[:140]} |")
        print(f"| {end:.2f} | (process ended, exit code {code}) |")
    else:
        print(f"[{end:8.2f} s] (process ended, exit code {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
