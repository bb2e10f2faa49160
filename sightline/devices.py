"""Picking the compute device, and the memory layout that is fastest on it."""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from collections.abc import Callable
from pathlib import Path

import torch

from sightline.errors import ConfigError


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's share, not the host's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' → CUDA if present, else Apple MPS, else CPU. An unavailable device is an error."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto"
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise ConfigError(
            f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA GPU(s) exist"
        )
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError(
            "device 'mps' requested but Apple MPS is not available; use --device cpu or auto"
        )
    return device


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device`` without making the host wait for a GPU. A plain ``.to("cuda")`` of a
    CPU tensor synchronises the stream: the host waits for every kernel queued so far, and the
    GPU then idles while the next ones are launched. From pinned memory the copy is queued like
    a kernel (PyTorch's pinned-memory cache keeps the buffer until the copy has run)."""
    device = torch.device(device)
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


# glibc's mallopt parameters (malloc.h) and the values set for training and inference on a CPU.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks up to 32 MiB come from the reused heap
TRIM_THRESHOLD = 1 << 30  # free memory at the heap's top kept for the next step, up to 1 GiB
TOP_PAD = 64 << 20  # grow the heap in 64 MiB steps, not one page fault's worth at a time


CPU_MALLOC_ENV = "SIGHTLINE_CPU_MALLOC"
_MALLOC_LEAVE = ("default", "off", "0", "no", "false")  # leave glibc's malloc as it is
_MALLOC_KEEP = ("", "keep", "on", "1", "yes", "true")  # keep freed memory (the default)


def cpu_malloc_tuning_wanted() -> bool:
    """What ``SIGHTLINE_CPU_MALLOC`` asks for: True to keep freed memory (the default), False to
    leave glibc's malloc alone; any other value is a ConfigError. A long-lived process (the web
    server) calls it at start, so that a typo fails there instead of in every later request."""
    value = os.environ.get(CPU_MALLOC_ENV, "").strip().lower()
    if value in _MALLOC_LEAVE:
        return False
    if value in _MALLOC_KEEP:
        return True
    raise ConfigError(
        f"{CPU_MALLOC_ENV}={os.environ[CPU_MALLOC_ENV]!r} is not a setting: use 'default' (or off) to "
        f"leave glibc's malloc as it is, or 'keep' (or unset it) to keep freed memory for the next step"
    )


def release_freed_cpu_memory() -> None:
    """Hand the memory freed so far back to the kernel (glibc's ``malloc_trim``): after large
    decodes, so a server's size stays that of its models, not of its largest request. It also
    returns what ``retain_freed_cpu_memory`` keeps on purpose; a training step refills that
    in one step, and large decodes do not happen between steps."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache  # looked up once: it is called after every large decode
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: its allocator has its own policy
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_SERVING = False


def serving_requests() -> None:
    """This process serves requests (``sightline serve``): it keeps glibc's own malloc policy,
    which gives large freed blocks back, instead of keeping up to 1 GiB freed per malloc arena
    (one per thread) for a next training step that never comes. Its training jobs run in
    worker processes of their own, which keep the training policy."""
    global _SERVING
    _SERVING = True


@functools.cache  # process-wide: set once
def retain_freed_cpu_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    Why: every training step frees its activations and gradients (megabytes each) and allocates
    them again. glibc serves blocks that large with a fresh mmap, or hands the top of its heap
    back to the kernel, until its adaptive thresholds catch up with the program's pattern, and
    whether they do depends on what else the process allocated: a bare fastcnn training step
    (width 16, batch 128) faulted 5,000 pages in every step for 300 steps and ran 1.3-1.5x
    faster with memory kept; the same network in sightline's loop caught up during its first
    epoch. Measured on 2 AVX2 cores (2026-11-25), fashion-mnist-fast's 7 epochs: 170,000 page
    faults and 1.5-1.7 s of kernel time with memory kept, 670,000-1,000,000 and 3.6-4.8 s
    without (~1 % of the run's CPU time; the wall-clock difference was within that machine's
    noise). So this guards against the slow pattern rather than speeding up every run. Preloading
    jemalloc or tcmalloc does the same, but asks the user to. The cost: the process keeps up to
    1 GiB of freed memory.

    Process-wide and idempotent; True when set. Left alone (False): off Linux/glibc, when the
    environment already sets ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` (the
    user's own tuning), or ``SIGHTLINE_CPU_MALLOC=default`` (or ``off``, ``0``, ``no``). With
    another allocator preloaded, glibc's settings are harmless: its malloc is no longer the one
    called. Any other value of ``SIGHTLINE_CPU_MALLOC`` is a ConfigError.
    """
    if not cpu_malloc_tuning_wanted() or _SERVING:  # a bad setting is an error, even here
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
    )
    return all(mallopt(param, value) == 1 for param, value in settings)


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later), where oneDNN runs bf16
    convolutions and matmuls on the matrix units. ``torch.cpu._is_amx_tile_supported`` is
    private: an older or newer PyTorch without it counts as no AMX."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except Exception:  # noqa: BLE001 - a probe that fails means "don't rely on it"
        return False


def cpu_has_avx512() -> bool:
    """Whether PyTorch runs its CPU kernels with AVX-512 here (``torch.backends.cpu.
    get_cpu_capability``; oneDNN's convolutions follow the same hardware): about twice an AVX2
    core's float32 convolution throughput. False on AVX2 x86 and on other architectures."""
    try:
        return torch.backends.cpu.get_cpu_capability() == "AVX512"
    except Exception:  # noqa: BLE001 - an older PyTorch without the probe: assume the slower CPU
        return False


CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_value(key: str, cpuinfo: Path | None = None) -> str | None:
    """The first ``key`` line's value in /proc/cpuinfo ("model name", "flags"); None where that
    file does not say (another OS, or no such line)."""
    try:
        for line in (cpuinfo or CPUINFO).read_text().splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


@functools.cache  # read once: fit asks on every run
def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU has AVX-512 BF16 instructions (its flags in /proc/cpuinfo name
    ``avx512_bf16``: Intel Cooper Lake and later, AMD Zen 4 and later). False where that file
    does not say (another OS or architecture)."""
    return "avx512_bf16" in (cpuinfo_value("flags", CPUINFO) or "").split()


def describe_cpu() -> str:
    """The CPU's model name and matrix/vector units, e.g. "Intel(R) Xeon(R) Processor, AMX
    (convnets train in bf16)": what a benchmark figure needs next to it, as machines differ."""
    name = cpuinfo_value("model name") or platform.processor() or platform.machine()
    if cpu_has_amx():
        return f"{name}, AMX (convnets train in bf16)"
    vector = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return f"{name}, {vector or 'no AMX'} without AMX (float32)"


def autocast_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """Mixed precision: ``amp`` None means on for CUDA (bf16 where supported, else fp16), off
    elsewhere; True asks for it (bf16 on a CPU), False keeps float32. ``fit`` turns it on for a
    convnet on an AMX CPU (``train.device_defaults``) and records that in the run's config."""
    if amp is False or device.type not in ("cuda", "cpu"):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp else None
