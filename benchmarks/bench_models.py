"""Training-step throughput of every registered model, and what batch size and memory layout buy.

Prints images/s for a full training step (forward, backward, SGD-Nesterov update) on synthetic
Fashion-MNIST-shaped and CIFAR-shaped batches, and the ratio against a baseline measured in the
same run (the same model, batch 256, contiguous NCHW). No assertions: numbers to read.

    .venv/bin/python benchmarks/bench_models.py [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from sightline.data.augment import Augment
from sightline.models import create_model, list_models


def step_rate(
    name: str,
    shape: tuple[int, int, int],
    batch: int,
    channels_last: bool,
    steps: int,
    seconds: float = 2.0,
) -> float:
    torch.manual_seed(0)
    model = create_model(name, shape, 10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, *shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # Warm up for a second (oneDNN picks kernels and caches buffers on first use), then time
    # at least ``seconds`` of steps: short timings on 2 shared cores are mostly noise.
    start = time.perf_counter()
    while time.perf_counter() - start < 1.0:
        step()
    done, start = 0, time.perf_counter()
    while done < steps or time.perf_counter() - start < seconds:
        step()
        done += 1
    return batch * done / (time.perf_counter() - start)


def augment_rate(shape: tuple[int, int, int], batch: int, steps: int) -> float:
    aug = Augment(translate=2, flip=True)
    x = torch.randn(batch, *shape)
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        aug(x, g)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="minimum timed steps per cell")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, >= 2 s timed per cell\n")
    for shape in ((1, 28, 28), (3, 32, 32)):
        print(f"input {shape}: training images/s (ratio vs batch 256 NCHW of the same model)")
        print(f"  {'model':<14}{'256 NCHW':>10}{'256 NHWC':>16}{'64 NCHW':>16}{'64 NHWC':>16}")
        for entry in list_models():
            try:
                base = step_rate(entry.name, shape, 256, False, args.steps)
            except Exception as e:  # noqa: BLE001 - a model may not support this input size
                print(f"  {entry.name:<14}  skipped: {e}")
                continue
            cells = [f"{base:>10,.0f}"]
            for batch, cl in ((256, True), (64, False), (64, True)):
                rate = step_rate(entry.name, shape, batch, cl, args.steps * 256 // batch)
                cells.append(f"{rate:>9,.0f} ({rate / base:.2f}x)")
            print(f"  {entry.name:<14}" + "".join(cells))
        print(
            f"  batched augmentation (translate 2 + flip): {augment_rate(shape, 256, args.steps * 5):,.0f} images/s\n"
        )


if __name__ == "__main__":
    main()
