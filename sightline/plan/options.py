"""One declaration per option: a config field's type, default, bounds, help and command-line
flags, in one place.

A config is a dataclass whose fields are declared with ``option(default, help, ...)``: the
field's type annotation is the option's type, and the metadata carries the rest. Every face is
made from it — the command line's flags (``add_cli_options``), the checks and their messages
(``check_options``), and the listings — so a new option is one field plus the code that uses it.
Rules between options (``head_epochs`` below ``epochs``) stay in the config's own ``validate``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """What a config field is to a person: its help, its valid values and how it is spelled on
    the command line. ``low``/``high`` bound a number (``*_open``: the bound itself is out);
    ``high_text`` spells the bound in messages where digits would not read (``2^63 - 1``)."""

    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    high_text: str | None = None
    unit: str = ""  # said after the bounds in messages: "pixels", "epochs"
    choices: tuple[str, ...] = ()
    group: str = "training"  # which part of ``--help`` lists it
    short: str | None = None  # e.g. "-e"
    metavar: str | None = None
    # Switches (bool fields): the flags that set it, each with its help; None: no such flag.
    on: str | None = "default"  # "default": --name
    off: str | None = "default"  # "default": --no-name
    off_help: str | None = None
    cli: bool = True  # False: set from the API and recipes only


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field that is an option (see ``Option`` for ``spec``)."""
    return dataclasses.field(default=default, metadata={"option": Option(help, **spec)})


@dataclass(frozen=True)
class Declared:
    """One option of a config class: its field's name, type words and default, and its spec."""

    name: str
    kinds: frozenset[str]  # "int", "float", "bool", "str", "None"
    default: Any
    spec: Option

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def declared(cls: type) -> Iterator[Declared]:
    """The options of config dataclass ``cls``, in declaration order."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is not None:
            kinds = frozenset(k.strip() for k in str(f.type).split("|"))
            yield Declared(f.name, kinds, f.default, spec)


def defaults(cls: type) -> dict[str, Any]:
    """Each option's default, by name."""
    return {o.name: o.default for o in declared(cls)}


# ----------------------------------------------------------------------------- checking
def _bounds_text(spec: Option) -> str:
    def num(v: float) -> str:
        return f"{v:,}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"

    low = None if spec.low is None else num(spec.low)
    high = spec.high_text or (None if spec.high is None else num(spec.high))
    unit = f" {spec.unit}" if spec.unit else ""
    if low is not None and high is not None:
        if not spec.low_open and not spec.high_open:
            return f"from {low} to {high}{unit}"
        if spec.low_open and not spec.high_open:
            return f"more than {low} and at most {high}{unit}"
        return f"in {'(' if spec.low_open else '['}{low}, {high}{')' if spec.high_open else ']'}"
    if low is not None:
        return f"{'more than' if spec.low_open else 'at least'} {low}{unit}"
    return f"{'less than' if spec.high_open else 'at most'} {high}{unit}"


def within(spec: Option, value: float) -> bool:
    """Whether ``value`` is inside ``spec``'s bounds."""
    if spec.low is not None and (value <= spec.low if spec.low_open else value < spec.low):
        return False
    return not (
        spec.high is not None and (value >= spec.high if spec.high_open else value > spec.high)
    )


def check_value(o: Declared, value: Any) -> str | None:
    """Why ``value`` is no value of option ``o`` (its type already checked); None when it is."""
    if value is None:
        return None
    if o.spec.choices and value not in o.spec.choices:
        return f"{o.name} {value!r}; choose one of {', '.join(o.spec.choices)}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and not within(o.spec, value):
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        return f"{o.name} must be {_bounds_text(o.spec)}, not {shown}"
    return None


def check_types(config: Any, bad: Callable[[str], Exception]) -> None:
    """Each field of ``config`` has its type: a whole number for an int (1e3 from JSON is
    1000), a finite number for a float, true or false for a bool. Strings and numbers from JSON,
    YAML or a form never reach the loop as something else (inf as an lr, 2.5 epochs)."""
    for f in dataclasses.fields(config):
        kinds = {k.strip() for k in str(f.type).split("|")}
        value = getattr(config, f.name)
        if value is None and "None" in kinds or not {"bool", "int", "float", "str"} & kinds:
            continue
        if "bool" in kinds:
            ok = isinstance(value, bool)
            want = "true or false" + (" or null" if "None" in kinds else "")
        elif "int" in kinds:
            if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                value = int(value)
                setattr(config, f.name, value)
            ok = isinstance(value, int) and not isinstance(value, bool)
            want = "a whole number"
        elif "float" in kinds:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
            want = "a finite number"
        else:  # str
            ok, want = isinstance(value, str), "a string"
        if not ok:
            raise bad(f"{f.name} must be {want}, not {value!r}")


def check_options(config: Any, bad: Callable[[str], Exception]) -> None:
    """``check_types``, then every option's choices and bounds, with the message saying which
    values it takes."""
    check_types(config, bad)
    for o in declared(type(config)):
        why = check_value(o, getattr(config, o.name))
        if why is not None:
            raise bad(why)


# ----------------------------------------------------------------------------- the command line
def _cli_type(o: Declared) -> Callable[[str], Any]:
    number = int if "int" in o.kinds else float

    def parse(text: str) -> Any:
        try:
            value = number(text)
        except ValueError:
            kind = "a whole number" if number is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        if number is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if not within(o.spec, value):
            raise argparse.ArgumentTypeError(f"must be {_bounds_text(o.spec)}, got {text}")
        return value

    parse.__name__ = o.name  # argparse names the type in some messages
    return parse


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
        g = groups.get(o.spec.group, groups["training"])
        if "bool" in o.kinds:
            on = o.flag if o.spec.on == "default" else o.spec.on
            off = "--no-" + o.flag[2:] if o.spec.off == "default" else o.spec.off
            if on:
                g.add_argument(on, dest=o.name, action="store_true", default=None, help=o.spec.help)
            if off:
                g.add_argument(off, dest=o.name, action="store_false", default=None,
                               help=o.spec.off_help or (None if on else o.spec.help))  # fmt: skip
        else:
            names = [o.flag, *([o.spec.short] if o.spec.short else [])]
            kw: dict[str, Any] = dict(dest=o.name, default=None, help=o.spec.help)
            if o.spec.choices:
                kw["choices"] = o.spec.choices
            elif "int" in o.kinds or "float" in o.kinds:
                kw["type"] = _cli_type(o)
            if o.spec.metavar:
                kw["metavar"] = o.spec.metavar
            g.add_argument(*names, **kw)
        added.append(o.name)
    return added


# ----------------------------------------------------------------------------- the API's schema
def json_schema(o: Declared) -> dict[str, Any]:
    """Option ``o`` as a JSON Schema property (OpenAPI 3.1): its type, bounds, choices, default
    and help, so a client reads the same rules the checks apply."""
    kind = next(
        (
            t
            for k, t in (
                ("bool", "boolean"),
                ("int", "integer"),
                ("float", "number"),
                ("str", "string"),
            )
            if k in o.kinds
        ),  # fmt: skip
        "string",
    )
    prop: dict[str, Any] = {"type": [kind, "null"] if "None" in o.kinds else kind}
    prop["description"] = o.spec.help
    if o.default is not None:
        prop["default"] = o.default
    if o.spec.choices:
        prop["enum"] = list(o.spec.choices)
    if o.spec.low is not None:
        prop["exclusiveMinimum" if o.spec.low_open else "minimum"] = o.spec.low
    if o.spec.high is not None:
        prop["exclusiveMaximum" if o.spec.high_open else "maximum"] = o.spec.high
    return prop


def object_schema(cls: type) -> dict[str, Any]:
    """The options of ``cls`` as one JSON Schema object (no other keys)."""
    props = {o.name: json_schema(o) for o in declared(cls)}
    return {"type": "object", "properties": props, "additionalProperties": False}


def declared_option(cls: type, name: str) -> Declared:
    """``cls``'s option ``name`` (KeyError: none)."""
    for o in declared(cls):
        if o.name == name:
            return o
    raise KeyError(name)
