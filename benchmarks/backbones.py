"""Predict throughput of the curated backbones on this machine: images/s of the inference copy
(``fused``: BatchNorms folded), fp32, batch 8, at each one's pretrained input size, beside its
parameters. All in one process, so the ratios between them hold on any machine; the numbers in
``sightline/models/curated.py`` and the README come from here (benchmarks/README.md says which
CPU). Random weights: speed does not depend on them.

    python benchmarks/backbones.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import time

import torch

from sightline.models import create_model, get_model_entry
from sightline.models.curated import CURATED


def images_per_second(name: str, seconds: float) -> tuple[int, int, float]:
    size = get_model_entry(name).pretrained_input["size"]
    model = create_model(name, (3, size, size), 1000).eval()
    params = sum(p.numel() for p in model.parameters())
    net = model.fused()
    x = torch.randn(8, 3, size, size)
    with torch.inference_mode():
        net(x)  # warm up: first-call allocations and kernel choices
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            net(x)
            done += len(x)
    return size, params, done / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':34} {'px':>4} {'params':>8} {'img/s':>7}")
    for c in CURATED:
        size, params, rate = images_per_second(c.name, args.seconds)
        print(f"{c.name:34} {size:4d} {params / 1e6:7.1f}M {rate:7.1f}")


if __name__ == "__main__":
    main()
