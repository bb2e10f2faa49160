"""What ``POST /api/jobs`` accepts, checked before anything is queued.

Pydantic checks the shape (types, no unknown top-level fields: 422); sightline's own
resolvers check the meaning, with the messages the CLI prints (400): the dataset registry,
the model registry and the model's options, ``resolve_config`` for the training options, the
data options' declarations (``DataOptions``: sizes, fractions, channels), the class list and
the device. The model and data fields are made from their declarations (plan/inputs.py): a
new option there is a field here, with its type, help and schema. So a job that is queued starts with options that are known
to be valid; what only training can tell (a folder of broken images) fails the job instead.

``preview_job`` answers ``POST /api/jobs/plan``: the same request through the same plan code
(``plan.preview``), for what it would train with, without queuing anything.

A client never gives a path: a dataset is a built-in name, a folder is the name of one of the
server's ``--data-dir`` folders, and the run name is a plain name.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, create_model

from sightline.errors import ConfigError, DataError
from sightline.plan import (
    DEFAULT_DATASET,
    DataOptions,
    ModelChoice,
    TrainConfig,
    TrainRequest,
    check,
    declared,
    declared_option,
    get_recipe,
    json_schema,
    object_schema,
)
from sightline.serve.core.params import LABELS_FILE_SCHEMA
from sightline.serve.jobs.job import JobError


def _not_a_switch(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("true or false is not a number")
    return value


# A JSON true is no number (it was read as 1 epoch) and "no" no switch: refused (422). An
# integral 1e9 still reaches the plan, whose message says the range.
Int = Annotated[int, BeforeValidator(_not_a_switch)]
Number = Annotated[float, BeforeValidator(_not_a_switch)]


def _documented(name: str) -> dict[str, Any]:
    """Field arguments for training option ``name``: its help, and its bounds and choices in
    the schema, from its one declaration (the config's checks still answer, 400)."""
    prop = json_schema(declared_option(TrainConfig, name))
    extra = {k: v for k, v in prop.items() if k not in ("type", "default", "description")}
    return {"description": prop["description"], "json_schema_extra": extra}


def _strict(tp: Any) -> Any:
    """A declared type for pydantic: a JSON true is no number, "5" no number, "yes" no switch."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_strict(a) for a in args)]  # noqa: UP007 (a tuple of types)
    if origin in (list, tuple):
        return list[_strict(args[0])]  # type: ignore[misc]
    return {int: Int, float: Number, bool: StrictBool}.get(tp, tp)


def _declared_fields(cls: type) -> dict[str, Any]:
    """The job request's field for each option of ``cls`` the API takes: its declared type
    (strict), its default ("not given"), and its JSON Schema from the declaration."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for o in declared(cls):
        if not o.spec.api:
            continue
        schema = json_schema(o)

        def documented(prop: dict[str, Any], schema: dict[str, Any] = schema) -> None:
            title = prop.get("title")
            prop.clear()
            prop.update({"title": title, **schema} if title else schema)

        default: dict[str, Any] = (
            {"default_factory": type(o.default)} if isinstance(o.default, dict) else
            {"default": o.default}
        )  # fmt: skip
        fields[o.name] = (
            _strict(hints[o.name]),
            Field(**default, description=o.spec.help, json_schema_extra=documented),
        )
    return fields


class JobRequestBase(BaseModel):
    """The job request's fields that are no option of the plan's declarations (where the data
    is, the run's name, what follows training) and the training options (``options``)."""

    model_config = ConfigDict(extra="forbid")
    data_class: ClassVar[type] = DataOptions
    model_class: ClassVar[type] = ModelChoice

    recipe: str | None = Field(
        None,
        description="a named recipe (GET /api/recipes): its model, data split and "
        "training options; the options given here override it",
        examples=["fashion-mnist-fast"],
    )
    dataset: str | None = Field(
        None,
        description="a built-in dataset (default: the recipe's, else fashion-mnist)",
        examples=["mnist"],
    )
    folder: str | None = Field(
        None,
        description="instead of dataset: the name of one of the server's --data-dir "
        "folders (GET /api/datasets lists them)",
    )
    labels: str | None = Field(
        None,
        description="with folder: one of its labels files (a .csv of path,label[,split] rows; "
        "GET /api/datasets lists them as labels_files) instead of its class folders",
        examples=["labels.csv"],
        **LABELS_FILE_SCHEMA,
    )
    epochs: Int | None = Field(None, **_documented("epochs"))
    batch_size: Int | None = Field(None, **_documented("batch_size"))
    lr: Number | None = Field(None, **_documented("lr"))
    patience: Int | None = Field(None, **_documented("patience"))
    # Any other training option; the schema lists each with its type, bounds and help (one
    # declaration: plan/config.py), the checks answer 400 with the option's own message.
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="other training options (as `sightline train`'s flags: optimizer, "
        "weight_decay, max_steps, seed, ...)",
        json_schema_extra=object_schema(TrainConfig),
    )
    name: str | None = Field(None, description="run folder name (default <dataset>-<model>-<time>)")
    evaluate: StrictBool = Field(
        True, description="evaluate the best checkpoint on the test split after training"
    )
    report: StrictBool = Field(True, description="write the plots and report.html after training")


def job_request_model(
    data: type = DataOptions, model: type = ModelChoice, name: str = "JobRequest"
) -> type[JobRequestBase]:
    """The job request with the options declared by ``data`` and ``model`` (plan/inputs.py)
    as its fields: a new option there is a field here, in /openapi.json and in the checks."""
    made = create_model(  # type: ignore[call-overload]
        name,
        __base__=JobRequestBase,
        __doc__="A training job: the same choices as ``sightline train``. Unset options take "
        "the model's tuned defaults (and, for a folder, the folder recipe), as on the command "
        "line.",
        __module__=__name__,
        **_declared_fields(model),
        **_declared_fields(data),
    )
    made.data_class, made.model_class = data, model
    return made


JobRequest = job_request_model()


def _data_source(
    req: JobRequestBase, data_dirs: Sequence[Path], default: str
) -> tuple[str, list[str]]:
    """(what ``load_dataset`` gets, the class names): a built-in's name or a server folder."""
    from sightline.data import get_dataset_spec

    names = [Path(d).name for d in data_dirs]
    if req.dataset is not None and req.folder is not None:
        raise JobError("give a dataset or a folder, not both")
    if req.labels is not None and req.folder is None:
        raise JobError("labels names a labels file in a folder: give the folder too")
    if req.folder is None:
        try:
            spec = get_dataset_spec(req.dataset or default)
        except DataError as e:
            hint = f"; or give folder: one of {', '.join(names)}" if names else ""
            raise DataError(f"{e}{hint}") from None
        return spec.name, list(spec.classes)
    if req.folder not in names:
        known = (
            f": one of {', '.join(names)}"
            if names
            else ", and this server was started without --data-dir"
        )
        raise DataError(
            f"unknown folder {req.folder[:80]!r}; a folder is named by one of the server's data folders{known}"
        )
    from sightline.data import folder_info

    path = Path(data_dirs[names.index(req.folder)]).resolve()
    if req.labels is not None:
        path = _labels_file(path, req.labels)
    info = folder_info(path)  # DataError when it is gone or holds no class folders
    return str(path), [c["name"] for c in info["classes"]]


def _labels_file(folder: Path, name: str) -> Path:
    """The labels file ``name`` directly in the server's ``folder``, never through a link."""
    from sightline.data import labels_files_in

    offered = labels_files_in(folder)
    if name not in offered:
        known = f": one of {', '.join(offered)}" if offered else ": it has none"
        raise DataError(f"unknown labels file {name[:80]!r} in folder {folder.name}{known}")
    from sightline.fileio import inside

    return inside(folder, name)


def _data_options(req: JobRequestBase, classes: list[str]) -> dict[str, Any]:
    """``load_dataset``'s options from the request's data options, checked (DataError, the
    loaders' messages), its classes against the dataset's."""
    cls = type(req).data_class
    data = cls(**{o.name: getattr(req, o.name) for o in declared(cls) if o.spec.api})
    if data.classes:
        from sightline.data import resolve_classes

        resolve_classes(classes, data.classes)  # DataError naming the valid classes
    return data.loader_options()


def _train_options(req: JobRequestBase) -> dict[str, Any]:
    named = {
        "epochs": req.epochs,
        "batch_size": req.batch_size,
        "lr": req.lr,
        "patience": req.patience,
    }
    twice = sorted(k for k, v in named.items() if v is not None and k in req.options)
    if twice:
        raise ConfigError(f"{', '.join(twice)} given twice: at the top level and in options")
    if "extra" in req.options:
        raise ConfigError("unknown training option(s): extra (it is written by sightline itself)")
    return {**{k: v for k, v in named.items() if v is not None}, **req.options}


def train_request(req: JobRequestBase, data_dirs: Sequence[Path]) -> TrainRequest:
    """The plan's request for ``req``: the face's one translation, shared by queuing a job and
    previewing its plan; a ``SightlineError`` with the CLI's message for what cannot be right."""
    from sightline.run import MAX_RUN_NAME, RUN_NAME

    default = get_recipe(req.recipe).dataset if req.recipe is not None else DEFAULT_DATASET
    dataset, classes = _data_source(req, data_dirs, default)
    cls = type(req).model_class
    model_options = cls(
        **{o.name: getattr(req, o.name) for o in declared(cls) if o.spec.api}
    ).plan_options()
    if req.name is not None and (len(req.name) > MAX_RUN_NAME or not RUN_NAME.fullmatch(req.name)):
        raise JobError(
            f"invalid run name {req.name[:80]!r}: use letters, digits, '.', '_' and '-', not starting with '.'"
        )
    return TrainRequest(
        dataset,
        req.model,
        req.recipe,
        _data_options(req, classes),
        model_options,
        _train_options(req),
    )


def resolve_job(
    req: JobRequestBase, data_dirs: Sequence[Path]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the request as stored, ``run_training``'s keyword arguments) for a valid request;
    a ``SightlineError`` with the CLI's message for an invalid one."""
    request = train_request(req, data_dirs)
    check(request)  # the plan's own rules and messages, as `sightline train` would meet them
    args = {
        "dataset": request.dataset,
        "model": req.model,
        "recipe": req.recipe,
        "data_options": request.data_options,
        "model_options": request.model_options,
        "name": req.name,
        "evaluate": req.evaluate,
        "report": req.report,
        **request.train_options,
    }
    return req.model_dump(exclude_none=True), args


def preview_job(req: JobRequestBase, data_dirs: Sequence[Path]) -> dict[str, Any]:
    """What the job ``req`` would train with (``plan.preview``: the plan code a queued job
    and ``sightline train`` run), without queuing it; errors as ``resolve_job`` raises them."""
    from sightline.plan import preview

    pv = preview(train_request(req, data_dirs))
    cfg, data = pv.plan.config, pv.data
    assert cfg is not None
    options = cfg.to_dict()
    extra = options.pop("extra")
    return {
        "model": pv.plan.model,
        "recipe": pv.plan.recipe,
        "pretrained": pv.plan.pretrained,
        "options": options,
        "given": sorted(pv.plan.given),  # the options the request set: no rule changed those
        "folder_recipe": sorted(
            (extra.get("chosen") or {}) if extra.get("recipe") == "folder" else {}
        ),
        "data": None
        if data is None
        else {
            "name": data.name,
            "classes": list(data.classes),
            "input_shape": list(data.input_shape),
            **{  # images per split; 0: none (no validation split, no calibration split)
                split: len(part) if part is not None else 0
                for split, part in (
                    ("train", data.train),
                    ("val", data.val),
                    ("test", data.test),
                    ("calibration", data.calibration),
                )
            },
        },
        "steps": None
        if pv.steps is None
        else {
            "per_epoch": pv.steps.steps_per_epoch,
            "total": pv.steps.total_steps,
            "stop": pv.steps.stop_step,
        },
        "short_of_recipe": pv.plan.short_of_recipe,
        "notes": pv.notes,
    }
