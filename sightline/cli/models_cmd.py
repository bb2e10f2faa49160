"""``sightline models``: the registered architectures and their options."""

from __future__ import annotations

import argparse
import json


def add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the model architectures",
        description="List the registered models and their options.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from sightline.models import (
        CURATED,
        DATASET_DEFAULT_MODELS,
        DEFAULT_MODEL,
        backbones_table,
        list_models,
    )

    entries = list_models()

    def default_for(name: str) -> list[str]:
        return sorted(d for d, m in DATASET_DEFAULT_MODELS.items() if m == name)

    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "description": e.description,
                        "options": e.options(),
                        "train_defaults": e.train_defaults,
                        "default": e.name == DEFAULT_MODEL,
                        "default_for": default_for(e.name),
                    }
                    for e in entries
                ]
                + [
                    {
                        "name": c.name,
                        "backbone": True,  # a curated pretrained backbone (models/curated.py)
                        "params_m": c.params_m,
                        "size": c.size,
                        "images_per_second": c.images_per_second,
                        "weights": c.weights,
                        "why": c.why,
                    }
                    for c in CURATED
                ],
                indent=2,
            )
        )
        return 0
    for e in entries:
        mark = "  (default)" if e.name == DEFAULT_MODEL else ""
        datasets = default_for(e.name)
        mark += f"  (default for {', '.join(datasets)})" if datasets else ""
        print(f"{e.name}{mark}\n    {e.description}")
        if e.options():
            print("    options: " + ", ".join(f"{k}={v!r}" for k, v in e.options().items()))
    print(
        "\nBackbones for transfer learning (--model NAME --pretrained; any timm:NAME works, "
        "these are measured: PyTorch predicting, fp32, 2 CPU cores; predict and frozen "
        "features run ONNX Runtime where it is faster):"
    )
    print(backbones_table())
    return 0


# ---------------------------------------------------------------------------- recipes
