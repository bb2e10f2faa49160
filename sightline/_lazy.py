"""Lazy package attributes (PEP 562): a public name is imported when it is first used.

Importing PyTorch takes 1.5-2 s, while ``sightline --help``, ``datasets``, ``models`` and
``runs`` need none of it. A package that imported its whole API eagerly would make every
``from sightline.x import y`` pay for torch, so the packages whose public names pull in torch
(``sightline``, ``sightline.data``, ``sightline.train``) declare a name -> module table instead
and resolve it on first access. ``from sightline import fit`` and ``sightline.fit`` work as
before; they just load what they need when they need it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], also: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, where ``exports`` maps a public name to the
    module that defines it. A name not in the table that is a submodule of ``package`` is
    imported too (``import sightline; sightline.plots``), as it was with eager imports.
    ``also`` lists the names the package defines itself (for ``dir()``)."""

    def __getattr__(name: str) -> Any:
        module = sys.modules[package]
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        elif (
            not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None
        ):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted({*also, *exports, *vars(sys.modules[package])})

    # A public name that is also a submodule's (``sightline.plan.preview``, the function, in
    # the module ``preview.py``): importing the submodule makes Python set the package's
    # attribute to the module, and ``from sightline.plan import preview`` then gave the module
    # (a server's plan answered 500 after a sweep had imported it). The name stays the export.
    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if (
                name in exports
                and isinstance(value, types.ModuleType)
                and value.__name__ == f"{package}.{name}"
            ):
                return
            super().__setattr__(name, value)

    sys.modules[package].__class__ = _Package
    return __getattr__, __dir__
