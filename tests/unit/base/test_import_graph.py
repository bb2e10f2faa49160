"""The package's import graph has no circle (issue 35): each module imports only modules below
it, including the imports made inside functions (a late import hides a circle, it does not
remove it). A package's own ``__init__`` counts only where it is named, not for every module
under it, and the lazy name tables of ``sightline._lazy`` are strings, not imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sightline

ROOT = Path(sightline.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The sightline modules ``path`` imports anywhere in it."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package up
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    return {m for m in out if m in modules and m != here}


def graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports(p, modules) for p in files}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_one_that_imports_it_back():
    edges = graph()
    assert "sightline.plan.resolve" in edges and edges["sightline.train.api"]  # it read the tree
    assert circles(edges) == []


# The layers, lowest first (README: "How the code is laid out"). A module may import its own
# layer and the ones before it. cli/ and serve/ are both faces; sightline/__init__ is the API.
LAYERS = [
    ("sightline._version", "sightline._lazy", "sightline.errors", "sightline.fileio"),
    ("sightline.devices",),
    ("sightline.data", "sightline.models"),
    ("sightline.plan",),
    ("sightline.infer",),
    ("sightline.run",),
    ("sightline.train",),
    ("sightline.plots", "sightline.inspect", "sightline.health"),
    ("sightline.report",),
    ("sightline.pipeline",),
    ("sightline.sweeps", "sightline.labelling"),  # on top of the pipeline and the data health
    ("sightline",),
    ("sightline.cli", "sightline.serve", "sightline.__main__"),
]
# Imports that reach up a layer, each a late import in one function, named here with why.
# None today: infer/ (engines that take a model and a Preprocess) sits below run/, whose Run
# predicts and evaluates through it, and a run's ONNX files are run/exported.py's.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def layer_of(module: str) -> int:
    best, length = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > length:
                best, length = i, len(p)
    assert best >= 0, f"{module} is in no layer: add its package to LAYERS"
    return best


def test_every_module_imports_only_its_layer_and_the_ones_below():
    upward = {(a, b) for a, bs in graph().items() for b in bs if layer_of(b) > layer_of(a)}
    assert upward - KNOWN_UPWARD == set(), sorted(upward - KNOWN_UPWARD)
    assert KNOWN_UPWARD - upward == set(), "fixed: drop from KNOWN_UPWARD"


# The faces import what packages publish (their ``__init__``), never a module inside another
# package (issue 52), so a package can move its insides without breaking a face. What is still
# named here is a face's known exception, each with why.
FACE_INTERNALS_ALLOWED: dict[str, set[str]] = {"sightline.cli": set(), "sightline.serve": set()}


def face_internals(face: str) -> dict[str, set[str]]:
    """The modules inside other packages that ``face``'s modules import → who imports them.
    ``from sightline.health import check`` is the package's face when the package publishes
    ``check`` (its ``__all__``), though a module of that name exists too."""
    import importlib

    packages = {module_name(p) for p in ROOT.rglob("__init__.py")}
    found: dict[str, set[str]] = {}
    folder = ROOT / face.split(".", 1)[1]
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                base, names = node.module, [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                base, names = None, [a.name for a in node.names]
            else:
                continue
            for name in names:
                target = name if base is None else base
                if base in packages:
                    published = getattr(importlib.import_module(base), "__all__", ())
                    if name in published:
                        continue  # the package's face
                    target = f"{base}.{name}"
                if not target.startswith("sightline.") or target.startswith(face + "."):
                    continue
                if target in packages or target.count(".") < 2:
                    continue  # another package's face, or a top-level module
                found.setdefault(target, set()).add(module_name(path))
    return found


@pytest.mark.parametrize("face", sorted(FACE_INTERNALS_ALLOWED))
def test_faces_import_packages_public_faces_only(face):
    found = face_internals(face)
    unexpected = {
        m: sorted(who) for m, who in found.items() if m not in FACE_INTERNALS_ALLOWED[face]
    }
    assert unexpected == {}, f"{face} imports modules inside other packages: {unexpected}"
    assert len(FACE_INTERNALS_ALLOWED[face]) <= 3


def test_a_public_name_stays_itself_when_its_namesake_module_is_imported():
    """``sightline.plan.preview`` is the function, also after ``sightline.plan.preview`` the
    module is imported (Python sets a package's attribute to each submodule it imports)."""
    import importlib

    import sightline.plan

    importlib.import_module("sightline.plan.preview")
    importlib.import_module("sightline.plan.resolve")
    from sightline.plan import preview, resolve

    assert callable(preview) and callable(resolve)
    assert sightline.plan.preview.__module__ == "sightline.plan.preview"
