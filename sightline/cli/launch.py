"""``sightline train --gpus N`` / ``--nproc N``: the same command in N processes, by torchrun.

torchrun is PyTorch's own launcher: it starts the processes with RANK / WORLD_SIZE / LOCAL_RANK
set, watches them, and when one fails it stops the others and reports which rank failed and how.
For several machines run torchrun yourself (the README shows the command).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from sightline.errors import ConfigError

LAUNCH_OPTIONS = ("--gpus", "--nproc")


def without_launch_options(argv: list[str]) -> list[str]:
    """``argv`` without --gpus N / --nproc N (each rank runs the rest as a single command)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in LAUNCH_OPTIONS:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in LAUNCH_OPTIONS)):
            out.append(arg)
    return out


def launch_train(args: argparse.Namespace) -> int:
    from sightline.train import threads_per_process, torchrun_command

    if args.gpus and args.nproc:
        raise ConfigError("--gpus N and --nproc N both say how many processes: give one of them")
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        raise ConfigError("already running under torchrun: leave out --gpus / --nproc")
    env = dict(os.environ)
    argv = without_launch_options(args.argv)
    if args.gpus:
        import torch

        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found < args.gpus:
            raise ConfigError(
                f"--gpus {args.gpus}: this machine has {found} CUDA GPU(s)"
                + ("; use --nproc N for several CPU processes" if not found else "")
            )
        nproc = args.gpus
        if args.device is None and not args.resume:
            argv += ["--device", "cuda"]
    else:
        nproc = args.nproc
        if args.device is None and not args.resume:  # a resumed run keeps its own device
            argv += ["--device", "cpu"]
        env.setdefault("OMP_NUM_THREADS", str(threads_per_process(nproc)))  # torchrun would say 1
    cmd = torchrun_command(nproc, argv)
    flag = "--gpus" if args.gpus else "--nproc"
    print(
        f"Launching {nproc} processes with torchrun: {' '.join(cmd[1:])}",
        file=sys.stderr,
        flush=True,
    )
    proc = subprocess.Popen(cmd, env=env)
    interrupted = False
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # Ctrl-C reached the processes too: wait while they save and stop
            interrupted = True
    if interrupted:
        # torchrun reports its own SIGINT as an error (a traceback above); the ranks saved the run.
        print(
            f"Stopped: the run was saved where it stopped. Resume with `sightline train --resume RUN {flag} {nproc}` "
            f"(RUN: the run folder printed above)",
            file=sys.stderr,
            flush=True,
        )
        return 130
    if code not in (0, 130):
        print(
            f"sightline train: error: a training process failed (torchrun exit code {code}); the failing rank "
            f"and its error are shown above. A run folder that was started can be resumed with "
            f"`sightline train --resume RUN {flag} {nproc}`",
            file=sys.stderr,
            flush=True,
        )
    return code
