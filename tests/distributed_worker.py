"""One rank of a small training under torchrun, for tests/unit/train/test_distributed.py.

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py SPEC_JSON

SPEC_JSON: {"runs_dir", "name", "model", "model_options", "train": {...}, "stop_after": rank 0's should_stop
says stop after this many calls, "fail_on_rank": this rank raises at once, "resume": run folder, "log_dir": where each rank writes what it wrote (writes-rank<R>.json)}.
The toy data is tests/unit/train/test_train.py's; file writes are seen through Python's audit hooks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent / "unit" / "train")]

spec = json.loads(sys.argv[1])
runs_dir = str(Path(spec["runs_dir"]).resolve())
writes: list[list[str]] = []


def audit(event: str, args: tuple) -> None:
    # Files opened for writing, folders made and files renamed (atomic writes) under runs_dir.
    if event == "open" and isinstance(args[0], (str, os.PathLike)):
        path, mode, flags = str(args[0]), args[1], args[2]
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if writing and os.path.abspath(path).startswith(runs_dir):
            writes.append([event, path])
    elif event in ("os.mkdir", "os.rename", "os.replace") and str(args[0]).startswith(runs_dir):
        writes.append([event, str(args[0])])


sys.addaudithook(audit)

import torch  # noqa: E402
from test_train import make_dataset  # noqa: E402

import sightline  # noqa: E402
from sightline.train import distributed  # noqa: E402

ctx = distributed.current()
if spec.get("fail_on_rank") == ctx.rank:  # an error in one rank while the others go on to train
    raise RuntimeError(f"planned failure on rank {ctx.rank}")
data = make_dataset(n_per_class=spec.get("n_per_class", 64))
stop_after = spec.get("stop_after")
steps = {"n": 0}


def should_stop() -> bool:
    # Rank 0's word alone: the other ranks must stop with it, at the same step.
    steps["n"] += 1
    return stop_after is not None and ctx.is_main and steps["n"] > stop_after


if spec.get("resume"):
    run = sightline.resume(spec["resume"], data=data, progress="quiet")
else:
    torch.manual_seed(0)
    model = sightline.create_model(
        spec.get("model", "fastcnn"),
        data.input_shape,
        data.num_classes,
        **spec.get("model_options", {"width": 8, "stages": 2}),
    )
    run = sightline.fit(
        model,
        data,
        name=spec.get("name", "run"),
        runs_dir=runs_dir,
        progress="quiet",
        should_stop=should_stop,
        **spec.get("train", {}),
    )
log = Path(spec["log_dir"]) / f"writes-rank{ctx.rank}.json"
log.write_text(
    json.dumps(
        {"rank": ctx.rank, "world_size": ctx.world_size, "run": str(run.path), "writes": writes}
    )
)
