"""Time to accuracy: sightline's named recipes against the tutorials' Keras recipes on
TensorFlow-CPU and a plain PyTorch loop with a standard ``DataLoader``, in one run.

Every measurement is its own process, timed from the moment it is started to the test accuracy
it prints, imports and data loading included, one after another on the same machine:

* sightline: ``sightline train --recipe NAME --seed S`` (to its ``evaluation`` event; the report
  written after it is not counted).
* Keras: the tutorial's own model, optimizer, batch size and epochs (the MLP on Fashion-MNIST,
  the CNN on CIFAR-10 airplane/automobile/bird), test accuracy after every epoch; its result is
  its best epoch, as the CIFAR tutorial keeps the best checkpoint by test accuracy.
* reference: the recipe's network, optimizer and schedule in the loop a PyTorch user writes:
  a ``Dataset`` whose ``__getitem__`` converts, normalises, flips and shifts one image (as
  torchvision's ToTensor, Normalize, RandomHorizontalFlip, RandomCrop(padding) would), a
  ``DataLoader`` with shuffling, ``OneCycleLR``; test accuracy after every epoch (no TTA, and no
  Lookahead where the recipe has it: a plain loop's optimizer).

Keras and the reference evaluate on the test set after every epoch for the time-to-accuracy
curve; that evaluation time is taken off their clocks. sightline's rows also show its training
seconds (the sum of its epoch times): on a GPU most of a run is start-up, data and evaluation.
No assertions: numbers to read.

    SIGHTLINE_DATA_MIRROR=../shared/datasets .venv/bin/python benchmarks/train.py
    .venv/bin/python benchmarks/train.py --tasks fashion-mnist --methods fashion-mnist-fast:3,keras:3,reference:1
    .venv/bin/python benchmarks/train.py --json out.json --plot out.png
    PYTHONPATH=. python3 benchmarks/train.py --tasks cifar10 --methods cifar10-airbench:10   # on a GPU

Keras needs TensorFlow (``pip install -e .[bench]``, i.e. tensorflow-cpu): without it Keras is a
line saying so, and the rest runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- the tasks


CIFAR_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class Task:
    dataset: str
    classes: tuple[str, ...]  # empty: all
    recipes: tuple[str, ...]  # sightline's named recipes for it
    reference_recipe: str  # the recipe whose network and schedule the plain PyTorch loop trains
    keras: str  # the tutorial's Keras recipe


TASKS = {
    "fashion-mnist": Task(
        "fashion-mnist",
        (),
        ("fashion-mnist-fast", "fashion-mnist-long", "fashion-mnist-mlp"),
        "fashion-mnist-fast",
        "mlp",
    ),
    "cifar3": Task(
        "cifar10",
        ("airplane", "automobile", "bird"),
        ("cifar3-fast", "cifar3-tutorial-cnn"),
        "cifar3-fast",
        "cnn",
    ),
    # Full CIFAR-10, by choice only (--tasks cifar10): a recipe run is ~10+ minutes on 2 CPU cores.
    "cifar10": Task("cifar10", CIFAR_NAMES, ("cifar10-airbench",), "cifar10-airbench", "cnn"),
}


# ----------------------------------------------------------------------------- raw data (numpy only)
def mirror() -> Path:
    folder = os.environ.get("SIGHTLINE_DATA_MIRROR")
    if not folder:
        sys.exit("set SIGHTLINE_DATA_MIRROR to the dataset mirror folder (e.g. ../shared/datasets)")
    return Path(folder)


def read_task_arrays(task: Task):
    """(x_train, y_train, x_test, y_test) as uint8 NHWC and int64 numpy arrays, read the way the
    tutorials' loaders read the canonical files (no sightline, no torch: Keras pays no extra import)."""
    import numpy as np

    root = mirror()
    if task.dataset == "fashion-mnist":

        def idx(name: str, offset: int) -> np.ndarray:
            with gzip.open(root / "fashion-mnist" / name) as f:
                return np.frombuffer(f.read(), np.uint8, offset=offset)

        xs = [
            idx(f"{p}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1) for p in ("train", "t10k")
        ]
        ys = [idx(f"{p}-labels-idx1-ubyte.gz", 8).astype(np.int64) for p in ("train", "t10k")]
        return xs[0], ys[0], xs[1], ys[1]
    folder = root / "cifar-10" / "cifar-10-batches-bin"

    def batches(names: list[str]):
        raw = np.concatenate([np.fromfile(folder / n, np.uint8).reshape(-1, 3073) for n in names])
        return raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), raw[:, 0].astype(np.int64)

    x_tr, y_tr = batches([f"data_batch_{i}.bin" for i in range(1, 6)])
    x_te, y_te = batches(["test_batch.bin"])
    keep = [CIFAR_NAMES.index(c) for c in task.classes]
    remap = np.full(10, -1)
    remap[keep] = np.arange(len(keep))
    tr, te = np.isin(y_tr, keep), np.isin(y_te, keep)
    return x_tr[tr], remap[y_tr[tr]], x_te[te], remap[y_te[te]]


def emit(**event: Any) -> None:
    """A worker's event: wall-clock time (the parent subtracts the start) on one JSON line."""
    print(json.dumps({"wall": time.time(), **event}), flush=True)


# ----------------------------------------------------------------------------- Keras worker
def keras_worker(task: Task, seed: int) -> None:
    import numpy as np

    try:
        import keras
    except ImportError:
        emit(kind="skipped", reason="tensorflow is not installed (pip install -e .[bench])")
        return
    keras.utils.set_random_seed(seed)
    x_tr, y_tr, x_te, y_te = read_task_arrays(task)
    x_tr, x_te = x_tr / 255.0, x_te / 255.0
    off = 0.0  # evaluation time, taken off the clock

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # noqa: ARG002
            nonlocal off
            t0 = time.time()
            acc = float(
                np.mean(np.argmax(self.model.predict(x_te, batch_size=1024, verbose=0), 1) == y_te)
            )
            off += time.time() - t0
            emit(kind="epoch", epoch=epoch + 1, test_accuracy=acc, off=off)

    if (
        task.keras == "mlp"
    ):  # the Fashion-MNIST tutorial: Flatten, Dense(128, relu), Dense(10); adam; 10 epochs
        model = keras.Sequential(
            [
                keras.Input((28, 28)),
                keras.layers.Flatten(),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        model.fit(x_tr[..., 0], y_tr, epochs=10, verbose=0, callbacks=[Clock()])
    else:  # the CIFAR tutorial's CNN: (Conv same, BN, Conv valid, MaxPool, Dropout .5) x 32/64/128; batch 128
        model = keras.Sequential([keras.Input((32, 32, 3))])
        for f in (32, 64, 128):
            model.add(keras.layers.Conv2D(f, 3, activation="relu", padding="same"))
            model.add(keras.layers.BatchNormalization())
            model.add(keras.layers.Conv2D(f, 3, activation="relu"))
            model.add(keras.layers.MaxPooling2D(2))
            model.add(keras.layers.Dropout(0.5))
        model.add(keras.layers.Flatten())
        model.add(keras.layers.Dense(len(task.classes), activation="softmax"))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x_tr, y_tr, epochs=10, batch_size=128, verbose=0, callbacks=[Clock()])
    emit(kind="versions", keras=keras.__version__)


# ----------------------------------------------------------------------------- plain PyTorch worker
def reference_worker(task: Task, seed: int, loader_workers: int) -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torch.utils.data import Dataset as TorchDataset

    from sightline.models import create_model, get_model_entry
    from sightline.plan.config import resolve_config
    from sightline.plan.recipes import get_recipe

    recipe = get_recipe(task.reference_recipe)
    cfg = resolve_config(get_model_entry(recipe.model).train_defaults, **recipe.train_options)
    torch.manual_seed(seed)
    x_tr, y_tr, x_te, y_te = read_task_arrays(task)
    mean = x_tr.reshape(-1, x_tr.shape[-1]).mean(0) / 255.0
    std = x_tr.reshape(-1, x_tr.shape[-1]).std(0) / 255.0
    flip, pad = cfg.flip is not False, cfg.translate

    class Images(TorchDataset):
        """The per-sample Dataset of the PyTorch tutorials: ToTensor, Normalize, RandomHorizontalFlip."""

        def __init__(self, x: np.ndarray, y: np.ndarray, train: bool) -> None:
            self.x, self.y, self.train = x, y, train

        def __len__(self) -> int:
            return len(self.y)

        def __getitem__(self, i: int):
            img = torch.from_numpy(self.x[i]).permute(2, 0, 1).float() / 255.0
            img = (
                img - torch.as_tensor(mean, dtype=torch.float32)[:, None, None]
            ) / torch.as_tensor(std, dtype=torch.float32)[:, None, None]
            if self.train and flip and torch.rand(()) < 0.5:
                img = img.flip(2)
            if self.train and pad:  # RandomCrop(size, padding=pad, padding_mode="reflect")
                h, w = img.shape[1:]
                dy, dx = torch.randint(0, 2 * pad + 1, (2,)).tolist()
                img = F.pad(img[None], (pad, pad, pad, pad), mode="reflect")[
                    0, :, dy : dy + h, dx : dx + w
                ]
            return img, int(self.y[i])

    train = DataLoader(
        Images(x_tr, y_tr, True),
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=loader_workers,
    )
    test = DataLoader(Images(x_te, y_te, False), batch_size=1024, num_workers=loader_workers)
    shape = (x_tr.shape[-1], *x_tr.shape[1:3])
    model = create_model(
        recipe.model, input_shape=shape, num_classes=int(y_tr.max()) + 1, **recipe.model_options
    )
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, epochs=cfg.epochs, steps_per_epoch=len(train), pct_start=cfg.warmup
    )
    off = 0.0
    for epoch in range(cfg.epochs):
        model.train()
        for x, y in train:
            loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        t0 = time.time()
        model.eval()
        with torch.no_grad():
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test)
        off += time.time() - t0
        emit(kind="epoch", epoch=epoch + 1, test_accuracy=correct / len(y_te), off=off)


# ----------------------------------------------------------------------------- the parent
def run_process(cmd: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """Start ``cmd``; its JSON lines, each with ``t``: seconds since the start."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    events = []
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        wall = event.pop("wall", None) or time.time()
        event["t"] = wall - start - event.get("off", 0.0)
        events.append(event)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        events.append({"kind": "failed", "error": err.strip().splitlines()[-1:] or ["?"]})
    return events


def measure(
    method: str,
    task: Task,
    seed: int,
    env: dict[str, str],
    runs_dir: str,
    loader_workers: int,
    train_args: list[str],
) -> dict[str, Any]:
    me = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--task",
        task_key(task),
        "--seed",
        str(seed),
        "--loader-workers",
        str(loader_workers),
    ]
    if method in ("keras", "reference"):
        events = run_process(me, env)
        curve = [(e["t"], e["test_accuracy"]) for e in events if e["kind"] == "epoch"]
        skipped = next((e["reason"] for e in events if e["kind"] == "skipped"), None)
    else:
        cmd = [
            sys.executable,
            "-m",
            "sightline",
            "train",
            "--recipe",
            method,
            "--seed",
            str(seed),
            "--progress",
            "json",
            "--runs-dir",
            runs_dir,
            "--no-report",
            *train_args,
        ]
        events = [
            e
            for e in run_process(cmd, env)
            if e.get("kind") in ("epoch", "evaluation", "failed", "train_end")
        ]
        curve = [(e["t"], e["accuracy"]) for e in events if e["kind"] == "evaluation"]
        skipped = None
    failed = next((e["error"] for e in events if e["kind"] == "failed"), None)
    # sightline's own epoch times (the training alone): on a GPU most of a run's seconds are
    # start-up, data and evaluation, so this says more there. A GPU's one-off first-step costs
    # are paid by an untimed warm-up before the first epoch (train/warmup.py): reported apart.
    epochs = [e["time"] for e in events if e["kind"] == "epoch" and "time" in e]
    warm = next((e.get("warmup_seconds") for e in events if e["kind"] == "train_end"), None)
    # ... and how many epochs it trained: a recipe's time budget fits them to the machine.
    return {
        "method": method,
        "seed": seed,
        "curve": curve,
        "skipped": skipped,
        "failed": failed,
        "train_s": round(sum(epochs), 3) if epochs else None,
        "warmup_s": warm,
        "epochs": len(epochs) or None,
    }


def task_key(task: Task) -> str:
    return next(k for k, v in TASKS.items() if v == task)


def time_to(curve: list[tuple[float, float]], accuracy: float) -> float | None:
    return next((t for t, a in curve if a >= accuracy), None)


def result_point(r: dict[str, Any]) -> tuple[float, float]:
    """(seconds, test accuracy) a method's run ends with. The Keras CIFAR tutorial keeps its best
    epoch by test accuracy (ModelCheckpoint(save_best_only) on validation_data=test, early
    stopping): its result is its best epoch, at the time that epoch ended. Everything else: the
    last point (sightline reports the checkpoint it trained to the end; the reference likewise)."""
    if r["method"] == "keras":
        return max(r["curve"], key=lambda p: (p[1], -p[0]))
    return r["curve"][-1]


def summarise(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float | None]:
    """One row per method: median and range of final accuracy and time; with Keras in the run,
    the time each method takes to the Keras tutorial's median final accuracy (Keras' own: the
    median time of its whole recipe) and the ratio of Keras' time to it."""
    methods = list(dict.fromkeys(r["method"] for r in results))
    finals = {
        m: [result_point(r) for r in results if r["method"] == m and r["curve"]] for m in methods
    }
    keras = finals.get("keras") or []
    target = statistics.median(a for _, a in keras) if keras else None
    rows = []
    for m in methods:
        if not finals[m]:
            rows.append({"method": m, "runs": 0})
            continue
        times, accs = [t for t, _ in finals[m]], [a for _, a in finals[m]]
        row = {
            "method": m,
            "runs": len(times),
            "time_median": statistics.median(times),
            "time_min": min(times),
            "time_max": max(times),
            "acc_median": statistics.median(accs),
            "acc_min": min(accs),
            "acc_max": max(accs),
        }
        trained = [
            r["train_s"] for r in results if r["method"] == m and r["curve"] and r.get("train_s")
        ]
        if trained:
            row.update(
                train_median=statistics.median(trained),
                train_min=min(trained),
                train_max=max(trained),
            )
        warm = [r["warmup_s"] for r in results if r["method"] == m and r.get("warmup_s")]
        if warm:
            row["warmup_median"] = statistics.median(warm)
        epochs = sorted(
            {r["epochs"] for r in results if r["method"] == m and r["curve"] and r.get("epochs")}
        )
        if epochs:
            row["epochs"] = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
        if target is not None and m == "keras":
            row["time_to_keras"] = row["time_median"]
        elif target is not None:  # only when every seed gets there
            reach = [
                time_to(r["curve"], target) for r in results if r["method"] == m and r["curve"]
            ]
            row["time_to_keras"] = statistics.median(reach) if None not in reach else None
        rows.append(row)
    base = next((r.get("time_to_keras") for r in rows if r["method"] == "keras"), None)
    for r in rows:
        t = r.get("time_to_keras")
        r["speedup_vs_keras"] = base / t if base and t else None
    return rows, target


def print_table(task: str, rows: list[dict[str, Any]], target: float | None) -> None:
    print(
        f"\n{task}"
        + (f"  (the Keras tutorial's median result: {target:.2%} test accuracy)" if target else "")
    )
    print(
        f"{'method':<22} {'runs':>4} {'epochs':>6} {'test accuracy (min-max)':>26} {'seconds (min-max)':>20} "
        f"{'training s +warm-up':>24} {'s to Keras acc':>14} {'x Keras':>8}"
    )
    for r in rows:
        if not r["runs"]:
            print(f"{r['method']:<22} {0:>4}  no result")
            continue
        acc = f"{r['acc_median']:.2%} ({r['acc_min']:.2%}-{r['acc_max']:.2%})"
        sec = f"{r['time_median']:.1f} ({r['time_min']:.0f}-{r['time_max']:.0f})"
        trained = (
            f"{r['train_median']:.1f} ({r['train_min']:.1f}-{r['train_max']:.1f})"
            if "train_median" in r
            else "-"
        )
        if "warmup_median" in r:  # a GPU's untimed warm-up, apart from the training's seconds
            trained += f" +{r['warmup_median']:.1f}"

        to = r.get("time_to_keras")
        x = r.get("speedup_vs_keras")
        print(
            f"{r['method']:<22} {r['runs']:>4} {r.get('epochs', '-'):>6} {acc:>26} {sec:>20} {trained:>24} "
            f"{'-' if to is None else f'{to:.1f}':>14} {'-' if x is None else f'{x:.2f}':>8}"
        )


def plot(all_results: dict[str, list[dict[str, Any]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(all_results), figsize=(6.5 * len(all_results), 4.5), squeeze=False
    )
    for ax, (task, results) in zip(axes[0], all_results.items(), strict=True):
        for i, m in enumerate(dict.fromkeys(r["method"] for r in results)):
            color = f"C{i}"
            for j, r in enumerate(x for x in results if x["method"] == m and x["curve"]):
                ts, accs = zip(*r["curve"], strict=True)
                style = "o-" if len(ts) > 1 else "o"
                ax.plot(
                    ts,
                    [100 * a for a in accs],
                    style,
                    color=color,
                    ms=4,
                    alpha=0.8,
                    label=m if j == 0 else None,
                )
        ax.set(
            title=f"{task}: test accuracy vs seconds from process start",
            xlabel="seconds",
            ylabel="test accuracy (%)",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--tasks",
        default="fashion-mnist,cifar3",
        help=f"comma-separated: {', '.join(TASKS)} (default fashion-mnist,cifar3)",
    )
    ap.add_argument(
        "--methods",
        default=None,
        help="comma-separated recipes, keras, reference, each optionally with "
        "its own number of seeds, e.g. fashion-mnist-fast:3,keras:3,fashion-mnist-long:1 (default: all of "
        "the task's, --seeds each)",
    )
    ap.add_argument("--seeds", type=int, default=3, help="runs of each method, seeds 0..N-1")
    ap.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="start the seeds here (more runs of a long recipe "
        "in a later benchmark: --first-seed 1)",
    )
    ap.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="DataLoader worker processes of the reference loop",
    )
    ap.add_argument(
        "--train-args",
        default="",
        help="more options for every `sightline train` run, e.g. "
        "'--no-amp' (float32 on a CPU with AMX: its recipes for CPUs without AMX)",
    )
    ap.add_argument("--json", help="write every curve and the tables here")
    ap.add_argument("--plot", help="draw the time-to-accuracy plot here (PNG)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        task = TASKS[args.task]
        keras_worker(task, args.seed) if args.worker == "keras" else reference_worker(
            task, args.seed, args.loader_workers
        )
        return 0

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    mirror()
    import torch

    from sightline.devices import describe_cpu

    gpu = f"{torch.cuda.get_device_name()}, " if torch.cuda.is_available() else ""
    print(
        f"{gpu}{os.cpu_count()} CPU cores ({describe_cpu()}), torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"commit {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
    )
    if args.train_args:
        print(f"every `sightline train` run also gets: {args.train_args}")
    out: dict[str, Any] = {"tasks": {}, "train_args": args.train_args}
    curves: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as runs_dir:
        for key in args.tasks.split(","):
            task = TASKS[key]
            methods = (
                args.methods.split(",") if args.methods else [*task.recipes, "reference", "keras"]
            )
            results = []
            for spec in methods:
                method, _, seeds = spec.partition(":")
                for seed in range(
                    args.first_seed, args.first_seed + (int(seeds) if seeds else args.seeds)
                ):
                    r = measure(
                        method,
                        task,
                        seed,
                        env,
                        runs_dir,
                        args.loader_workers,
                        shlex.split(args.train_args),
                    )
                    final = (
                        f"{r['curve'][-1][1]:.2%} at {r['curve'][-1][0]:.1f} s"
                        if r["curve"]
                        else r["skipped"] or r["failed"]
                    )
                    print(f"  {key} {method} seed {seed}: {final}", flush=True)
                    results.append(r)
                    if r["skipped"]:
                        break
            rows, target = summarise(results)
            print_table(key, rows, target)
            curves[key] = results
            out["tasks"][key] = {"rows": rows, "keras_target": target, "runs": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"json: {args.json}")
    if args.plot:
        plot(curves, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
