"""``sightline recipes``: the named recipes, as they train on this machine."""

from __future__ import annotations

import argparse
import json


def add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipes",
        help="list the named training recipes",
        description="List the named recipes (sightline train --recipe NAME): model, options and what "
        "each one measured.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_recipes)


def run_recipes(args: argparse.Namespace) -> int:
    from sightline.plan import VARIANTS, list_recipes

    recipes = list_recipes()
    if args.json:
        print(json.dumps([r.to_dict() for r in recipes], indent=2))
        return 0
    for r in recipes:
        options = {**r.model_options, **r.data_options, **r.train_options}
        print(f"{r.name}  ({r.dataset}, {r.model})\n    {r.description}")
        print("    " + ", ".join(f"{k}={v!r}" for k, v in options.items()))
        if r.measured:
            print(f"    measured: {r.measured}")
        for v in r.variants():
            options = {**v.model_options, **v.data_options, **v.train_options}
            print(
                f"    {VARIANTS[v.variant][1]}, chosen there by itself: {v.model}, "
                + ", ".join(f"{k}={val!r}" for k, val in options.items())
            )
            print(f"    measured: {v.measured}")
    print("\nUse: sightline train --recipe NAME [options that override the recipe's]")
    return 0


# ---------------------------------------------------------------------------- summary
