"""``sightline calibrate``: fit a run's calibrator on its validation split and keep it."""

from __future__ import annotations

import argparse
import json

from sightline.cli.common import pick_run
from sightline.cli.options import add_checkpoint, add_device, add_runs_dir


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="make a run's probabilities honest: fit its calibration on its validation split",
        description="Fit the map of its logits that makes a run's probabilities calibrated on its "
        "validation split, and save it in the model file: predict, evaluate, inspect, the server "
        "and exports then report calibrated probabilities (the predicted classes do not change). "
        "Training does this by itself; this is for runs trained before it did, or on other data.",
    )
    p.add_argument("run", nargs="?", help="run folder or name (default: the newest run)")
    p.add_argument(
        "--data",
        help="a dataset name or image folder with a validation split (default: the run's own data)",
    )
    add_checkpoint(p)
    add_runs_dir(p)
    add_device(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
    run = pick_run(args.run, args.runs_dir)
    data = None
    if args.data:
        from sightline.data import load_dataset

        options = {
            k: v for k, v in run.config["data"].items() if k not in ("name_or_path", "in_memory")
        }
        data = load_dataset(args.data, **options)
    record = run.calibrate(data, which=args.checkpoint, device=args.device)
    if args.json:
        print(json.dumps({"run": run.name, "checkpoint": args.checkpoint, **record}, indent=2))
        return 0
    before, after = record["before"], record["after"]
    if record.get("skipped"):
        print(f"Run {run.name} ({args.checkpoint} checkpoint): calibration skipped: "
              f"{record['skipped']}")  # fmt: skip
    else:
        print(
            f"Run {run.name} ({args.checkpoint} checkpoint): {record['method']} calibration "
            f"(scale {record['scale']:.4f}, curve {record['curve']:.4f}), "
            f"fitted on {record['images']:,} images of {record['fitted_on']}"
        )
        print(
            f"  ECE {before['ece']:.2%} -> {after['ece']:.2%}   NLL {before['nll']:.4f} -> "
            f"{after['nll']:.4f}   Brier {before['brier']:.4f} -> {after['brier']:.4f}"
            + (
                f"   (ECE from sampling alone: {after['ece_floor']:.2%})"
                if "ece_floor" in after
                else ""
            )
        )
    ood = record["ood"]
    stages = len(ood.get("taps") or [])
    reads = (
        f"its penultimate features and {stages} later stages'"
        if stages
        else "its penultimate features"
    )
    print(
        f"  'None of these' over ood_score {ood['threshold']:.2f}, from {reads} (keeps {ood['keep']:.0%} of "
        f"real images with 95% confidence: the {ood['validation_share']:.2%} quantile of "
        f"{ood['validation_images']:,} held-out images; fitted on {ood['images']:,} training images)"
    )
    print(f"Saved in {run.model_file(args.checkpoint)}")
    return 0
