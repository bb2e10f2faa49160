"""Feature-extraction speed of EfficientNet-Lite0 (frozen backbone → (N, 1280) features).

Transfer learning with a frozen backbone spends nearly all its time here, once per image (the
features can be cached), so this is the number that decides the input size and the settings.
Images/s at batch 64 in eval mode under ``torch.inference_mode``, for channels-last memory
on/off and bf16 autocast on/off, and for the model's ``fused()`` copy (BatchNorm folded into the
convolutions, what ``train/frozen.py`` runs) in fp32 NHWC, each as a ratio against plain fp32
contiguous (NCHW) measured in the same run, so the ratios stay meaningful on a busy machine. Random weights: speed does
not depend on their values. No assertions: numbers to read.

    .venv/bin/python benchmarks/features.py [--sizes 224 128] [--seconds 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

from sightline.models import create_model


def rate(
    model: torch.nn.Module,
    size: int,
    batch: int,
    channels_last: bool,
    bf16: bool,
    seconds: float,
    device: torch.device,
    fused: bool = False,
) -> float:
    """Images/s of ``model.features``: one warm-up batch, then batches for at least ``seconds``
    (at least one)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = (model.fused() if fused else model).to(device=device, memory_format=fmt)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            model.features(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():
        step()
        done, t0 = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - t0 < seconds:
            step()
            done += batch
    return done / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="minimum timed seconds per cell"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = create_model("efficientnet-lite0", (3, 224, 224), 1000).eval()
    print(
        f"torch {torch.__version__}, {device}, {args.threads} threads, batch {args.batch}, "
        f">= {args.seconds:g} s per cell: images/s (ratio vs fp32 NCHW)"
    )
    cells = [
        (False, False, False),
        (True, False, False),
        (False, True, False),
        (True, True, False),
        (True, False, True),
    ]
    names = ["fp32 NCHW", "fp32 NHWC", "bf16 NCHW", "bf16 NHWC", "fused fp32 NHWC"]
    print(f"  {'size':<6}" + "".join(f"{n:>18}" for n in names))
    for size in args.sizes:
        rates = [
            rate(model, size, args.batch, cl, bf16, args.seconds, device, fused)
            for cl, bf16, fused in cells
        ]
        row = [f"{rates[0]:>18.1f}"] + [f"{r:>10.1f} ({r / rates[0]:.2f}x)" for r in rates[1:]]
        print(f"  {size:<6}" + "".join(row))


if __name__ == "__main__":
    main()
