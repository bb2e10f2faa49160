"""Feature-extraction speed of EfficientNet-Lite0 (frozen backbone → (N, 1280) features).

Transfer learning with a frozen backbone spends nearly all its time here, once per image (the
features can be cached), so this is the number that decides the input size and the settings.
Images/s at batch 64 in eval mode under ``torch.inference_mode``, for channels-last memory
on/off and bf16 autocast on/off, and for the model's ``fused()`` copy (BatchNorm folded into the
convolutions, what ``train/frozen.py`` runs) in fp32 NHWC, each as a ratio against plain fp32
contiguous (NCHW) measured in the same run, so the ratios stay meaningful on a busy machine. Random weights: speed does
not depend on their values. No assertions: numbers to read.

``--paths`` measures instead what sightline runs, against the path before the backbone engine
(``infer/backbone.py``): frozen-feature extraction (``train.frozen.extract_features``: the
engine chosen here, ONNX Runtime or PyTorch, at its batch; before: PyTorch's fused fp32 NHWC copy
at batch 32) and a pretrained run's prediction (``batched_logits`` of the ``inference_copy``,
with and without the input shape that lets it choose), in interleaved rounds, medians. The
one-off export and timing, in a fresh cache folder, are reported apart.

    .venv/bin/python benchmarks/features.py [--sizes 224 128] [--seconds 10] [--device cpu]
    .venv/bin/python benchmarks/features.py --paths [--sizes 224] [--rounds 5]
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


def paths(size: int, rounds: int, seconds: float) -> None:
    """The paths before and now, for features and predictions, interleaved; see the docstring."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sightline-features-") as cache:
        os.environ["SIGHTLINE_CACHE_DIR"] = cache  # a fresh export and timing, removed after
        _paths(size, rounds, seconds)


def _paths(size: int, rounds: int, seconds: float) -> None:
    import statistics

    from sightline.data.preprocess import Preprocess
    from sightline.infer.batched import batched_logits, inference_copy
    from sightline.train.frozen import extract_features

    model = create_model("efficientnet-lite0", (3, size, size), 3).eval()
    shape = (3, size, size)
    images = torch.randint(0, 256, (256, *shape), dtype=torch.uint8)  # a small folder
    pre = Preprocess(3, (size, size), "pad", (0.498,) * 3, (0.502,) * 3)
    notes: list[str] = []
    start = time.perf_counter()
    extract_features(model, images[:1].expand(256, *shape), pre, torch.device("cpu"),
                     note=notes.append)  # fmt: skip
    print(f"{size} px: {notes[0] if notes else 'PyTorch (no choice to make)'}; the export and "
          f"timing took {time.perf_counter() - start:.1f} s, once")  # fmt: skip
    before = inference_copy(model).to(memory_format=torch.channels_last)

    def features_before() -> None:
        with torch.inference_mode():
            for i in range(0, len(images), 32):
                x = pre.normalize(images[i : i + 32]).contiguous(memory_format=torch.channels_last)
                before.features(x)

    now = inference_copy(model, pre, "cpu")
    cases = {
        "features, before (PyTorch fused fp32 NHWC, batch 32)": features_before,
        "features, now (extract_features)": lambda: extract_features(
            model, images, pre, torch.device("cpu")
        ),
        "prediction, before (PyTorch fused copy)": lambda: batched_logits(before, images, pre),
        "prediction, now (the engine chosen here)": lambda: batched_logits(now, images, pre),
    }
    rates: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            fn()  # warm
            done, t0 = 0, time.perf_counter()
            while done == 0 or time.perf_counter() - t0 < seconds:
                fn()
                done += len(images)
            rates[name].append(done / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rates.items()}
    names = list(cases)
    for i, name in enumerate(names):
        base = med[names[i - i % 2]]
        print(f"  {name:<56} {med[name]:>8.1f} img/s ({med[name] / base:.2f}x)  "
              f"rounds: {', '.join(f'{r:.0f}' for r in rates[name])}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="minimum timed seconds per cell"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--paths", action="store_true", help="sightline's paths, before and now")
    parser.add_argument("--rounds", type=int, default=5, help="--paths: interleaved rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.paths:
        from sightline.devices import describe_cpu

        print(f"{describe_cpu()}, torch {torch.__version__}, {args.threads} threads")
        for size in args.sizes:
            paths(size, args.rounds, min(args.seconds, 3.0))
        return
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
