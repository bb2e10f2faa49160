"""``sightline predict``'s forward passes against a plain fp32 eager forward of the same model.

Issue 52's bar: on a pretrained EfficientNet-Lite0 run, ``Run.predictor()`` (what ``sightline
predict`` and the server run) at >= 3x a plain eager fp32 forward of the architecture (the
training model, BatchNorms not folded, NCHW), with no export made by the user. Both run on the
same prepared uint8 images with the run's own test-time augmentation, in interleaved rounds in
this process, so the ratio holds on a busy machine. The predictor is opened first (its one-off
costs: a backbone export and its timing, once per machine) and timed separately.

    .venv/bin/python benchmarks/predict.py --run RUN [--images 256] [--rounds 3]

Without ``--run`` it trains a head on frozen EfficientNet-Lite0 features over 60 generated
photos (needs ``sightline[pretrained]``): the speed does not depend on what the head learned.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import sightline
from sightline.infer.batched import batched_logits
from sightline.run import Run


def toy_run(root: Path) -> Run:
    """A pretrained run on 3 classes x 20 generated photos (64 px, coloured shapes)."""
    g = torch.Generator().manual_seed(0)
    from PIL import Image

    for c, name in enumerate(("red", "green", "blue")):
        (root / "data" / name).mkdir(parents=True)
        for i in range(20):
            x = torch.randint(0, 80, (64, 64, 3), generator=g, dtype=torch.uint8)
            x[16:48, 16:48, c] = 220
            Image.fromarray(x.numpy()).save(root / "data" / name / f"{i}.png")
    result = sightline.run_training(
        root / "data",
        runs_dir=root / "runs",
        model="efficientnet-lite0",
        model_options={"pretrained": True},
        progress="quiet",
        report=False,
    )
    return result.run


def rate(fn, images: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(images)
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", help="a run folder (default: a pretrained toy run)")
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(args.run)) if args.run else toy_run(Path(tmp))
        pre = run.preprocess
        g = torch.Generator().manual_seed(1)
        images = torch.randint(0, 256, (args.images, *pre.input_shape), generator=g).to(torch.uint8)
        plain = run.load_model("best", "cpu")
        start = time.perf_counter()
        predictor = run.predictor(device="cpu", images=len(images))
        opened = time.perf_counter() - start
        print(f"run {run.name}: {pre.input_shape}, flip TTA {pre.flip_tta}, shift {pre.shift_tta}")
        print(f"predictor: {predictor.engine} ({predictor.note}); opened in {opened:.1f} s")
        ways = {
            "plain fp32 eager (training model)": lambda x: batched_logits(plain, x, pre, "cpu", 32),
            "Run.predictor() (sightline predict)": predictor.logits,
        }
        for fn in ways.values():
            fn(images[:8])  # warm-up
        rates: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.rounds):
            for name, fn in ways.items():
                rates[name].append(rate(fn, images))
        base = statistics.median(rates["plain fp32 eager (training model)"])
        print("| path | images/s (median) | x plain |\n| --- | --- | --- |")
        for name, r in rates.items():
            print(f"| {name} | {statistics.median(r):.1f} | {statistics.median(r) / base:.2f}x |")
        want = batched_logits(plain, images[:16], pre, "cpu").softmax(1)
        got = predictor.logits(images[:16]).softmax(1)
        agree = (want.argmax(1) == got.argmax(1)).float().mean().item()
        print(
            f"top-1 agreement {agree:.3f}, max probability difference {float((want - got).abs().max()):.2e}"
        )


if __name__ == "__main__":
    main()
