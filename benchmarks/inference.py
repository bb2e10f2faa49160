"""Inference speed of a run's model: PyTorch eager, ``torch.compile`` and ONNX Runtime, with
Keras ``predict`` on the tutorial's MLP as the reference when TensorFlow is installed.

Measures what ``predict`` pays once images are prepared (uint8 tensors, as ``Preprocess``
gives them): images/s at batch 256 and at batch 1, and single-image latency p50/p99. Every
engine runs in this process on the same images, so the ratios hold on a busy machine. No
assertions: numbers to read.

    SIGHTLINE_DATA_MIRROR=../shared/datasets .venv/bin/python benchmarks/inference.py
    .venv/bin/python benchmarks/inference.py --run runs/my-run --seconds 3 --json out.json

Without ``--run`` it trains the tutorial MLP on Fashion-MNIST for a few steps (speed does not
depend on the weights) into a temporary folder. ONNX Runtime needs ``sightline[onnx]``;
Keras needs ``tensorflow`` (``pip install tensorflow-cpu``): each missing one is a line, not
an error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

Engine = Callable[[torch.Tensor], Any]  # uint8 (N, C, H, W) → logits


# ----------------------------------------------------------------------------- timing
def throughput(fn: Engine, images: torch.Tensor, batch: int, seconds: float) -> float:
    """Images per second, calling ``fn`` on consecutive batches for about ``seconds``."""
    fn(images[:batch])  # warm-up: first-call costs (allocation, compilation) are not speed
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        lo = (done // batch * batch) % max(len(images) - batch, 1)
        fn(images[lo : lo + batch])
        done += batch
    return done / (time.perf_counter() - start)


def latency_ms(fn: Engine, images: torch.Tensor, calls: int) -> tuple[float, float]:
    """(p50, p99) milliseconds of single-image calls."""
    fn(images[:1])
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(images[i % len(images) : i % len(images) + 1])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


# ----------------------------------------------------------------------------- engines
def torch_engines(run, images: torch.Tensor) -> dict[str, Engine]:
    from sightline.infer.batched import batched_logits

    model, pre = run.load_model("best", "cpu"), run.preprocess
    engines: dict[str, Engine] = {"pytorch eager": lambda x: batched_logits(model, x, pre, "cpu")}
    compiled = torch.compile(run.load_model("best", "cpu").eval())
    # The compiled module runs the same forward; batched_logits adds normalisation (and flip TTA).
    engines["torch.compile"] = lambda x: batched_logits(compiled, x, pre, "cpu")
    return engines


def onnx_engine(run) -> tuple[Engine | None, str]:
    try:
        import sightline

        result = sightline.export_onnx(run, path=Path(tempfile.mkdtemp()) / "model.onnx")
        onnx = sightline.load_onnx(result.path, device="cpu")
    except Exception as e:  # noqa: BLE001 - a benchmark reports what is missing and goes on
        return None, f"ONNX Runtime: skipped ({e})"
    return (
        onnx.logits,
        f"ONNX Runtime: exported in {result.seconds:.1f} s, parity max diff {result.parity.max_abs_diff:.1e}",
    )


def keras_engine(run) -> tuple[Engine | None, str]:
    """The tutorial's Keras MLP (Flatten, Dense 128 relu, Dense 10) with ``model.predict``, as
    its users call it; untrained, as speed does not depend on the weights."""
    try:
        import keras
    except ImportError:
        return None, "Keras: skipped (tensorflow is not installed: pip install tensorflow-cpu)"
    c, h, w = run.preprocess.input_shape
    model = keras.Sequential(
        [
            keras.Input((h, w)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(len(run.classes)),
        ]
    )

    def predict(x: torch.Tensor) -> Any:
        return model.predict(x[:, 0].float().numpy() / 255.0, batch_size=max(len(x), 1), verbose=0)

    predict.whole_set = lambda x: model.predict(x[:, 0].float().numpy() / 255.0, verbose=0)  # type: ignore[attr-defined]
    return predict, f"Keras {keras.__version__}: the tutorial's MLP, model.predict"


# ----------------------------------------------------------------------------- main
def make_run(steps: int, root: Path):
    from sightline.pipeline import run_training

    return run_training(
        "fashion-mnist",
        "mlp",
        runs_dir=root,
        name="bench-mlp",
        max_steps=steps,
        evaluate=False,
        report=False,
        progress="quiet",
    ).run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="a run folder (default: train the tutorial MLP briefly)")
    ap.add_argument("--steps", type=int, default=50, help="training steps of the default run")
    ap.add_argument("--seconds", type=float, default=2.0, help="time per throughput measurement")
    ap.add_argument("--calls", type=int, default=300, help="single-image calls for the latency")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    from sightline.devices import describe_cpu
    from sightline.run import find_run

    run = find_run(args.run) if args.run else make_run(args.steps, Path(tempfile.mkdtemp()))
    data = run.load_data()
    images = data.test.images[:2048].contiguous()
    print(
        f"run {run.name}: {run.config['model']['name']}, input {tuple(images.shape[1:])}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {describe_cpu()}"
    )

    engines = torch_engines(run, images)
    for make in (onnx_engine, keras_engine):
        fn, line = make(run)
        print(line)
        if fn is not None:
            engines[line.split(":")[0]] = fn

    rows = []
    for name, fn in engines.items():
        big = throughput(fn, images, 256, args.seconds)
        one = throughput(fn, images, 1, args.seconds / 2)
        p50, p99 = latency_ms(fn, images, args.calls)
        rows.append(
            {
                "engine": name,
                "batch256_img_s": big,
                "batch1_img_s": one,
                "p50_ms": p50,
                "p99_ms": p99,
            }
        )
    keras_predict = next((fn for fn in engines.values() if hasattr(fn, "whole_set")), None)
    if (
        keras_predict is not None
    ):  # as the tutorial calls it: all test images at once, batch_size 32
        keras_predict.whole_set(images)
        t0 = time.perf_counter()
        keras_predict.whole_set(images)
        whole = len(images) / (time.perf_counter() - t0)
        rows.append(
            {
                "engine": "Keras predict(all)",
                "batch256_img_s": whole,
                "batch1_img_s": float("nan"),
                "p50_ms": float("nan"),
                "p99_ms": float("nan"),
            }
        )
    base = rows[0]
    print(
        f"\n{'engine':<16} {'batch 256 img/s':>16} {'x eager':>8} {'batch 1 img/s':>14} {'x eager':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for r in rows:
        print(
            f"{r['engine']:<16} {r['batch256_img_s']:>16,.0f} {r['batch256_img_s'] / base['batch256_img_s']:>8.2f} "
            f"{r['batch1_img_s']:>14,.0f} {r['batch1_img_s'] / base['batch1_img_s']:>8.2f} "
            f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"run": run.name, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
