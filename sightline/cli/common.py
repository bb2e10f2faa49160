"""Helpers the commands share: a text table, the run or model a command works on."""

from __future__ import annotations

import sys
from pathlib import Path


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*map(str, r)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------------- datasets


def open_model(source: str | None, runs_dir: str | None = None, which: str = "best", device="cpu"):
    """(model, metadata) from a .safetensors model file, a run folder or name, or the newest run."""
    from sightline.run import load_model

    if source and Path(source).is_file():
        return load_model(source, device)
    run = pick_run(source, runs_dir)
    return run.load_model(which, device), run.metadata(which)


def pick_run(ref: str | None, runs_dir: str | None):
    """The run a command works on; when it defaults to the newest, it says which (on stderr)."""
    from sightline.run import find_run

    run = find_run(ref, runs_dir)
    if ref is None:
        print(f"Using the newest run: {run.path.resolve()}", file=sys.stderr)
    return run


# ---------------------------------------------------------------------------- evaluate
