"""The faces of the options declared in ``plan/options.py``: command-line flags, the web job
request's JSON Schema and the README's tables, each made from the one declaration."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from sightline.plan.options import (
    Declared,
    Option,
    bounds_text,
    declared,
    literal_words,
    member_word,
    members,
    value_kind,
    within,
)


# ----------------------------------------------------------------------------- the command line
def cli_type(o: Declared) -> Callable[[str], Any]:
    """The argparse ``type`` of option ``o``: its ``parse`` (else a number), then its bounds."""
    number = int if "int" in o.kinds else float

    def parse(text: str) -> Any:
        try:
            value = o.spec.parse(text) if o.spec.parse else number(text)
        except ValueError as e:
            if o.spec.parse:
                raise argparse.ArgumentTypeError(str(e)) from None
            kind = "a whole number" if number is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value_kind(value) == "number" and not within(o.spec, value):
            what = f"{o.spec.called} " if o.spec.called else ""
            raise argparse.ArgumentTypeError(f"{what}must be {bounds_text(o.spec)}, got {text}")
        return value

    parse.__name__ = o.name  # argparse names the type in some messages
    return parse


def _switch(o: Declared) -> tuple[str | None, str | None]:
    on = o.flag if o.spec.on == "default" else o.spec.on
    return on, "--no-" + o.flag[2:] if o.spec.off == "default" else o.spec.off


def cli_flags(o: Declared) -> list[tuple[str, ...]]:
    """The flags that set option ``o``: one tuple of names, or a switch's on and off flags."""
    if "bool" in o.kinds:
        return [(f,) for f in _switch(o) if f]
    return [(o.flag, *([o.spec.short] if o.spec.short else []))]


def add_cli_options(
    groups: dict[str, Any], cls: type, *, only: tuple[str, ...] | None = None
) -> list[str]:
    """The command-line flags of ``cls``'s options (``only`` these, if given), each in
    ``groups[spec.group]`` (an argparse parser or argument group; a missing group: the
    "training" one). Every flag defaults to None ("not given": the model's or the recipe's value
    stands). Returns the option names added."""
    added = []
    for o in declared(cls):
        if not o.spec.cli or only is not None and o.name not in only:
            continue
        g = groups.get(o.spec.group) or groups["training"]
        if "bool" in o.kinds:
            on, off = _switch(o)
            if on:
                g.add_argument(on, dest=o.name, action="store_true", default=None, help=o.spec.help)
            if off:
                g.add_argument(off, dest=o.name, action="store_false", default=None,
                               help=o.spec.off_help or (None if on else o.spec.help))  # fmt: skip
        else:
            (names,) = cli_flags(o)
            kw: dict[str, Any] = dict(dest=o.name, default=None, help=o.spec.help)
            if o.spec.repeat:
                kw["action"] = "append"
            if o.spec.choices:
                kw["choices"] = o.spec.choices
            if o.spec.parse or "int" in o.kinds or "float" in o.kinds:
                kw["type"] = cli_type(o)
            if o.spec.metavar:
                kw["metavar"] = o.spec.metavar
            g.add_argument(*names, **kw)
        added.append(o.name)
    return added


def cli_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (parsed with ``add_cli_options``), by
    name; a repeated KEY=VALUE flag's pairs as one dict."""
    out = {}
    for o in declared(cls):
        value = getattr(args, o.name, None) if o.spec.cli else None
        if value is not None:
            dicts = any(k.startswith("dict[") for k in o.kinds)
            out[o.name] = dict(value) if o.spec.repeat and dicts else value
    return out


# ----------------------------------------------------------------------------- the API's schema
_JSON = {"bool": "boolean", "int": "integer", "float": "number", "str": "string", "None": "null"}


def _kind_schema(kind: str, spec: Option) -> dict[str, Any]:
    """One member of an option's type as JSON Schema, with the bounds and choices that apply
    to it (bounds to numbers, also a list's; choices to values of their kind)."""
    if kind.startswith("list["):
        items = [_kind_schema(k, spec) for k in members(kind[kind.index("[") + 1 : -1])]
        return {"type": "array", "items": items[0] if len(items) == 1 else {"anyOf": items}}
    if kind.startswith("dict["):
        return {"type": "object"}
    if kind.startswith("Literal["):
        return {"enum": list(literal_words(kind))}
    prop: dict[str, Any] = {"type": _JSON.get(kind, "string")}
    mine = [
        c for c in spec.choices if value_kind(c) == ("number" if kind in ("int", "float") else kind)
    ]
    if mine:
        prop["enum"] = mine
    if kind in ("int", "float"):
        if spec.low is not None:
            prop["exclusiveMinimum" if spec.low_open else "minimum"] = spec.low
        if spec.high is not None:
            prop["exclusiveMaximum" if spec.high_open else "maximum"] = spec.high
    return prop


def json_schema(o: Declared) -> dict[str, Any]:
    """Option ``o`` as a JSON Schema property (OpenAPI 3.1): its type, bounds, choices, default
    and help, so a client reads the same rules the checks apply. A type of several kinds is an
    ``anyOf`` of them (a plain one and null: ``"type": [..., "null"]``)."""
    kinds = [k for k in members(o.written) if k != "None"]
    null = "None" in o.kinds
    if len(kinds) == 1 and (kinds[0] in _JSON or not null):
        prop = _kind_schema(kinds[0], o.spec)
        if null:
            prop["type"] = [prop["type"], "null"]
    else:
        prop = {"anyOf": [_kind_schema(k, o.spec) for k in kinds] + [{"type": "null"}] * null}
    prop["description"] = o.spec.help
    if o.default is not None:
        prop["default"] = o.default
    return prop


def object_schema(cls: type) -> dict[str, Any]:
    """The options of ``cls`` (those the job request takes) as one JSON Schema object."""
    props = {o.name: json_schema(o) for o in declared(cls) if o.spec.api}
    return {"type": "object", "properties": props, "additionalProperties": False}


def _takes(o: Declared) -> str:
    if o.spec.choices:
        return "one of " + ", ".join(map(str, o.spec.choices))
    words = " or ".join(member_word(k)[0] for k in members(o.written) if k != "None")
    if o.spec.low is not None or o.spec.high is not None:
        words += ", " + bounds_text(o.spec)
    return words


def markdown_table(cls: type) -> str:
    """The options of ``cls`` as a Markdown table: the name the API and the job request use,
    its flags, default, the values it takes, its help and why (README's option table)."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    rows = [
        "| Option | `sightline train` | Default | Takes | What it sets |",
        "|---|---|---|---|---|",
    ]
    for o in declared(cls):
        flags = [f for names in cli_flags(o) for f in names] if o.spec.cli else []
        if o.spec.metavar and flags:
            flags[0] += f" {o.spec.metavar}"
        flags_text = ", ".join(f"`{f}`" for f in flags) or "—"
        default = "—" if o.default in (None, {}, []) else f"`{o.default}`"
        name = f"`{o.name}`" + ("" if o.spec.api else " (command line only)")
        sets = o.spec.help + (f" *Why:* {o.spec.why}" if o.spec.why else "")
        rows.append(f"| {name} | {flags_text} | {default} | {cell(_takes(o))} | {cell(sets)} |")
    return "\n".join(rows) + "\n"
