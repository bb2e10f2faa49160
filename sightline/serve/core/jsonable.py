"""Values on their way out as strict JSON: one walk over them, for every answer and job record."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any


def finite(value: Any, text: Callable[[str], str] | None = None) -> Any:
    """``value`` with NaN and ±inf floats as None (a diverged run's metrics hold them, and
    strict JSON, which browsers parse, has no spelling for them), keys as strings, and
    ``text`` applied to every string value (``core/paths.py``: server paths made public)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if text is None else text(value)
    if isinstance(value, dict):
        return {str(k): finite(v, text) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, text) for v in value]
    return value


def to_json(value: Any, text: Callable[[str], str] | None = None) -> str:
    """Compact strict JSON of ``value`` (see ``finite``); anything else as its ``str``."""
    return json.dumps(finite(value, text), default=str, allow_nan=False, separators=(",", ":"))
