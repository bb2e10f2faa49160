"""``sightline datasets``: the built-in datasets and their classes."""

from __future__ import annotations

import argparse
import json


def add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "datasets",
        help="list the built-in datasets",
        description="List the built-in datasets, their classes and where their files are.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--download",
        nargs="+",
        metavar="NAME",
        default=None,
        help="fetch these datasets now (checked against their checksums) instead of at first use",
    )
    p.set_defaults(func=run_datasets)


def run_datasets(args: argparse.Namespace) -> int:
    from sightline.data import dataset_info, get_dataset_spec, list_datasets

    for name in args.download or ():
        from sightline.data import load_dataset  # imports torch: only when there is work for it

        get_dataset_spec(name)  # only built-in datasets are downloaded: an error listing them
        data = load_dataset(name, val_split=0.0)  # downloads (or finds) and verifies every file
        info = dataset_info(name)
        where = (
            info["mirror_path"] if info["mirrored"] and not info["cached"] else info["cache_path"]
        )
        print(
            f"{data.name}: ready ({len(data.train):,} train / {len(data.test):,} test images) in {where}"
        )
    if args.download:
        return 0
    infos = [dataset_info(name) for name in list_datasets()]
    if args.json:
        print(json.dumps(infos, indent=2, default=str))
        return 0
    for info in infos:
        where = (
            "in mirror"
            if info["mirrored"]
            else "cached"
            if info["cached"]
            else f"downloads {info['download_size'] / 1e6:.0f} MB"
        )
        shape = "x".join(map(str, info["shape"]))
        print(
            f"{info['name']}  ({shape}, {info['train']:,} train / {info['test']:,} test, {where})"
        )
        print(f"    {info['description']}")
        print(f"    classes: {', '.join(info['classes'])}")
    print(
        "\nAlso: any folder of images with one subfolder per class, e.g. `sightline train ./photos`."
    )
    return 0


# ---------------------------------------------------------------------------- models
