"""One declaration per option: a config field's type, default, bounds, help and command-line
flags, in one place.

A config is a dataclass whose fields are declared with ``option(default, help, ...)``: the
field's type annotation is the option's type, and the metadata carries the rest. Every face is
made from it — the command line's flags (``add_cli_options``), the checks and their messages
(``check_options``), the job request's schema (``json_schema``), the README's table
(``markdown_table``; those four in ``plan/option_faces.py``) — so a new option is one field plus the code that uses it. Rules between
options (``head_epochs`` below ``epochs``) stay in the config's own ``validate``.

The field's type may be more than one word: ``float | Literal["test"] | None`` (a fraction or
the word test), ``int | list[int] | None`` (a size): the checks and the schema take each of its
members; ``parse`` reads such a value from the command line.
"""

from __future__ import annotations

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
    why: str = ""  # the one line of why its default is what it is (the README's table says it)
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


def literal_words(kind: str) -> tuple[Any, ...]:
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
def bounds_text(spec: Option) -> str:
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


def value_kind(value: Any) -> str:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return "number" if number else type(value).__name__


def check_value(o: Declared, value: Any) -> str | None:
    """Why ``value`` is no value of option ``o`` (its type already checked); None when it is.
    Choices apply to values of their own kind (channels' 1, 3 to numbers), bounds to numbers."""
    if value is None:
        return None
    choices = o.spec.choices
    if choices and value_kind(value) in {value_kind(c) for c in choices} and value not in choices:
        return f"{o.name} {value!r}; choose one of {', '.join(map(str, choices))}"
    if value_kind(value) == "number" and not within(o.spec, value):
        shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
        return f"{o.spec.called or o.name} must be {bounds_text(o.spec)}, not {shown}"
    return None


# A member of a field's type ("list[" for any list): what messages call it, and whether a value
# is one. A member these checks do not know takes any value (the config's ``validate`` checks).
_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "None": ("null", lambda v: v is None),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("a whole number", lambda v: value_kind(v) == "number" and isinstance(v, int)),
    "float": ("a finite number", lambda v: value_kind(v) == "number" and math.isfinite(v)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "list[": ("a list", lambda v: isinstance(v, (list, tuple))),
    "dict[": ("an object of names and values", lambda v: isinstance(v, dict)),
}


def member_word(kind: str) -> tuple[str, Callable[[Any], bool]]:
    if kind.startswith("Literal["):
        words = literal_words(kind)
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
            if not any(member_word(k)[1](value) for k in kinds):
                spec = f.metadata.get("option")
                name = spec.called if spec is not None and spec.called else f.name
                want = " or ".join(member_word(k)[0] for k in members(f.type) if k != "None")
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


def declared_option(cls: type, name: str) -> Declared:
    """``cls``'s option ``name`` (KeyError: none)."""
    for o in declared(cls):
        if o.name == name:
            return o
    raise KeyError(name)


# ----------------------------------------------------------------------------- the README's table
