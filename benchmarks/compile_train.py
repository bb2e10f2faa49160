"""Does ``torch.compile`` pay for itself in a short training run? Times the training step of a
registered model (the cifar10-airbench network by default) eager, replayed as CUDA graphs
(sightline/train/cuda_graphs.py, the training loop's default on one GPU) and under each compile mode, in
one process on the same device: the first steps (where compilation happens) separately from the
steady state, and the break-even: how many steps a run must take before compiling wins.

    PYTHONPATH=. python3 benchmarks/compile_train.py                       # on a GPU
    .venv/bin/python benchmarks/compile_train.py --device cpu --steps 20   # small CPU check

The step is the training loop's (``sightline/train/loop.py``): channels-last, bf16 autocast on
CUDA, Nesterov SGD over sightline's parameter groups, label-smoothed cross-entropy; the images
are random (speed does not depend on the pixels). No assertions: numbers to read.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from sightline.models import create_model
from sightline.train.cuda_graphs import GraphedTraining
from sightline.train.optim import param_groups


def make_step(model: torch.nn.Module, device: torch.device, amp: bool, graphs: bool = False):
    opt = torch.optim.SGD(param_groups(model, 1e-3), lr=0.1, momentum=0.85, nesterov=True)
    graphed = GraphedTraining(model, print) if graphs else None

    def autocast():
        return torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=amp, cache_enabled=not graphs
        )

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = graphed(x, autocast) if graphed is not None else None
        with autocast():
            loss = F.cross_entropy(model(x) if logits is None else logits, y, label_smoothing=0.2)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(mode: str, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    options = json.loads(args.model_options)
    model = create_model(args.model, tuple(args.shape), 10, **options).to(
        device, memory_format=torch.channels_last
    )
    model.train()
    if mode not in ("eager", "cuda-graphs"):
        model = torch.compile(model, mode=None if mode == "default" else mode)
    step = make_step(model, device, amp=device.type == "cuda", graphs=mode == "cuda-graphs")
    x = torch.randn(args.batch, *args.shape, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 10, (args.batch,), device=device)
    sync(device)
    start = time.perf_counter()
    for _ in range(args.warmup):  # compilation (and cuDNN's algorithm search) happen here
        step(x, y)
    sync(device)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        step(x, y)
    sync(device)
    per_step = (time.perf_counter() - start) / args.steps
    return {
        "mode": mode,
        "first_steps_s": round(first, 2),
        "ms_per_step": round(per_step * 1e3, 3),
        "images_per_s": round(args.batch / per_step),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="airnet")
    ap.add_argument("--model-options", default='{"widths": [64, 256, 256], "airbench": true}')
    ap.add_argument("--shape", type=int, nargs=3, default=[3, 32, 32])
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--modes", default="eager,cuda-graphs,default,reduce-overhead,max-autotune-no-cudagraphs"
    )
    ap.add_argument("--warmup", type=int, default=5, help="first steps, timed apart (compilation)")
    ap.add_argument("--steps", type=int, default=200, help="steady-state steps timed")
    ap.add_argument(
        "--run-steps", type=int, default=539, help="a run's steps, for the totals (recipe: 11 x 49)"
    )
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{args.model} {args.model_options}, batch {args.batch}, {name}, torch {torch.__version__}"
    )
    results = [measure(mode, args, device) for mode in args.modes.split(",")]
    eager = next((r for r in results if r["mode"] == "eager"), results[0])
    print(
        f"{'mode':<28} {'first steps s':>13} {'ms/step':>8} {'img/s':>9} {'run of ' + str(args.run_steps) + ' steps, s':>20}"
    )
    for r in results:
        r["run_s"] = round(
            r["first_steps_s"] + (args.run_steps - args.warmup) * r["ms_per_step"] / 1e3, 2
        )
        print(
            f"{r['mode']:<28} {r['first_steps_s']:>13} {r['ms_per_step']:>8} {r['images_per_s']:>9} {r['run_s']:>20}"
        )
    for r in results:
        saved = eager["ms_per_step"] - r["ms_per_step"]
        if r is not eager and saved > 0:
            extra = r["first_steps_s"] - eager["first_steps_s"]
            print(
                f"{r['mode']}: pays for its compile after {max(0, extra) / saved * 1e3:,.0f} steps"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "device": name, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
