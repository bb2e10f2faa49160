"""One declaration per option: a config field's type, default, bounds, help and command-line
flags, in one place.

A config is a dataclass whose fields are declared with ``option(default, help, ...)``: the
field's type annotation is the option's type, and the metadata carries the rest. Every face is
made from it — the command line's flags (``add_cli_options``), the checks and their messages
(``check_options``), the job request's schema (``json_schema``), the README's table
(``markdown_table``) — so a new option is one field plus the code that uses it. Rules between
options (``head_epochs`` below ``epochs``) stay in the config's own ``validate``.

The field's type may be more than one word: ``float | Literal["test"] | None`` (a fraction or
the word test), ``int | list[int] | None`` (a size): the checks and the schema take each of its
members; ``parse`` reads such a value from the command line.
"""

from __future__ import annotations

import argparse
import ast
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
    choices: tuple[Any, ...] = ()  # strings, or numbers (channels: 1, 3)
    called: str | None = None  # what messages call it ("validation fraction"; default: its name)
    group: str = "training"  # which part of ``--help`` lists it
    flag: str | None = None  # its flag where not --name ("--model-opt" sets model_options)
    short: str | None = None  # e.g. "-e"
    metavar: str | None = None
    # Command-line text → value, where it is no plain number or word ("64x48", "a,b"); raises
    # argparse.ArgumentTypeError (or ValueError) with the message. Bounds are checked after it.
    parse: Callable[[str], Any] | None = None
    repeat: bool = False  # the flag may be given again; KEY=VALUE pairs collect into a dict
    # Switches (bool fields): the flags that set it, each with its help; None: no such flag.
    on: str | None = "default"  # "default": --name
    off: str | None = "default"  # "default": --no-name
    off_help: str | None = None
    cli: bool = True  # False: set from the API and recipes only
    api: bool = True  # False: no field of the web job request (a path on the server)


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field that is an option (see ``Option`` for ``spec``); a dict or list default
    is copied for each instance."""
    meta = {"option": Option(help, **spec)}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Declared:
    """One option of a config class: its field's name, type words and default, and its spec."""

    name: str
    kinds: frozenset[str]  # "int", "float", "bool", "str", "None", "list[int]", "Literal['test']"
    default: Any
    spec: Option
    written: str = ""  # its type as written: "float | Literal['test'] | None"

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")


_SCALARS = frozenset({"bool", "int", "float", "str", "None"})


def type_kinds(annotation: Any) -> frozenset[str]:
    """The members of a field's type, as written: "int | list[int] | None" → int, list[int],
    None (a "|" inside brackets belongs to its member)."""
    text, depth, parts, start = str(annotation), 0, [], 0
    for i, ch in enumerate(text):
        depth += (ch in "[(") - (ch in "])")
        if ch == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return frozenset(p.strip() for p in [*parts, text[start:]])


def members(annotation: Any) -> list[str]:
    """``type_kinds`` in the order written."""
    return sorted(type_kinds(annotation), key=str(annotation).find)


def _words(kind: str) -> tuple[Any, ...]:
    """The values of a ``Literal[...]`` member ("Literal['test']" → ("test",))."""
    return tuple(ast.literal_eval(f"({kind[len('Literal[') : -1]},)"))


def declared(cls: type) -> Iterator[Declared]:
    """The options of config dataclass ``cls``, in declaration order."""
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is not None:
            missing = f.default is dataclasses.MISSING
            default = f.default_factory() if missing else f.default  # type: ignore[misc]
            yield Declared(f.name, type_kinds(f.type), default, spec, str(f.type))


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


def _kind(value: Any) -> str:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return "number" if number else type(value).__name__


def check_value(o: Declared, value: Any) -> str | None:
    """Why ``value`` is no value of option ``o`` (its type already checked); None when it is.
    Choices apply to values of their own kind (channels' 1, 3 to numbers), bounds to numbers."""
    if value is None:
        return None
    choices = o.spec.choices
    if choices and _kind(value) in {_kind(c) for c in choices} and value not in choices:
        return f"{o.name} {value!r}; choose one of {', '.join(map(str, choices))}"
    if _kind(value) == "number" and not within(o.spec, value):
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        return f"{o.spec.called or o.name} must be {_bounds_text(o.spec)}, not {shown}"
    return None


# A member of a field's type ("list[" for any list): what messages call it, and whether a value
# is one. A member these checks do not know takes any value (the config's ``validate`` checks).
_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "None": ("null", lambda v: v is None),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("a whole number", lambda v: _kind(v) == "number" and isinstance(v, int)),
    "float": ("a finite number", lambda v: _kind(v) == "number" and math.isfinite(v)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "list[": ("a list", lambda v: isinstance(v, (list, tuple))),
    "dict[": ("an object of names and values", lambda v: isinstance(v, dict)),
}


def _member(kind: str) -> tuple[str, Callable[[Any], bool]]:
    if kind.startswith("Literal["):
        words = _words(kind)
        return " or ".join(map(repr, words)), lambda v: isinstance(v, str) and v in words
    prefix = kind if kind in _KINDS else kind[: kind.find("[") + 1]
    return _KINDS.get(prefix, (kind, lambda v: True))


def check_types(config: Any, bad: Callable[[str], Exception]) -> None:
    """Each field of ``config`` has its type: a whole number for an int (1e3 from JSON is
    1000), a finite number for a float, true or false for a bool. Strings and numbers from JSON,
    YAML or a form never reach the loop as something else (inf as an lr, 2.5 epochs). A field
    of several kinds (a fraction or the word test, a number or a list) is one of them."""
    for f in dataclasses.fields(config):
        kinds = type_kinds(f.type)
        value = getattr(config, f.name)
        if value is None and "None" in kinds:
            continue
        if not kinds <= _SCALARS:  # a list, an object, a word, or several kinds
            if not any(_member(k)[1](value) for k in kinds):
                spec = f.metadata.get("option")
                name = spec.called if spec is not None and spec.called else f.name
                want = " or ".join(_member(k)[0] for k in members(f.type) if k != "None")
                raise bad(f"{name} must be {want}, not {value!r}")
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
        if _kind(value) == "number" and not within(o.spec, value):
            what = f"{o.spec.called} " if o.spec.called else ""
            raise argparse.ArgumentTypeError(f"{what}must be {_bounds_text(o.spec)}, got {text}")
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
        return {"enum": list(_words(kind))}
    prop: dict[str, Any] = {"type": _JSON.get(kind, "string")}
    mine = [c for c in spec.choices if _kind(c) == ("number" if kind in ("int", "float") else kind)]
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


def declared_option(cls: type, name: str) -> Declared:
    """``cls``'s option ``name`` (KeyError: none)."""
    for o in declared(cls):
        if o.name == name:
            return o
    raise KeyError(name)


# ----------------------------------------------------------------------------- the README's table
def _takes(o: Declared) -> str:
    if o.spec.choices:
        return "one of " + ", ".join(map(str, o.spec.choices))
    words = " or ".join(_member(k)[0] for k in members(o.written) if k != "None")
    if o.spec.low is not None or o.spec.high is not None:
        words += ", " + _bounds_text(o.spec)
    return words


def markdown_table(cls: type) -> str:
    """The options of ``cls`` as a Markdown table: the name the API and the job request use,
    its flags, default, the values it takes and its help (README's option table)."""

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
        rows.append(
            f"| {name} | {flags_text} | {default} | {cell(_takes(o))} | {cell(o.spec.help)} |"
        )
    return "\n".join(rows) + "\n"
