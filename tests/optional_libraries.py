"""Optional libraries the tests use: `make test` installs them, so under CI ($CI set) a missing
one fails the test instead of skipping it (a CI run that silently skipped would look green)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str, extra: str) -> ModuleType:
    """``module``, else skip (fail under CI), saying which extra of sightline brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        why = f"{module} is not installed ({e}): pip install -e '.[{extra}]' (make test does)"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why, allow_module_level=True)
