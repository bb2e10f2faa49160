"""``sightline label``: the labelling loop on a folder whose ``unlabelled/`` waits for labels."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sightline.errors import ConfigError


def add_label(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="label a folder's unlabelled/ images, the ones that matter first",
        description="The labelling loop. A dataset folder's unlabelled/ (any depth) holds images "
        "waiting for a label, beside its class folders. A model on pretrained features, refit "
        "on every change, asks for the most uncertain images first (spread over the folder), "
        "suggests a class for each, and says how accurate it is (cross-validated on the labels "
        "so far). Every label moves a file through the data-health journal: --undo puts back "
        "the last change.",
        epilog="Examples:\n  sightline label ./shoes                    where it stands\n"
        "  sightline label ./shoes --next 20 --format json\n"
        "  sightline label ./shoes --set unlabelled/a.jpg=boot unlabelled/b.jpg=sandal\n"
        "  sightline label ./shoes --apart unlabelled/cat.jpg   (not any class: kept apart)\n"
        "  sightline label ./shoes --accept-above 0.98\n  sightline label ./shoes --undo\n"
        "  sightline label ./shoes --export-label-studio tasks.json   (and --import-label-studio)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", help="the dataset folder (class folders and unlabelled/)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--next", type=int, metavar="N", help="the next N images to label")
    act.add_argument("--set", nargs="+", metavar="FILE=CLASS",
                     help="label images (a new class name makes the class)")  # fmt: skip
    act.add_argument("--apart", nargs="+", metavar="FILE",
                     help="images that are not any class: kept apart, never deleted")  # fmt: skip
    act.add_argument("--accept-above", type=float, metavar="P",
                     help="label every image suggested at calibrated probability P or more "
                     "(refused while the model is unsure of itself)")  # fmt: skip
    act.add_argument("--undo", action="store_true", help="put back the last change")
    act.add_argument("--export-label-studio", metavar="FILE",
                     help="the waiting images as Label Studio tasks, the suggestions as "
                     "pre-annotations (FILE.json; its labelling config beside it, FILE.xml)")  # fmt: skip
    act.add_argument("--import-label-studio", metavar="FILE",
                     help="label the images a Label Studio JSON export annotates")  # fmt: skip
    p.add_argument("--pool", metavar="OTHER",
                   help="first copy OTHER's images (a folder elsewhere) into FOLDER/unlabelled/: "
                   "OTHER stays as it is; images already there are not copied twice")  # fmt: skip
    p.add_argument("--confident", action="store_true",
                   help="with --next: the surest suggestions first, to accept at a glance")  # fmt: skip
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output (default: table)")  # fmt: skip
    p.set_defaults(func=run_label)


def _pairs(items: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        path, eq, cls_name = item.rpartition("=")  # a class name holds no '='; a file name may
        if not eq or not path or not cls_name.strip():
            raise ConfigError(f"--set {item!r}: write FILE=CLASS, e.g. unlabelled/a.jpg=boot")
        out[path] = cls_name.strip()
    return out


def run_label(args: argparse.Namespace) -> int:
    import sightline.labelling as labelling

    as_json = args.format == "json"
    if args.pool:
        got = labelling.gather(args.folder, args.pool)
        for path, why in got["skipped"]:
            print(f"skipped {path}: {why}", file=sys.stderr)
        print(f"copied {len(got['copied'])} images from {args.pool} into unlabelled/"
              + (f" ({got['known']} were there already)" if got["known"] else ""),
              file=sys.stderr)  # fmt: skip
    loop = labelling.label(args.folder)
    if args.next is not None:
        return _show(loop.next(args.next, args.confident), as_json, _print_next)
    if args.set:
        return _show(loop.set(_pairs(args.set)), as_json, _print_change)
    if args.apart:
        return _show(loop.set(dict.fromkeys(args.apart)), as_json, _print_change)
    if args.accept_above is not None:
        return _show(loop.accept_above(args.accept_above), as_json, _print_change)
    if args.export_label_studio:
        made = labelling.export_label_studio(loop, args.export_label_studio)
        if as_json:
            print(json.dumps(made))
        else:
            print(f"wrote {made['tasks']} tasks to {made['file']}, and its labelling config to "
                  f"{made['config']} (serve {loop.root.parent} as Label Studio's local files)")  # fmt: skip
        return 0
    if args.import_label_studio:
        journal = labelling.import_label_studio(loop, args.import_label_studio)
        for line in journal["skipped"]:
            print(f"skipped {line}", file=sys.stderr)
        return _show(journal, as_json, _print_change)
    if args.undo:
        journal = loop.undo()
        if journal is None:
            print("nothing to undo", file=sys.stderr)
            return 1
        return _show(journal | {"status": "undone"}, as_json, _print_change)
    return _show(loop.status(), as_json, _print_status)


def _show(result: Any, as_json: bool, printer) -> int:
    if as_json:
        if isinstance(result, dict) and "next" in result:
            result = {k: [s.to_dict() for s in v] for k, v in result.items()}
        print(json.dumps(result, indent=2))
    else:
        printer(result)
    return 0


def _print_next(batches: dict[str, list]) -> None:
    if not batches["next"] and not batches["unlike"]:
        print("nothing waits for a label")
    for title, rows in (
        ("label next", batches["next"]),
        ("unlike anything labelled", batches["unlike"]),
    ):
        if rows:
            print(f"{title}:")
        for s in rows:
            guess = f"{s.suggestion} ({s.probability:.0%})" if s.suggestion else "-"
            print(f"  {s.path:<48} {guess:<24} {s.why}")


def _print_change(journal: dict[str, Any]) -> None:
    moves = journal.get("moves", [])
    if not moves:
        print(journal.get("status", "nothing changed"))
        return
    undone = journal.get("status") == "undone"
    for m in moves:
        a, b = (m["dst"], m["src"]) if undone else (m["src"], m["dst"])
        print(f"  {a} -> {b}")
    files = f"{len(moves)} file{'s' * (len(moves) != 1)}"
    print(f"put back {files}" if undone else
          f"moved {files} (change {journal['id']}; --undo puts them back)")  # fmt: skip


def _print_status(status: dict[str, Any]) -> None:
    print(f"{status['folder']}: {sum(status['classes'].values())} labelled, "
          f"{status['waiting']} waiting")  # fmt: skip
    for name, count in status["classes"].items():
        print(f"  {name:<24} {count}")
    e = status["estimate"]
    if e is None:
        print("no model yet: label 2 images of each of 2 classes (`--next 20` shows which)")
        return
    print(f"estimated accuracy {e['accuracy']:.1%} ({e['low']:.1%}-{e['high']:.1%}, 95 %; "
          f"cross-validated on {e['labelled']} labels)")  # fmt: skip
    print(f"{status['confident']} waiting images would be labelled at >= "
          f"{status['confidence']:.0%} calibrated confidence")  # fmt: skip
    if status.get("unlike"):
        print(f"{status['unlike']} waiting images are unlike anything labelled")
    if status["accept"]:
        print(f"accepting them is refused: {status['accept']}")
