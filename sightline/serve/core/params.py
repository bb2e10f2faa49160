"""What the API's ids and names may be, said once, for the OpenAPI schema of every route that
takes one (``/openapi.json``: a client, or schemathesis in the tests, learns from it what the
server accepts).

Each pattern is made from the rule the server checks with (``RUN_ID``, ``JOB_ID``,
``builder.clean_name``...). The schema only states it: the check stays where it was
(``run_id_path``, ``check_job_id``, ``clean_name``...), with its own status (400, or 404 for a
name looked up) and its message saying what is allowed, rather than FastAPI's generic 422.

JSON Schema's patterns are ECMA-262 regular expressions, searched (so each is ``^...$`` here, as
the server's ``fullmatch``) and read by most tools without Unicode classes: ``\\w`` and ``\\d``
are ASCII there, where Python's ``re`` (the server's) takes any script's letters and digits. So
these patterns spell their classes out: exact over ASCII, and where the server takes Unicode
letters or digits, any non-ASCII character (the server still refuses the ones that are not).
``tests/unit/serve/test_openapi_schemathesis.py`` holds each pattern to the server's check.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any

from fastapi import Form, Path, Query
from pydantic import BaseModel, ConfigDict

from sightline.data import IMAGE_EXTENSIONS
from sightline.run import MAX_RUN_NAME, RUN_ID
from sightline.serve.jobs.job import JOB_ID, STATES


class JSONBody(BaseModel):
    """A JSON request body: no field the schema does not list, and each of the type it says
    (strict: pydantic's default would take 0 for false and "5" or 5.0 for 5). Either: 422."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _anchored(pattern: str) -> str:
    return f"^(?:{pattern})$"


def schema(**keywords: Any) -> dict[str, Any]:
    """``json_schema_extra`` for a parameter or a field: the keywords go into its schema, and
    FastAPI and pydantic do not enforce them (the route's own check does)."""
    return {"json_schema_extra": keywords}


def multipart_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A route's ``openapi_extra`` adding ``rule`` (JSON Schema keywords: which fields go
    together) to its multipart form's schema; the form is then required (FastAPI marks it
    optional when each of its fields is)."""
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": rule}}}}


def _char_class(chars: list[str], negated: bool = False) -> str:
    """A character class of ``chars`` as escapes both dialects read (``\\xHH``, ``\\uHHHH``)."""
    codes = sorted(map(ord, chars))
    parts, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        ends = [f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in (codes[i], codes[j])]
        parts.append(ends[0] if i == j else f"{ends[0]}-{ends[1]}")
        i = j + 1
    return f"[{'^' if negated else ''}{''.join(parts)}]"


def ascii_or_beyond(allowed: str) -> str:
    """A class of the ASCII characters in ``allowed`` and of every non-ASCII character."""
    return _char_class([chr(c) for c in range(128) if chr(c) not in allowed], negated=True)


WORD = string.ascii_letters + string.digits + "_"  # re's \w, over ASCII
# What str.strip() (and re's \s) takes for white space: all of it below U+3001.
SPACE = _char_class([chr(c) for c in range(0x3001) if chr(c).isspace()])

# A finite number as Python's float() reads a text: white space around (less of it than strip()
# takes: not U+001C-U+001F), '_' between digits, any script's digits. float() of a longer
# exponent than it can hold is infinite, and refused too.
_DIGIT = ascii_or_beyond(string.digits)
_DIGITS = f"{_DIGIT}(?:_?{_DIGIT})*"
_BLANK = ascii_or_beyond(string.whitespace)
NUMBER_PATTERN = (
    rf"{_BLANK}*[+-]?(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?{_BLANK}*"
)
RUN_ID_SCHEMA: dict[str, Any] = {"pattern": _anchored(RUN_ID.pattern), "maxLength": MAX_RUN_NAME}
JOB_ID_SCHEMA: dict[str, Any] = {"pattern": _anchored(JOB_ID.pattern)}
# A dataset or class name as ``data.builder.clean_name`` takes it: stripped, then 1-64 letters,
# digits, spaces, '-', '_' or '.', starting with a letter or digit and not ending with '.'.
_NAME = (
    f"{ascii_or_beyond(WORD)}"
    f"(?:{ascii_or_beyond(WORD + ' .-')}{{0,62}}{ascii_or_beyond(WORD + '-')})?"
)
NAME_SCHEMA: dict[str, Any] = {"pattern": f"^{SPACE}*{_NAME}{SPACE}*$"}


# An image of a class folder, as ``data.builder.class_image`` takes it: one plain file name (no
# folder, not hidden, at most 255 characters) with an image extension, in any case.
def _any_case(text: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


_EXTENSIONS = "|".join(_any_case(e.lstrip(".")) for e in IMAGE_EXTENSIONS)
IMAGE_FILE_SCHEMA: dict[str, Any] = {
    "pattern": rf"^[^./\\\x00][^/\\\x00]*\.(?:{_EXTENSIONS})$",
    "maxLength": 255,
}

# A labels file: a plain .csv name (no folder, not hidden) in one of the server's folders.
LABELS_FILE_SCHEMA: dict[str, Any] = {
    "pattern": rf"^[^./\\\x00][^/\\\x00]*\.{_any_case('csv')}$",
    "max_length": 255,
}

KINDS = ("builtin", "folder")  # of datasets: a registry name, or a --data-dir folder's
PLOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a run's plots/NAME.png

RunId = Annotated[
    str,
    Path(
        description="a run's name, as GET /api/runs lists it (a folder of the runs folder)",
        **schema(**RUN_ID_SCHEMA),
    ),
]
JobId = Annotated[
    str,
    Path(description="a job's id, as POST /api/jobs made it", **schema(**JOB_ID_SCHEMA)),
]
DatasetKind = Annotated[
    str,
    Path(
        description="builtin: a registry name; folder: one of the server's --data-dir folders",
        **schema(enum=list(KINDS)),  # another: 404, as for an unknown dataset
    ),
]
DatasetName = Annotated[
    str, Path(description="a dataset's name, as GET /api/datasets lists it (404: no such one)")
]
ClassName = Annotated[
    str,
    Path(
        description="a class of the dataset (1-64 letters, digits, spaces, '-', '_' or '.')",
        **schema(**NAME_SCHEMA),
    ),
]
ImageFile = Annotated[
    str,
    Path(
        description="an image file of the class, as its listing names it",
        **schema(**IMAGE_FILE_SCHEMA),
    ),
]
PlotName = Annotated[
    str,
    Path(
        description="a plot's name, as the run's answer lists it (its `plots`)",
        **schema(pattern=_anchored(PLOT_NAME.pattern)),
    ),
]
JobState = Annotated[
    str | None, Query(description="only jobs in this state", **schema(enum=list(STATES)))
]
RunField = Annotated[
    str | None,
    Form(
        description="run name (default: the run the server was started with, `serve --run`, "
        "else the newest)",
        # empty: the default, as when it is left out
        **schema(pattern=rf"^(?:{RUN_ID.pattern})?$", maxLength=MAX_RUN_NAME),
    ),
]
