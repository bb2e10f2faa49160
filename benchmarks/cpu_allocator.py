"""Page faults per training step with and without ``retain_freed_cpu_memory``.

A few steps of a small convnet in a fresh interpreter each way (the malloc setting is
process-wide and made once), then the minor page faults per step. glibc's defaults hand each
step's freed activations back to the kernel and fault them in again on the next step; kept
memory is reused. No assertions: numbers to read, the untuned run as the baseline.

    .venv/bin/python benchmarks/cpu_allocator.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

STEPS = """
import json, resource, torch
from torch import nn
from sightline.devices import retain_freed_cpu_memory
tuned = retain_freed_cpu_memory()
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                    nn.Linear(32, 10))
x = torch.randn(64, 1, 28, 28)
def step():
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()
for _ in range(10):  # the heap settles first
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"tuned": tuned, "faults": faults}))
"""


def run_steps(**env: str) -> dict:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MALLOC_") and k != "SIGHTLINE_CPU_MALLOC"
    }
    out = subprocess.run(
        [sys.executable, "-c", STEPS],
        env={**clean, "OMP_NUM_THREADS": "1", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"{platform.processor() or platform.machine()}, {platform.libc_ver()[0] or 'no glibc'}")
    default = run_steps(SIGHTLINE_CPU_MALLOC="default")
    tuned = run_steps()
    print(f"page faults per step, glibc defaults (baseline): {default['faults']:8.1f}")
    ratio = (
        f"{default['faults'] / tuned['faults']:.0f}x fewer"
        if tuned["faults"] >= 1
        else "next to none"
    )
    print(f"page faults per step, freed memory kept:         {tuned['faults']:8.1f}  ({ratio})")


if __name__ == "__main__":
    main()
