"""Several processes, one training: torchrun + torch.distributed + DistributedDataParallel.

``torchrun --nproc_per_node N -m sightline train ...`` (or ``sightline train --nproc N`` /
``--gpus N``, which launch torchrun) runs the same command in N processes ("ranks"). This module
is what they share:

* ``current()``: the rank, the world size and the local rank, read from torchrun's environment;
  the process group is initialised on first use (gloo for CPU tensors, NCCL for CUDA ones),
  with a timeout so that no rank waits forever on a collective.
* Sharding: every rank draws the same epoch permutation and the same global batch from the same
  seeded generator and trains on its rows of it (``rows``), so the union of the ranks' batches
  is exactly the single-process epoch, for any world size.
* SyncBatchNorm for any device lives beside this module, in ``sync_batchnorm``.
* Small collectives for the trainer: sums, a flag or a text broadcast from rank 0, and
  gathering rows (sharded evaluation).

Control messages (flags, names, RNG states) travel as CPU tensors, which gloo carries on every
machine; gradients travel as the model's tensors (NCCL on GPUs).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from sightline.errors import ConfigError

TIMEOUT_ENV = "SIGHTLINE_DIST_TIMEOUT"  # seconds a collective may wait for the other ranks
DEFAULT_TIMEOUT_S = 900.0  # long enough for rank 0 to download a dataset while the rest wait
# Below this many images per rank, BatchNorm's statistics get noisy: SyncBatchNorm by default.
SYNC_BN_BELOW = 32


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in the job. ``world_size`` 1 is a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = ""

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints progress."""
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """The first process on this machine: the one that downloads data into its cache."""
        return self.local_rank == 0

    def describe(self) -> str:
        return f"rank {self.rank} of {self.world_size} ({self.backend})"


_CURRENT: Distributed | None = None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ConfigError(
            f"environment variable {name}={value!r} is not an integer (set by torchrun)"
        ) from None


def timeout_seconds() -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None
    if not seconds > 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a positive number of seconds, not {value!r}")
    return seconds


def current() -> Distributed:
    """This process's place in the job, from torchrun's RANK / WORLD_SIZE / LOCAL_RANK.

    With WORLD_SIZE > 1 the default process group is initialised here, once (torchrun's
    MASTER_ADDR / MASTER_PORT say where to meet); otherwise this is a single process."""
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        _CURRENT = Distributed()
        return _CURRENT
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed: run without torchrun")
    backend = (
        "cpu:gloo,cuda:nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    )
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_seconds()))
        atexit.register(_shutdown)
        _watch_for_errors()
    _CURRENT = Distributed(rank, world, local_rank, _env_int("LOCAL_WORLD_SIZE", world), backend)
    return _CURRENT


# Seconds the ranks wait for each other at a clean exit before tearing the group down anyway.
SHUTDOWN_WAIT_S = 60.0
_failed = False  # an uncaught exception ends this process: its peers will not meet it at exit


def _watch_for_errors() -> None:
    previous = sys.excepthook

    def hook(*exc_info) -> None:  # noqa: ANN002
        global _failed
        _failed = True
        previous(*exc_info)

    sys.excepthook = hook


def _shutdown() -> None:
    """Tear the process group down at exit, all ranks together.

    A rank that closes its gloo connections while a peer is still tearing down its own can
    abort that peer ("terminate called without an active exception", SIGABRT: about 1 exit in
    10 on 2 CPU processes, after both had finished their work). So a rank that ends cleanly
    first waits, a bounded time, until every rank has ended; one that ends with an error does
    not wait for peers that are stuck in a collective it will never join."""
    if not dist.is_initialized():
        return
    if not _failed:
        with contextlib.suppress(Exception):  # a peer already gone: tear down regardless
            _bounded_barrier(SHUTDOWN_WAIT_S)
    dist.destroy_process_group()


def _bounded_barrier(seconds: float) -> None:
    timeout = datetime.timedelta(seconds=seconds)
    if dist.get_backend() == "gloo":
        dist.monitored_barrier(timeout=timeout)  # gloo's barrier that honours its own timeout
    else:  # NCCL: a CUDA barrier, bounded by the group's timeout
        dist.barrier()


def rank_device(device: torch.device, ctx: Distributed) -> torch.device:
    """One device per rank: ``cuda`` becomes ``cuda:LOCAL_RANK``; CPU ranks share the CPU."""
    if ctx.active and device.type == "cuda":
        if ctx.local_world_size > torch.cuda.device_count():
            raise ConfigError(
                f"{ctx.local_world_size} processes on this machine but only {torch.cuda.device_count()} "
                f"GPU(s): start one process per GPU (--nproc_per_node {torch.cuda.device_count()})"
            )
        return torch.device("cuda", ctx.local_rank)
    return device


# ---------------------------------------------------------------------------- collectives


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all ranks (in place; returned for chaining). A no-op alone."""
    if current().active:
        dist.all_reduce(t)
    return t


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank: decisions (stop now, early stopping) are made once."""
    if not current().active:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64)
    dist.broadcast(t, 0)
    return bool(t.item())


def broadcast_text(text: str) -> str:
    """Rank 0's ``text`` on every rank (e.g. the run folder's name, which has a timestamp)."""
    if not current().active:
        return text
    data = torch.tensor(list(text.encode()), dtype=torch.uint8)
    size = torch.tensor([data.numel()], dtype=torch.int64)
    dist.broadcast(size, 0)
    if not current().is_main:
        data = torch.empty(int(size.item()), dtype=torch.uint8)
    dist.broadcast(data, 0)
    return bytes(data.tolist()).decode()


def barrier() -> None:
    if current().active:
        dist.barrier()


def all_gather_same(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``t`` (same shape and dtype on all ranks, CPU), in rank order."""
    if not current().active:
        return [t]
    out = [torch.empty_like(t) for _ in range(current().world_size)]
    dist.all_gather(out, t.contiguous())
    return out


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """The ranks' row blocks of a CPU tensor, concatenated in rank order on every rank. The
    blocks may differ in length by any amount (they are padded for the collective)."""
    ctx = current()
    if not ctx.active:
        return t
    sizes = [int(s.item()) for s in all_gather_same(torch.tensor([t.shape[0]], dtype=torch.int64))]
    padded = t.new_zeros((max(sizes), *t.shape[1:]))
    padded[: t.shape[0]] = t
    return torch.cat([block[:n] for block, n in zip(all_gather_same(padded), sizes, strict=True)])


def rows(n: int, ctx: Distributed | None = None) -> slice:
    """This rank's rows of a batch of ``n``: contiguous blocks whose sizes differ by at most
    one, in rank order (``torch.tensor_split``'s split), so the blocks together are the batch."""
    ctx = ctx or current()
    base, extra = divmod(n, ctx.world_size)
    start = ctx.rank * base + min(ctx.rank, extra)
    return slice(start, start + base + (1 if ctx.rank < extra else 0))


def broadcast_module(model: nn.Module) -> None:
    """Rank 0's parameters and buffers into every rank's ``model`` (same architecture)."""
    if not current().active:
        return
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, 0)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ---------------------------------------------------------------------------- launching


def torchrun_command(nproc: int, args: list[str], *, nnodes: int = 1) -> list[str]:
    """The command that runs ``python -m sightline <args>`` in ``nproc`` processes on this
    machine with torchrun (PyTorch's own launcher, which also reports a failed rank)."""
    if nproc < 1:
        raise ConfigError(f"the number of processes must be at least 1, not {nproc}")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nnodes={nnodes}",
        f"--nproc_per_node={nproc}",
        "-m",
        "sightline",
        *args,
    ]


def threads_per_process(nproc: int) -> int:
    """CPU threads each of ``nproc`` processes on this machine gets: the cores shared out."""
    from sightline.devices import cpu_cores

    return max(1, cpu_cores() // max(nproc, 1))


def resolve_for_world(cfg, ctx: Distributed, model: nn.Module, train_size: int):
    """``cfg`` (a TrainConfig) completed for ``ctx``'s world size, and lines saying what was
    chosen: SyncBatchNorm on or off (resolved, so a resume keeps it), and the per-rank batch."""
    import dataclasses

    if not ctx.active:
        return cfg, []
    if cfg.freeze:
        raise ConfigError(
            "--freeze trains a head on features computed once, in seconds: run it as one process "
            "(without torchrun), or fine-tune the whole network with --fine-tune"
        )
    world = ctx.world_size
    if cfg.batch_size < world:
        raise ConfigError(
            f"batch size {cfg.batch_size} is smaller than the {world} processes: each needs at least "
            f"one image per step (use --batch-size {world} or more)"
        )
    from sightline.plan.config import steps_per_epoch

    low = cfg.batch_size // world
    last = train_size - (steps_per_epoch(train_size, cfg.batch_size) - 1) * cfg.batch_size
    bn = has_batchnorm(model)
    sync = cfg.sync_bn if cfg.sync_bn is not None else bn and low < SYNC_BN_BELOW
    if bn and not sync and last // world < 2:
        raise ConfigError(
            f"the epoch's last batch has {last} images for {world} processes: BatchNorm needs at least 2 "
            f"per process; use --sync-bn or another batch size"
        )
    split = f"{low}" if cfg.batch_size % world == 0 else f"{low}-{low + 1}"
    notes = [
        f"{world} processes ({ctx.backend}): global batch {cfg.batch_size}, {split} images per process per step; "
        f"SyncBatchNorm {'on' if sync and bn else 'off'}"
        + ("" if bn else " (no BatchNorm in this model)")
    ]
    extra = {
        **cfg.extra,
        "distributed": {"world_size": world, "backend": ctx.backend, "per_rank_batch": split},
    }
    return dataclasses.replace(cfg, sync_bn=bool(sync), extra=extra), notes


def sharded_logits(
    model: nn.Module, images: torch.Tensor, preprocess, device: torch.device
) -> torch.Tensor:
    """Logits of all ``images`` on every rank, each rank computing its own rows of them."""
    from sightline.infer.batched import batched_logits

    mine = images[rows(len(images))]
    return gather_rows(batched_logits(model, mine, preprocess, device))
