"""``sightline inspect``: what a run's network does with one image."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sightline.cli.common import pick_run
from sightline.cli.options import add_runs_dir, class_list


def add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="look inside a trained network for one image",
        description="Write the output of every layer (or --layers), the learned filters and a saliency map for one image.",
        epilog="Example:\n  sightline inspect runs/my-run boot.jpg --layers stage1.conv.relu,stage3.conv.relu",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run folder or name")
    p.add_argument("image", help="an image file")
    p.add_argument(
        "--layers",
        type=class_list,
        help="layer names as shown by `sightline summary` (default: all)",
    )
    p.add_argument("--output-dir", "-o", help="default: <run>/inspect/<image name>/")
    p.add_argument(
        "--method", choices=("gradcam", "gradient"), default="gradcam", help="saliency method"
    )
    p.add_argument("--filters-layer", help="conv layer whose filters to draw (default: the first)")
    p.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    add_runs_dir(p)
    p.set_defaults(func=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from sightline import inspect as insp
    from sightline.plots import figure_bytes, save_figure
    from sightline.run import RunWriter

    run = pick_run(args.run, args.runs_dir)
    model, pre = run.load_model(), run.preprocess
    result = insp.inspect_image(
        model, pre, args.image, layers=args.layers, classes=run.classes, method=args.method
    )

    def save(
        fig, name: str
    ) -> Path:  # the run's inspect/<image>/ through its writer, or --output-dir
        if args.output_dir:
            return save_figure(fig, Path(args.output_dir) / name)
        return RunWriter(run.path).write_inspection(Path(args.image).stem, name, figure_bytes(fig))

    saliency = insp.plot_saliency(
        result.input, result.saliency, title=f"predicted {result.predicted}"
    )
    figures = {
        "activations": save(insp.plot_activations(result.outputs), "activations.png"),
        "saliency": save(saliency, "saliency.png"),
    }
    if insp.conv_layers(model):
        figures["filters"] = save(insp.plot_filters(model, layer=args.filters_layer), "filters.png")
    else:
        figures["dense-weights"] = save(
            insp.plot_dense_weights(model, pre.input_shape), "dense-weights.png"
        )
    confidence = result.probabilities[result.predicted_index]
    if args.json:  # stdout holds one JSON document and nothing else
        doc = {
            "run": str(run.path.resolve()),
            "image": str(Path(args.image).resolve()),
            "confidence": confidence,
            **result.to_dict(),
            "figures": {k: str(p.resolve()) for k, p in figures.items()},
        }
        print(json.dumps(doc))
        return 0
    print(f"predicted {result.predicted} ({confidence:.1%})")
    for p in figures.values():
        print(p.resolve())
    return 0


# ---------------------------------------------------------------------------- report
