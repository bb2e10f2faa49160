"""The model registry: every architecture by name, built with ``create_model``.

A model family lives in its own module and registers its builder with ``@register_model``. A
builder takes ``input_shape`` (C, H, W), ``num_classes`` and keyword options, and returns an
``nn.Module`` that maps float (N, C, H, W) to logits (N, num_classes). ``create_model`` records
how the model was built on ``model.sightline_config``, so a checkpoint can rebuild it exactly.

Listing models (``sightline models``, ``list_models``, ``get_model_entry``, a model's
``train_defaults``) must not cost the 1.5-2 s of importing PyTorch. So for the built-in families
the registry reads each ``@register_model(...)`` call and the builder's keyword defaults from
the module's source with ``ast``, without running it: they are literals (or module constants
that are). The family module, and
PyTorch with it, is imported when a model is built (``entry.builder``, ``create_model``), and
from then on its decorators' own entries are used. The decorators stay the one place a model is
described: tests check that the source scan and the imported modules agree, and a module whose
declarations the scan cannot read is simply imported.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sightline.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]

# The built-in model families: importing one runs its @register_model decorators.
FAMILIES = (
    "sightline.models.airnet",
    "sightline.models.efficientnet",
    "sightline.models.fastcnn",
    "sightline.models.mlp",
    "sightline.models.tutorial_cnn",
)

# Families that answer for every name with their prefix (``timm:resnet50``): the module's
# ``timm_entry(name)`` describes one (importing it: those are not read from source) and its
# ``build(name, input_shape, num_classes, **options)`` builds it.
PREFIXED = {"timm:": ("sightline.models.timm_models", "timm_entry")}


def _prefixed(name: str) -> tuple[str, str] | None:
    return next((v for p, v in PREFIXED.items() if name.startswith(p)), None)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    train_defaults: dict[str, object]  # recommended TrainConfig values (lr, optimizer, ...)
    module: str  # where the builder is defined (imported only to build a model)
    option_defaults: dict[str, object] = field(default_factory=dict)
    # With pretrained=True: the input the weights expect (size, mean, std, channels), which the
    # training data is prepared to and the saved Preprocess records. None: no pretrained weights.
    pretrained_input: dict[str, object] | None = None

    @property
    def builder(self) -> Builder:
        """The builder function: imports its module, and so PyTorch, on first use."""
        if _prefixed(self.name):
            return functools.partial(importlib.import_module(self.module).build, self.name)
        if self.name not in _BUILDERS:
            importlib.import_module(self.module)
        if self.name not in _BUILDERS:
            raise ModelError(f"{self.module} does not register model {self.name!r}")
        return _BUILDERS[self.name]

    def options(self) -> dict[str, object]:
        """The builder's keyword options and their defaults."""
        return dict(self.option_defaults)


_REGISTRY: dict[str, ModelEntry] = {}  # registered by imported modules' decorators
_BUILDERS: dict[str, Builder] = {}
DEFAULT_MODEL = "fastcnn"  # user folders, MNIST, CIFAR-10: fast, and robust on small folders
# Built-in datasets whose default model is another, and why. Fashion-MNIST: the default run
# must see photos of items as it sees the items (issue 10: >= 96 % agreement). fastcnn (4 epochs,
# 92.0 % test) agreed 94.4-96.2 % over five photo sets, airnet (its 5 epochs, 93.3 % test)
# 96.4-98.0 %: its predictions on items it is unsure of move less with how the photo was
# framed. It costs ~1.6x fastcnn's training time.
DATASET_DEFAULT_MODELS = {"fashion-mnist": "airnet"}


def default_model(dataset: object = None) -> str:
    """The model ``sightline train DATASET`` trains when none is named: ``dataset`` is a
    built-in dataset's name or alias (any case, as ``load_dataset`` takes it), a folder path,
    a ``Dataset`` (what it was loaded from: a folder named like a built-in is still a folder;
    else its ``name``) or None."""
    from sightline.data.registry import find_dataset_spec  # plain data: no PyTorch

    source = (getattr(dataset, "load_options", None) or {}).get("name_or_path")
    name = str(source) if source else getattr(dataset, "name", dataset)
    spec = find_dataset_spec(name) if isinstance(name, str) else None
    return (
        DATASET_DEFAULT_MODELS.get(spec.name, DEFAULT_MODEL) if spec is not None else DEFAULT_MODEL
    )


def register_model(
    name: str,
    description: str,
    train_defaults: dict[str, object] | None = None,
    pretrained_input: dict[str, object] | None = None,
) -> Callable[[Builder], Builder]:
    """Decorator for a builder ``fn(input_shape, num_classes, **options) -> nn.Module``.

    ``train_defaults`` are the training settings this architecture is tuned for (keys of
    ``sightline.train.TrainConfig``); the user's explicit settings override them.
    ``pretrained_input``: for a builder with a ``pretrained`` option, the input its weights
    expect: ``dict(size=224, channels=3, mean=(...), std=(...))`` (0..1 units).
    """

    def wrap(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = builder
        _REGISTRY[name] = ModelEntry(
            name,
            description,
            dict(train_defaults or {}),
            builder.__module__,
            _signature_options(builder),
            pretrained_input,
        )
        return builder

    return wrap


def list_models() -> list[ModelEntry]:
    entries = _entries()
    return [entries[k] for k in sorted(entries)]


def get_model_entry(name: str) -> ModelEntry:
    prefixed = _prefixed(name) if isinstance(name, str) else None
    if prefixed:
        module, entry = prefixed
        return getattr(importlib.import_module(module), entry)(name)
    entries = _entries()
    if name not in entries:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(sorted(entries))}")
    return entries[name]


def check_model_options(
    name: str, options: dict, entry: ModelEntry | None = None
) -> dict[str, object]:
    """Model ``name``'s options with their defaults; ModelError naming any of ``options`` it
    does not have (read without importing the model's module: a server checks a job with it
    before queueing)."""
    known = (entry or get_model_entry(name)).options()
    unknown = sorted(set(options) - set(known))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
        raise ModelError(f"model {name!r} has no option {', '.join(unknown)}; its options: {valid}")
    return known


def create_model(
    name: str, input_shape: tuple[int, int, int], num_classes: int, **options: object
) -> nn.Module:
    """Build model ``name`` for images of ``input_shape`` (C, H, W) and ``num_classes`` classes.

    >>> model = create_model("mlp", (1, 28, 28), 10, hidden=128)
    """
    entry = get_model_entry(name)
    builder = entry.builder  # imports the family module (and PyTorch) on first use
    entry = _REGISTRY.get(name, entry)  # once imported, the decorator's own entry
    known = check_model_options(name, options, entry)
    input_shape = tuple(int(s) for s in input_shape)  # type: ignore[assignment]
    try:
        # A switch (an option whose default is True or False) takes only those: a string such as
        # "maybe" from --model-opt would be truthy and silently turn it on.
        for key, value in options.items():
            if isinstance(known[key], bool) and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false, not {value!r}")
        options = {k: _whole(known[k], v) for k, v in options.items()}
        model = builder(input_shape=input_shape, num_classes=int(num_classes), **options)
    except (ValueError, TypeError) as e:
        raise ModelError(
            f"cannot build {name!r} for input {input_shape} and {num_classes} classes: {e}"
        ) from None
    model.sightline_config = {  # type: ignore[assignment]
        "name": name,
        "input_shape": list(input_shape),
        "num_classes": int(num_classes),
        "options": {**known, **options},
    }
    return model


# Model options that say where the weights start, not what the layers are: a model built to be
# measured, or to receive saved weights, is built without them (and so reads no weights file).
WEIGHT_OPTIONS = ("pretrained", "weights")


def architecture_options(options: dict[str, object]) -> dict[str, object]:
    """``options`` without ``WEIGHT_OPTIONS``: the same layers, initialised at random."""
    return {k: v for k, v in options.items() if k not in WEIGHT_OPTIONS}


def _whole(default: object, value: object) -> object:
    """A whole number given as a float (JSON's 1e3) for an option whose default is an int."""
    whole_default = isinstance(default, int) and not isinstance(default, bool)
    if whole_default and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _entries() -> dict[str, ModelEntry]:
    """Every model: the built-in families not imported yet as declared in their source, and
    everything registered so far (imported families, the user's own models)."""
    found: dict[str, ModelEntry] = {}
    for module in FAMILIES:
        if module not in sys.modules:
            found.update((e.name, e) for e in _declared(module))
    found.update(_REGISTRY)
    return found


def _signature_options(builder: Builder) -> dict[str, object]:
    params = inspect.signature(builder).parameters
    return {
        k: p.default
        for k, p in params.items()
        if k not in ("input_shape", "num_classes") and p.default is not inspect.Parameter.empty
    }


@functools.cache
def _declared(module: str) -> tuple[ModelEntry, ...]:
    """The models ``module`` registers, read from its source without running it. When the
    source is missing or a declaration is not made of literals, the module is imported instead
    (its decorators then fill ``_REGISTRY``): slower, never wrong."""
    try:
        spec = importlib.util.find_spec(module)
        source = Path(spec.origin).read_text(encoding="utf-8")  # type: ignore[union-attr, arg-type]
        return tuple(_scan(ast.parse(source), module))
    except (OSError, SyntaxError, ValueError, TypeError, AttributeError):
        importlib.import_module(module)
        return ()


def _scan(tree: ast.Module, module: str) -> Iterator[ModelEntry]:
    names = _constants(tree)
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if (
                not isinstance(dec, ast.Call)
                or getattr(dec.func, "id", getattr(dec.func, "attr", None)) != "register_model"
            ):
                continue
            if any(k.arg is None for k in dec.keywords):  # **kwargs: not a literal declaration
                raise ValueError(f"{module}.{node.name}: register_model(**...)")
            args = (
                inspect.signature(register_model)
                .bind(
                    *(_literal(a, names) for a in dec.args),
                    **{k.arg: _literal(k.value, names) for k in dec.keywords if k.arg},
                )
                .arguments
            )
            yield ModelEntry(
                args["name"],
                args["description"],
                dict(args.get("train_defaults") or {}),
                module,
                _source_options(node.args),
                args.get("pretrained_input"),
            )


def _source_options(args: ast.arguments) -> dict[str, object]:
    """What ``_signature_options`` gives for a function, from its ``def`` line."""
    positional = [*args.posonlyargs, *args.args]
    pairs = list(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    pairs += [
        (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
    ]
    return {a.arg: _literal(d) for a, d in pairs if a.arg not in ("input_shape", "num_classes")}


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """The module's top-level ``NAME = <literal>`` (or annotated) assignments, by name: a
    declaration may name them (three models sharing their training defaults)."""
    out: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            out[target.id] = value
    return out


def _literal(node: ast.expr, names: dict[str, ast.expr] | None = None) -> object:
    """A Python literal, ``dict(key=literal, ...)``, or the name of a module constant that is
    one (``names``); ValueError for anything else."""
    names = names or {}
    if isinstance(node, ast.Name) and node.id in names:
        return _literal(names[node.id], {k: v for k, v in names.items() if k != node.id})
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):
            raise ValueError("dict(**...) is not a literal")
        return {k.arg: _literal(k.value, names) for k in node.keywords}
    return ast.literal_eval(node)
