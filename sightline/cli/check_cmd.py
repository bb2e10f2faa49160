"""``sightline check``: what is wrong with a dataset, worst first."""

from __future__ import annotations

import argparse
import json
import sys


def add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check a dataset: unreadable files, copies, leaks, class counts, odd images",
        description="Read every image of an image folder (or a built-in dataset) and report, "
        "grouped and worst first: files that cannot be decoded, the same image twice (across "
        "classes: one image with two labels), near copies (resized, re-encoded, recoloured), "
        "validation or test images that are copies of training images, classes too small or "
        "too unequal, and images whose size, shape or colour mode is unlike the rest.",
        epilog="Example: sightline check ./my_photos  |  sightline check ./digits --format json",
    )
    p.add_argument(
        "source",
        help="an image folder (class subfolders, or train/ val/ test/) or a built-in dataset",
    )
    p.add_argument(
        "--format", choices=("table", "json"), default="table", help="output (default: table)"
    )
    p.add_argument(
        "--json",
        action="store_const",
        const="json",
        dest="format",
        help="the same as --format json",
    )
    p.add_argument("--limit", type=int, default=10, metavar="N",
                   help="findings shown per kind in the table (default 10; the JSON has all)")  # fmt: skip
    p.add_argument("--near", type=float, default=None, metavar="SIMILARITY",
                   help="similarity (0-1) over which two images are near copies (default 0.99); "
                   "1 finds exact copies only")  # fmt: skip
    p.add_argument("--no-labels", dest="labels", action="store_false",
                   help="skip the search for images filed under the wrong class (it trains "
                   "small models: seconds for a thousand images, about a minute for 10,000)")  # fmt: skip
    what = p.add_mutually_exclusive_group()
    what.add_argument("--fix", action="store_true",
                      help="fix what is safe to fix, never deleting: corrupt files, copies and "
                      "test images copied from training go to FOLDER/.sightline-quarantine/, "
                      "images clearly filed in the wrong class move to the class they look like; "
                      "the rest is listed for review")  # fmt: skip
    what.add_argument("--undo", action="store_true",
                      help="put back the files of the last --fix (or take back the last --keep)")  # fmt: skip
    what.add_argument("--keep", action="append", metavar="PATH",
                      help="the findings about this file (relative to FOLDER) are right as they "
                      "are: do not report them again while it is unchanged (repeatable; "
                      "--undo or --revoke takes it back)")  # fmt: skip
    what.add_argument("--revoke", action="append", metavar="PATH",
                      help="report the findings about this file again: take back a --keep "
                      "(repeatable)")  # fmt: skip
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from sightline.errors import ConfigError
    from sightline.health import NEAR, check

    if args.undo:
        return _undo(args)
    near = NEAR if args.near is None else args.near
    if not 0 < near <= 1:
        raise ConfigError(f"--near is a similarity in (0, 1], not {args.near}")
    show = sys.stderr.isatty() and args.format == "table"
    report = check(
        args.source,
        near=None if near >= 1 else near,
        labels=args.labels,
        progress=_progress if show else None,
    )
    if show:
        print("\r\033[K", end="", file=sys.stderr)
    if args.fix or args.keep or args.revoke:
        _folder(args.source)
        return _fix(args, report) if args.fix else _decide(args, report)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print("\n".join(report_lines(report, args.limit)))
    return 0


def _folder(source: str):
    from pathlib import Path

    from sightline.errors import ConfigError

    if not Path(source).is_dir():
        raise ConfigError(f"{source} is not a folder: only an image folder can be fixed")
    return Path(source)


def _undo(args: argparse.Namespace) -> int:
    from sightline.health import undo_fix

    journal = undo_fix(_folder(args.source))
    if args.format == "json":
        print(json.dumps(journal, indent=2))
    elif journal is None:
        print(f"Nothing to undo in {args.source}: no fix has been made there (or all are undone).")
    elif journal.get("kept"):
        print(f"Undid fix {journal['id']}: {len(journal['kept']):,} findings kept as they are "
              "are reported again.")  # fmt: skip
    else:
        print(f"Undid fix {journal['id']}: {len(journal['moves']):,} files back where they were.")
    return 0


def _fix(args: argparse.Namespace, report) -> int:
    from sightline.health import QUARANTINE, apply_fix, plan_fix

    moves, review = plan_fix(report, args.source)
    journal = apply_fix(args.source, moves)
    if args.format == "json":
        print(json.dumps({**journal, "review": review}, indent=2))
        return 0
    quarantined = [m for m in moves if m.dst.startswith(QUARANTINE + "/")]
    relabelled = [m for m in moves if m not in quarantined]
    print(f"Fix {journal['id'] or '-'} of {args.source}: {len(quarantined):,} files to "
          f"{QUARANTINE}/ (see its manifest.json), {len(relabelled):,} moved to another class.")  # fmt: skip
    for m in moves[: args.limit]:
        print(f"  {m.src}  ->  {m.dst}   ({m.kind})")
    if len(moves) > args.limit:
        print(f"  ... and {len(moves) - args.limit:,} more (--format json for all)")
    if review:
        print(f"Left for you to review: {len(review):,} findings (sightline check {args.source}).")
    unmoved = [p for p in report.of_kind("label") if not p.details.get("fixable")]
    if unmoved:
        from sightline.health import FIX_CONFIDENCE, FIX_OWN, RELIABLE_ACCURACY

        print(f"  {len(unmoved):,} suspected labels among them: --fix relabels only training "
              f"images at {FIX_CONFIDENCE:.0%} or more for another class and {FIX_OWN:.0%} or "
              f"less for their own, by models right on {RELIABLE_ACCURACY:.0%} or more of the "
              "images they never saw; look at these yourself")  # fmt: skip
    if moves:
        print(f"Undo: sightline check {args.source} --undo")
    return 0


def _decide(args: argparse.Namespace, report) -> int:
    """--keep PATH (a finding right as it is, through the fix journal) or --revoke PATH."""
    from sightline.health import keep, revoke

    decide, paths = (revoke, args.revoke) if args.revoke else (keep, args.keep)
    done = "reported again" if args.revoke else "kept as it is"
    for path in paths:
        problems = decide(report, args.source, path)
        if not problems:
            about = "is kept as it is" if args.revoke else f"(paths are relative to {args.source})"
            print(f"{path}: no finding about it {about}")
        for problem in problems:
            print(f"{done}: {problem.kind} {' = '.join(problem.paths)}")
    if args.keep:
        print(f"Undo: sightline check {args.source} --undo (or --revoke PATH)")
    return 0


def _progress(stage: str, done: int, total: int) -> None:
    print(f"\r{stage}: {done:,}/{total:,}\033[K", end="", file=sys.stderr)


def label_health_lines(labels: dict | None) -> list[str]:
    """The label search's summary of the folder (cleanlab's health_summary), when it judged."""
    health = (labels or {}).get("health")
    if not health:
        return []
    line = (
        f"Labels: about {health['label_quality']:.1%} right (~{health['estimated_wrong']:,} "
        "estimated wrong, an upper bound: the models' own mistakes count too)"
    )
    noisy = [c for c in health["classes"] if c["noise"] >= 0.01][:3]
    if noisy:
        line += "; noisiest: " + ", ".join(f"{c['class']} {c['noise']:.0%}" for c in noisy)
    if health["confused"]:
        line += "; most confused: " + ", ".join(
            f"{a} / {b} (~{p['images']:,})"
            for p in health["confused"][:3]
            for a, b in [p["classes"]]
        )
    return [line]


def report_lines(report, limit: int = 10) -> list[str]:
    """The table: a summary line, then each kind found (worst kind first) with its findings."""
    split_counts = ", ".join(f"{split} {sum(c.values()):,}" for split, c in report.counts.items())
    lines = [
        f"Checked {report.source}: {report.images:,} readable images in {len(report.classes)} "
        f"classes ({split_counts}) in {report.seconds:.1f} s"
    ]
    lines += [f"({note})" for note in report.notes]
    lines += label_health_lines(report.labels)
    summary = report.summary()
    if not summary:
        lines.append("No problems found.")
        return lines + _kept_lines(report, limit)
    lines.append("Found: " + ", ".join(f"{n:,} {kind}" for kind, n in summary.items()))
    for kind in summary:
        found = report.of_kind(kind)
        lines += ["", f"{kind} ({len(found):,})"]
        for problem in found[: max(0, limit)]:
            lines.append(f"  {'  =  '.join(problem.paths) or '-'}")
            lines.append(f"      {problem.message}")
        if len(found) > limit:
            lines.append(
                f"  ... and {len(found) - limit:,} more (--limit, or --format json for all)"
            )
    return lines + _kept_lines(report, limit)


def _kept_lines(report, limit: int) -> list[str]:
    if not report.kept:
        return []
    lines = ["", f"kept as they are by a person ({len(report.kept):,}; --revoke PATH reports "
             "one again)"]  # fmt: skip
    for problem in report.kept[: max(0, limit)]:
        lines.append(f"  {'  =  '.join(problem.paths)}  ({problem.kind})")
    return lines
